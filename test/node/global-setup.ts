// Vitest global setup (runs in Node, before workerd starts): gives this run its own Postgres
// database and Redis key prefix, starts the Neon, Upstash and Analytics Engine stand-ins and a
// JWKS/Python-API stand-in on free ports, and provides their addresses to the Worker bindings
// (vitest.config.ts). The AE stand-in keeps its rows in the run's database (schema analytics_engine).
// Teardown stops them, drops the database and deletes the run's Redis keys; a failing setup
// undoes what it had already started.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TestProject } from "vitest/node";
import {
	canConnect,
	dropDatabase,
	ensureDatabase,
	migrateDatabase,
	withDatabase,
} from "../../scripts/lib/pg.ts";
import { seedDatabase } from "../../scripts/lib/seed.ts";
import { startAeStandIn } from "../../scripts/stack/ae-standin.ts";
import { startAuxServer } from "../../scripts/stack/aux-server.ts";
import { startNeonStandIn } from "../../scripts/stack/neon-standin.ts";
import { deleteKeysWithPrefix, startUpstashStandIn } from "../../scripts/stack/upstash-standin.ts";

export const TEST_SEED_REPOS = 400;

/**
 * fast-check's seed: FC_SEED when set (to replay a failure), else derived from the commit under
 * test, so reruns of one commit are reproducible and every new commit explores new inputs.
 * Printed once per run.
 */
function fastCheckSeed(): number {
	const fromEnv = process.env.FC_SEED;
	if (fromEnv && /^-?\d+$/.test(fromEnv)) {
		console.log(`fast-check seed ${fromEnv} (from FC_SEED)`);
		return Number(fromEnv);
	}
	let commit = "";
	try {
		commit = execFileSync("git", ["rev-parse", "HEAD"], {
			encoding: "utf8",
			stdio: ["ignore", "pipe", "ignore"],
		}).trim();
	} catch {
		// Not a git checkout: a fixed seed.
	}
	const seed = commit ? Number.parseInt(commit.slice(0, 8), 16) | 0 : 20_260_513;
	console.log(
		`fast-check seed ${seed} (${commit ? `from commit ${commit.slice(0, 12)}` : "fixed: no git commit"}; replay with FC_SEED=${seed})`,
	);
	return seed;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const runId = `${Date.now().toString(36)}_${process.pid}_${randomBytes(3).toString("hex")}`;
	const pgServer = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
	const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
	const pg = new URL(pgServer);
	const redis = new URL(redisUrl);
	const pgPort = Number(pg.port || 5432);
	if (!(await canConnect(pg.hostname, pgPort, 2000))) {
		throw new Error(`PostgreSQL is not reachable at ${pg.hostname}:${pgPort} (set DATABASE_URL)`);
	}
	if (!(await canConnect(redis.hostname, Number(redis.port || 6379), 2000))) {
		throw new Error(`Redis is not reachable at ${redis.host} (set REDIS_URL)`);
	}

	const dbName = `gi_test_${runId}`;
	const dbUrl = withDatabase(pgServer, dbName);
	const redisKeyPrefix = `gi:test:${runId}:`;
	const undo: (() => Promise<unknown>)[] = [];
	const teardown = async () => {
		for (const step of undo.reverse())
			await step().catch((err: Error) => console.error(`teardown: ${err.message}`));
	};

	try {
		await ensureDatabase(pgServer, dbName);
		undo.push(() => dropDatabase(pgServer, dbName));
		await migrateDatabase(dbUrl);
		await seedDatabase(dbUrl, { repos: TEST_SEED_REPOS, seed: 7 });

		undo.push(() => deleteKeysWithPrefix(redisUrl, redisKeyPrefix));
		const upstashToken = randomBytes(16).toString("hex");
		const neon = await startNeonStandIn({ pgHost: pg.hostname, pgPort });
		undo.push(() => neon.close());
		const upstash = await startUpstashStandIn({ redisUrl, token: upstashToken });
		undo.push(() => upstash.close());
		const aux = await startAuxServer();
		undo.push(() => aux.close());
		const aeApiToken = randomBytes(16).toString("hex");
		const ae = await startAeStandIn({ databaseUrl: dbUrl, token: aeApiToken });
		undo.push(() => ae.close());

		// The Worker sees a Neon-style URL; the stand-in routes every host to the local server.
		const workerDbUrl = new URL(dbUrl);
		workerDbUrl.hostname = "db.localtest.me";
		workerDbUrl.username = pg.username || "postgres";
		workerDbUrl.password = pg.password || "local";

		project.provide("runId", runId);
		project.provide("databaseUrl", workerDbUrl.toString());
		project.provide("neonHttpEndpoint", neon.httpEndpoint);
		project.provide("neonWsProxy", neon.wsProxy);
		project.provide("upstashUrl", upstash.url);
		project.provide("upstashToken", upstashToken);
		project.provide("redisKeyPrefix", redisKeyPrefix);
		project.provide("jwtSecret", randomBytes(32).toString("hex"));
		project.provide("jwksUrl", aux.jwksUrl);
		project.provide("jwksPrivateKeys", aux.privateJwks);
		project.provide("pythonApiUrl", aux.pythonApiUrl);
		project.provide("hangingUrl", aux.hangingUrl);
		project.provide("aeSinkUrl", ae.sinkUrl);
		project.provide("aeSqlUrl", ae.sqlUrl);
		project.provide("aeApiToken", aeApiToken);
		project.provide("testSeedRepos", TEST_SEED_REPOS);
		project.provide("fcSeed", fastCheckSeed());
		// The example file's JWT_SECRET, which a production Worker must refuse (src/env.ts).
		const example = readFileSync(new URL("../../.dev.vars.example", import.meta.url), "utf8");
		project.provide("exampleJwtSecret", /^JWT_SECRET=(.*)$/m.exec(example)?.[1]?.trim() ?? "");
	} catch (err) {
		await teardown();
		throw err;
	}
	return teardown;
}

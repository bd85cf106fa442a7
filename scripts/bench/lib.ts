// Shared pieces of the Worker benchmarks (summary-hit.ts, hit-ratio.ts):
//   - lifecycle: one cleanup list run on success, error, Ctrl-C/SIGTERM and a hard time limit;
//   - the Worker: built exactly as `wrangler deploy` builds it (--dry-run --outdir), then run by
//     Miniflare's Node API (workerd directly, no wrangler dev proxy) with wrangler.toml's
//     compatibility settings, [vars], Durable Object and Analytics Engine bindings, plus the
//     stand-ins' URLs and a per-run JWT secret;
//   - the data: a dedicated database, created, migrated and seeded when absent, and the
//     Neon/Upstash stand-ins on free ports;
//   - the load generator: open loop (fixed rate, latency from each request's scheduled time, so
//     a slow server cannot hide its queue: no coordinated omission) and closed loop (N
//     connections back to back), over node:http keep-alive Agents, in a worker thread so the
//     main thread's work (Miniflare's log parsing, the stand-ins) does not skew its timing.
// Heavy modules (miniflare, pg, the seed, the stand-ins) are imported lazily: the worker thread
// loads this file too and needs none of them.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { Agent, type ClientRequest, type IncomingMessage, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { Miniflare, V4WorkerdStructuredLog } from "miniflare";
import {
	type ModuleType,
	moduleTypeOf,
	ROOT,
	readWranglerToml,
	readWranglerVars,
	type WranglerToml,
} from "../lib/local-config.ts";

export const log = (line: string): void => console.log(`[bench] ${line}`);

// ---------------------------------------------------------------------------------------------
// Lifecycle

type Cleanup = { name: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const ownSignalHandlers = new Set<(...args: unknown[]) => void>();

/**
 * Miniflare installs SIGINT/SIGTERM/SIGHUP handlers that kill workerd and exit at once, which
 * would skip the async cleanups (stand-ins, Redis keys, temp dirs). Its process "exit" hook
 * still kills workerd whatever happens, so its signal handlers can go: runBench's stop the run,
 * clean up (Miniflare's dispose included) and exit.
 */
function reclaimSignals(): void {
	for (const s of SIGNALS) {
		for (const l of process.listeners(s)) {
			if (!ownSignalHandlers.has(l as (...args: unknown[]) => void)) process.off(s, l);
		}
	}
}

/** Registers a cleanup; they run in reverse order, each bounded to 15 s. */
export function defer(name: string, fn: () => Promise<void> | void): void {
	cleanups.push({ name, fn });
}

async function runCleanups(): Promise<void> {
	for (let c = cleanups.pop(); c; c = cleanups.pop()) {
		const { name, fn } = c;
		let timer: NodeJS.Timeout | undefined;
		try {
			await Promise.race([
				Promise.resolve().then(fn),
				new Promise<void>((_, reject) => {
					timer = setTimeout(() => reject(new Error("timed out after 15 s")), 15_000);
				}),
			]);
		} catch (err) {
			console.error(`[bench] cleanup '${name}' failed: ${errorText(err)}`);
		} finally {
			clearTimeout(timer);
		}
	}
}

export function errorText(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}

/**
 * Runs a benchmark's main function with cleanup guaranteed: on return, on error, on
 * SIGINT/SIGTERM/SIGHUP (a second signal exits at once) and when `hardLimitMs` passes.
 */
export function runBench(main: (signal: AbortSignal) => Promise<void>, hardLimitMs: number): void {
	const controller = new AbortController();
	let signals = 0;
	const onSignal = (name: string) => {
		if (++signals > 1) process.exit(130);
		console.error(`\n[bench] ${name}: stopping and cleaning up (again to exit at once)`);
		controller.abort(new Error(`interrupted by ${name}`));
	};
	for (const s of SIGNALS) {
		const handler = () => onSignal(s);
		ownSignalHandlers.add(handler);
		process.on(s, handler);
	}
	const limit = setTimeout(() => {
		console.error(`[bench] hard time limit of ${Math.round(hardLimitMs / 1000)} s reached: stopping`);
		controller.abort(new Error("hard time limit reached"));
	}, hardLimitMs);
	limit.unref();
	let code = 0;
	main(controller.signal)
		.catch((err: unknown) => {
			code = controller.signal.aborted ? 130 : 1;
			if (controller.signal.aborted) console.error(`[bench] stopped: ${errorText(controller.signal.reason)}`);
			else
				console.error(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
		})
		.then(runCleanups)
		.finally(() => process.exit(code))
		.catch(() => process.exit(1));
}

/** Resolves after `ms`, rejects at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal.aborted) return reject(signal.reason);
		const t = setTimeout(() => {
			signal.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		const onAbort = () => {
			clearTimeout(t);
			reject(signal.reason);
		};
		signal.addEventListener("abort", onAbort, { once: true });
	});
}

// ---------------------------------------------------------------------------------------------
// Worker build and runtime

export interface WorkerBuild {
	dir: string;
	/** The bundle's modules, entry point first (what a deploy uploads). */
	modules: { type: ModuleType; path: string }[];
	config: WranglerToml;
	vars: Record<string, string>;
}

/**
 * `wrangler deploy --dry-run --outdir <tmp>`: the very bundle a deploy would upload (the
 * top-level environment: the bench sets its own vars, as for local development).
 */
export function buildWorker(): WorkerBuild {
	const dir = mkdtempSync(join(tmpdir(), "gi-bench-build-"));
	const remove = () => rmSync(dir, { recursive: true, force: true });
	defer("build dir", remove);
	process.once("exit", remove); // also after a second Ctrl-C
	const t0 = performance.now();
	// Run wrangler's entry with this Node (the project's pinned one), whatever `node` is on PATH.
	const wrangler = `${ROOT}node_modules/wrangler/bin/wrangler.js`;
	// BENCH_NO_MINIFY=1: a bundle with readable names, for CPU profiles (not for figures).
	const minify = process.env.BENCH_NO_MINIFY ? ["--no-minify"] : [];
	execFileSync(process.execPath, [wrangler, "deploy", "--dry-run", "--env=", ...minify, "--outdir", dir], {
		cwd: ROOT,
		stdio: ["ignore", "ignore", "inherit"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		timeout: 180_000,
	});
	const config = readWranglerToml();
	const vars = readWranglerVars();
	const modules: WorkerBuild["modules"] = [{ type: "ESModule", path: join(dir, "index.js") }];
	let bytes = statSync(join(dir, "index.js")).size;
	for (const file of readdirSync(dir).sort()) {
		const type = moduleTypeOf(file);
		if (file === "index.js" || !type) continue;
		modules.push({ type, path: join(dir, file) });
		bytes += statSync(join(dir, file)).size;
	}
	log(
		`built the Worker (wrangler deploy --dry-run): ${modules.length} modules, ${(bytes / 1024).toFixed(0)} KiB, in ${Math.round(performance.now() - t0)} ms`,
	);
	return { dir, modules, config, vars };
}

function benchVars(): Record<string, string> {
	const raw = process.env.BENCH_VARS;
	if (!raw) return {};
	const parsed = JSON.parse(raw) as Record<string, string>;
	log(`BENCH_VARS overrides: ${Object.keys(parsed).join(", ")} (an experiment, not the production set-up)`);
	return parsed;
}

export interface RunningWorker {
	name: string;
	/** Origin of the Worker's own workerd socket, e.g. http://127.0.0.1:40123 */
	origin: string;
	mf: Miniflare;
	/** Warnings and errors the Worker logged (console.warn/error), first 20 kept. */
	problems: { count: number; samples: string[]; byKind: Record<string, number> };
}

/**
 * Starts the built Worker in its own workerd process (own isolate memory, own Cache API
 * storage, in memory). `vars` override wrangler.toml's [vars]; secrets go in `vars` too.
 */
export async function startWorker(
	build: WorkerBuild,
	name: string,
	vars: Record<string, string>,
	/** inspectorPort: serve the V8 inspector (DevTools protocol) on this loopback port (0 = any). */
	opts: { inspectorPort?: number } = {},
): Promise<RunningWorker> {
	const { convertV4MiniflareOptions, Miniflare } = await import("miniflare");
	const sqliteClasses = new Set((build.config.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
	const durableObjects = Object.fromEntries(
		(build.config.durable_objects?.bindings ?? []).map((b) => [
			b.name,
			{ className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) },
		]),
	);
	const analyticsEngineDatasets = Object.fromEntries(
		(build.config.analytics_engine_datasets ?? []).map((d) => [d.binding, { dataset: d.dataset }]),
	);
	const problems = { count: 0, samples: [] as string[], byKind: {} as Record<string, number> };
	// Miniflare 5's constructor takes its new options format; wrangler itself builds the v4 shape
	// (documented in Miniflare's README) and converts it, and so does this.
	const options = convertV4MiniflareOptions({
		name: "gitinsight-edge",
		modules: build.modules,
		modulesRoot: build.dir,
		compatibilityDate: build.config.compatibility_date ?? "2026-11-01",
		compatibilityFlags: build.config.compatibility_flags ?? [],
		// BENCH_VARS='{"RATE_LIMIT_EVENTS":"off"}': overrides for an experiment (what a part costs).
		bindings: { ...build.vars, ...vars, ...benchVars() },
		durableObjects,
		analyticsEngineDatasets,
		host: "127.0.0.1",
		port: 0,
		...(opts.inspectorPort === undefined
			? {}
			: { inspectorHost: "127.0.0.1", inspectorPort: opts.inspectorPort }),
		// A socket straight into this Worker (no Miniflare entry worker in front of it).
		unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
		// One access-log line per request is the app's normal output: drop it, keep problems.
		handleStructuredLogs: (entry: V4WorkerdStructuredLog) => {
			if (entry.level !== "warn" && entry.level !== "error") return;
			problems.count++;
			if (problems.samples.length < 20)
				problems.samples.push(`${entry.level}: ${entry.message.slice(0, 300)}`);
			const kind = `${entry.level}: ${problemKind(entry.message)}`;
			problems.byKind[kind] = (problems.byKind[kind] ?? 0) + 1;
		},
	});
	const mf = new Miniflare({ ...options, enableDevRegistry: false, telemetry: { enabled: false } });
	reclaimSignals();
	defer(`miniflare ${name}`, () => mf.dispose());
	await mf.ready;
	reclaimSignals(); // Miniflare may register its exit hook only once workerd runs
	const direct = await mf.unsafeGetDirectURL();
	return { name, origin: direct.origin, mf, problems };
}

/**
 * The workerd processes among this process's descendants (Miniflare spawns workerd as a child);
 * empty where /proc/<pid>/task/<tid>/children is not available.
 */
export function workerdPids(): number[] {
	const found: number[] = [];
	const walk = (pid: number, depth: number) => {
		if (depth > 4) return;
		let tasks: string[] = [];
		try {
			tasks = readdirSync(`/proc/${pid}/task`);
		} catch {
			return; // gone, or not Linux
		}
		for (const task of tasks) {
			let children: number[] = [];
			try {
				children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8")
					.trim()
					.split(/\s+/)
					.filter(Boolean)
					.map(Number);
			} catch {
				continue;
			}
			for (const child of children) {
				try {
					if (readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0")[0]?.includes("workerd"))
						found.push(child);
				} catch {
					// exited meanwhile
				}
				walk(child, depth + 1);
			}
		}
	};
	walk(process.pid, 0);
	return [...new Set(found)];
}

const CLK_TCK = (() => {
	try {
		return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
	} catch {
		return 100;
	}
})();

/** User + system CPU seconds of the processes so far (/proc/<pid>/stat); gone ones count 0. */
export function cpuSeconds(pids: number[]): number {
	let ticks = 0;
	for (const pid of pids) {
		try {
			const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			ticks += Number(fields[11]) + Number(fields[12]);
		} catch {
			// gone
		}
	}
	return ticks / CLK_TCK;
}

/** Memory of a process in KiB from /proc/<pid>/status (VmRSS, RssAnon, VmHWM); null when gone. */
export function processMemoryKiB(pid: number): { rss: number; anon: number; hwm: number } | null {
	let status: string;
	try {
		status = readFileSync(`/proc/${pid}/status`, "utf8");
	} catch {
		return null;
	}
	const field = (name: string) =>
		Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
	return { rss: field("VmRSS"), anon: field("RssAnon"), hwm: field("VmHWM") };
}

/** What a logged problem is about: the app's JSON log line's msg (+ what/part), else its start. */
function problemKind(message: string): string {
	try {
		const m = JSON.parse(message) as { msg?: unknown; what?: unknown; part?: unknown };
		if (typeof m.msg === "string") {
			const sub = typeof m.what === "string" ? m.what : typeof m.part === "string" ? m.part : "";
			return sub ? `${m.msg} (${sub})` : m.msg;
		}
	} catch {
		// not one of the app's JSON lines
	}
	return message.slice(0, 80);
}

// ---------------------------------------------------------------------------------------------
// Data and stand-ins

export const PG_SERVER = process.env.BENCH_PG_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * Creates, migrates and (when it does not hold exactly `repos` repositories) seeds `name`.
 * `dropIfCreated`: when this call creates the database, it is dropped again at cleanup.
 */
export async function ensureBenchDatabase(
	name: string,
	repos: number,
	opts: { dropIfCreated?: boolean } = {},
): Promise<string> {
	const { dropDatabase, ensureDatabase, migrateDatabase, withDatabase } = await import("../lib/pg.ts");
	const { seedDatabase } = await import("../lib/seed.ts");
	const url = withDatabase(PG_SERVER, name);
	if (await ensureDatabase(PG_SERVER, name)) {
		log(`created database ${name}${opts.dropIfCreated ? " (dropped again at the end)" : ""}`);
		if (opts.dropIfCreated) defer(`database ${name}`, () => dropDatabase(PG_SERVER, name));
	}
	await migrateDatabase(url);
	const have = Number((await query<{ n: string }>(url, "SELECT count(*) AS n FROM repositories"))[0]?.n ?? 0);
	if (have !== repos) {
		log(`seeding ${name} with ${repos.toLocaleString("en")} repositories (had ${have})…`);
		const stats = await seedDatabase(url, { repos, seed: 1 });
		log(`seeded in ${(stats.ms / 1000).toFixed(1)} s`);
	} else {
		log(`database ${name}: ${repos.toLocaleString("en")} repositories`);
	}
	return url;
}

/** One query on a short-lived connection. */
export async function query<T>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
	const { default: pg } = await import("pg");
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	try {
		return (await client.query(text, params)).rows as T[];
	} finally {
		await client.end();
	}
}

export interface Stack {
	/** Worker vars: DATABASE_URL, the stand-ins' URLs, JWT_SECRET, REDIS_KEY_PREFIX. */
	vars: Record<string, string>;
	secret: string;
	redis: boolean;
}

/**
 * Starts the Neon stand-in, and the Upstash stand-in over real Redis when Redis answers (its
 * keys under `redisPrefix`, deleted now and at the end). Everything on free loopback ports.
 */
export async function startStack(dbUrl: string, redisPrefix: string): Promise<Stack> {
	const { canConnect } = await import("../lib/pg.ts");
	const { startNeonStandIn } = await import("../stack/neon-standin.ts");
	const { deleteKeysWithPrefix, startUpstashStandIn } = await import("../stack/upstash-standin.ts");
	const pgServer = new URL(dbUrl);
	const neon = await startNeonStandIn({ pgHost: pgServer.hostname, pgPort: Number(pgServer.port || 5432) });
	defer("neon stand-in", () => neon.close());
	// The Worker gets a Neon-shaped URL; the stand-in routes any host to the real server.
	const workerDb = new URL(dbUrl);
	workerDb.hostname = "db.localtest.me";
	workerDb.port = "5432";
	workerDb.password ||= "local";
	const secret = randomBytes(32).toString("hex");
	const vars: Record<string, string> = {
		DATABASE_URL: workerDb.toString(),
		NEON_HTTP_ENDPOINT: neon.httpEndpoint,
		NEON_WS_PROXY: neon.wsProxy,
		UPSTASH_REDIS_REST_URL: "",
		UPSTASH_REDIS_REST_TOKEN: "",
		JWT_SECRET: secret,
		REDIS_KEY_PREFIX: redisPrefix,
		// The rate limiter runs (its cost is part of every request) with budgets no benchmark
		// reaches; soak.ts switches it off.
		RATE_LIMIT_SEARCH: "100000000/60",
		RATE_LIMIT_READ: "100000000/60",
		RATE_LIMIT_EVENTS: "100000000/60",
	};
	const redisUrl = new URL(REDIS_URL);
	const redis = await canConnect(redisUrl.hostname, Number(redisUrl.port || 6379));
	if (redis) {
		const flushed = await deleteKeysWithPrefix(REDIS_URL, redisPrefix);
		log(`Redis: ${REDIS_URL}, key prefix ${redisPrefix} (${flushed} old keys flushed)`);
		defer("redis keys", async () => {
			await deleteKeysWithPrefix(REDIS_URL, redisPrefix);
		});
		const token = randomBytes(16).toString("hex");
		const upstash = await startUpstashStandIn({ redisUrl: REDIS_URL, token });
		defer("upstash stand-in", () => upstash.close());
		vars.UPSTASH_REDIS_REST_URL = upstash.url;
		vars.UPSTASH_REDIS_REST_TOKEN = token;
	} else {
		log(`no Redis at ${REDIS_URL}: the Worker runs WITHOUT its Redis tier`);
	}
	return { vars, secret, redis };
}

/** An HS256 token the Worker accepts: `secret` and wrangler.toml's issuer and audience. */
export async function mintToken(
	secret: string,
	vars: Record<string, string>,
	role: "user" | "admin" | "service" = "user",
): Promise<string> {
	const { SignJWT } = await import("jose");
	const issuer = vars.JWT_ISSUER;
	const audience = vars.JWT_AUDIENCE;
	if (!issuer || !audience) throw new Error("JWT_ISSUER / JWT_AUDIENCE missing from wrangler.toml [vars]");
	return new SignJWT({ role })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setIssuer(issuer)
		.setAudience(audience)
		.setSubject("bench")
		.setIssuedAt()
		.setExpirationTime("2h")
		.sign(new TextEncoder().encode(secret));
}

// ---------------------------------------------------------------------------------------------
// Load generation

export interface LoadPlan {
	mode: "open" | "closed";
	/** Base URLs; `pathOrigin[i]` picks one per request (default: the first). */
	origins: string[];
	paths: string[];
	pathOrigin?: number[];
	/** Group of each request (default 0); results are reported per group. */
	pathGroup?: number[];
	groups: string[];
	/** Cycle through `paths` until the time is up (else send each path once, in order). */
	cycle: boolean;
	headers: Record<string, string>;
	/** Open loop: requests per second, spread evenly. */
	ratePerS?: number;
	/** Closed loop: requests in flight. */
	concurrency?: number;
	/** Time limit (open loop: the schedule's length). */
	durationMs: number;
	/** Keep-alive connections per origin. */
	connections: number;
	timeoutMs: number;
	/** Open loop: a request due while this many are outstanding is dropped (counted as an error). */
	maxOutstanding?: number;
	/** Open loop: how long to wait for outstanding answers after the schedule ends (default 2 s). */
	drainMs?: number;
}

export interface GroupStats {
	name: string;
	completed: number;
	ok: number;
	errors: number;
	statuses: Record<string, number>;
	xCache: Record<string, number>;
	xCacheTier: Record<string, number>;
	/** Sum of the latencies (ms) of the answers of each X-Cache-Tier. */
	tierMs: Record<string, number>;
	/** Milliseconds, sorted; open loop: from the scheduled time. */
	latencies: Float64Array;
}

export interface LoadResult {
	elapsedMs: number;
	/** Requests started (open loop: scheduled and sent). */
	sent: number;
	dropped: number;
	/** Closed loop: the path list ran out before the time limit (or it was cut by it). */
	exhausted: boolean;
	/** Event-loop utilisation of the load generator (near 1: the client limits the figures). */
	clientBusy: number;
	groups: GroupStats[];
	errorSamples: string[];
}

/**
 * Runs `plan` in a worker thread; rejects (and stops the thread) when `signal` aborts.
 * `onProgress` gets the number of completed requests every 10 s.
 */
export function runLoad(
	plan: LoadPlan,
	signal: AbortSignal,
	onProgress?: (completed: number, elapsedMs: number) => void,
): Promise<LoadResult> {
	return new Promise((resolve, reject) => {
		if (signal.aborted) return reject(signal.reason);
		const worker = new Worker(new URL(import.meta.url), { workerData: { benchLoadPlan: plan } });
		let settled = false;
		const finish = (fn: () => void) => {
			if (settled) return;
			settled = true;
			signal.removeEventListener("abort", onAbort);
			fn();
		};
		const onAbort = () => {
			finish(() => reject(signal.reason));
			void worker.terminate();
		};
		signal.addEventListener("abort", onAbort, { once: true });
		worker.on("message", (m: LoadResult | { progress: number; elapsedMs: number }) => {
			if ("progress" in m) onProgress?.(m.progress, m.elapsedMs);
			else finish(() => resolve(m));
		});
		worker.once("error", (err) => finish(() => reject(err)));
		worker.once("exit", (code) => finish(() => reject(new Error(`load generator exited with ${code}`))));
	});
}

class Group {
	completed = 0;
	ok = 0;
	errors = 0;
	statuses: Record<string, number> = {};
	xCache: Record<string, number> = {};
	xCacheTier: Record<string, number> = {};
	tierMs: Record<string, number> = {};
	latencies: number[] = [];
	readonly name: string;
	constructor(name: string) {
		this.name = name;
	}

	record(status: number | string, latencyMs: number, res?: IncomingMessage): void {
		this.completed++;
		const key = String(status);
		this.statuses[key] = (this.statuses[key] ?? 0) + 1;
		if (typeof status === "number" && status >= 200 && status < 400) {
			this.ok++;
			this.latencies.push(latencyMs);
		} else {
			this.errors++;
		}
		if (res) {
			const xc = headerOf(res, "x-cache");
			const tier = headerOf(res, "x-cache-tier");
			this.xCache[xc] = (this.xCache[xc] ?? 0) + 1;
			this.xCacheTier[tier] = (this.xCacheTier[tier] ?? 0) + 1;
			this.tierMs[tier] = (this.tierMs[tier] ?? 0) + latencyMs;
		}
	}

	stats(): GroupStats {
		const latencies = Float64Array.from(this.latencies).sort();
		const { name, completed, ok, errors, statuses, xCache, xCacheTier, tierMs } = this;
		return { name, completed, ok, errors, statuses, xCache, xCacheTier, tierMs, latencies };
	}
}

function headerOf(res: IncomingMessage, name: string): string {
	const v = res.headers[name];
	return (Array.isArray(v) ? v[0] : v) ?? "-";
}

async function generateLoad(
	plan: LoadPlan,
	progress: (completed: number, elapsedMs: number) => void,
): Promise<LoadResult> {
	const agents = plan.origins.map(
		() => new Agent({ keepAlive: true, maxSockets: plan.connections, maxFreeSockets: plan.connections }),
	);
	const targets = plan.origins.map((o) => new URL(o));
	const groups = plan.groups.map((g) => new Group(g));
	const errorSamples: string[] = [];
	let sent = 0;
	let dropped = 0;
	let outstanding = 0;
	let allDone: (() => void) | undefined;
	const inflight = new Set<ClientRequest>();

	const send = (i: number, startedAt: number): Promise<void> => {
		const path = plan.paths[i % plan.paths.length] ?? "/";
		const o = plan.pathOrigin?.[i % plan.paths.length] ?? 0;
		const target = targets[o] ?? targets[0];
		const group = groups[plan.pathGroup?.[i % plan.paths.length] ?? 0] ?? groups[0];
		if (!target || !group) throw new Error("load plan without origins or groups");
		sent++;
		outstanding++;
		return new Promise<void>((resolve) => {
			let done = false;
			const finish = (status: number | string, res?: IncomingMessage) => {
				if (done) return;
				done = true;
				outstanding--;
				inflight.delete(req);
				group.record(status, performance.now() - startedAt, res);
				resolve();
				if (outstanding === 0) allDone?.();
			};
			const req = request(
				{
					agent: agents[o],
					host: target.hostname,
					port: target.port,
					path,
					method: "GET",
					headers: plan.headers,
				},
				(res) => {
					res.on("error", (err) => finish(`error:${err.message}`));
					res.on("end", () => finish(res.statusCode ?? 0, res));
					res.resume();
				},
			);
			inflight.add(req);
			req.setTimeout(plan.timeoutMs, () => req.destroy(new Error("timeout")));
			req.on("error", (err) => {
				if (errorSamples.length < 10) errorSamples.push(`${path}: ${err.message}`);
				finish(`error:${err.message}`);
			});
			req.end();
		});
	};

	const t0 = performance.now();
	const elu0 = performance.eventLoopUtilization();
	const ticker = setInterval(() => {
		progress(
			groups.reduce((a, g) => a + g.completed, 0),
			performance.now() - t0,
		);
	}, 10_000);
	let exhausted = false;
	if (plan.mode === "open") {
		const rate = plan.ratePerS ?? 1000;
		const interval = 1000 / rate;
		const total = Math.floor((rate * plan.durationMs) / 1000);
		const limit = plan.maxOutstanding ?? 10_000;
		await new Promise<void>((resolve) => {
			let next = 0;
			const tick = () => {
				const now = performance.now();
				while (next < total && t0 + next * interval <= now) {
					const due = t0 + next * interval;
					if (outstanding >= limit) {
						dropped++;
						const g = groups[plan.pathGroup?.[next % plan.paths.length] ?? 0];
						g?.record("dropped", 0);
					} else {
						void send(next, due);
					}
					next++;
				}
				if (next < total) {
					setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
				} else if (outstanding === 0) {
					resolve();
				} else {
					// Answers still outstanding get `drainMs`; then they count as unfinished errors.
					allDone = resolve;
					setTimeout(() => {
						for (const req of inflight) req.destroy(new Error("unfinished when the run ended"));
					}, plan.drainMs ?? 2000);
				}
			};
			tick();
		});
	} else {
		const deadline = t0 + plan.durationMs;
		let next = 0;
		const loop = async () => {
			while (performance.now() < deadline) {
				if (!plan.cycle && next >= plan.paths.length) return;
				const i = next++;
				await send(i, performance.now());
			}
		};
		await Promise.all(Array.from({ length: plan.concurrency ?? 1 }, loop));
		exhausted = !plan.cycle && next >= plan.paths.length;
	}
	const elapsedMs = performance.now() - t0;
	const clientBusy = performance.eventLoopUtilization(elu0).utilization;
	clearInterval(ticker);
	for (const a of agents) a.destroy();
	return {
		elapsedMs,
		sent,
		dropped,
		exhausted,
		clientBusy,
		groups: groups.map((g) => g.stats()),
		errorSamples,
	};
}

// The worker-thread side of runLoad.
if (!isMainThread && parentPort && (workerData as { benchLoadPlan?: LoadPlan } | null)?.benchLoadPlan) {
	const port = parentPort;
	const plan = (workerData as { benchLoadPlan: LoadPlan }).benchLoadPlan;
	generateLoad(plan, (completed, elapsedMs) => port.postMessage({ progress: completed, elapsedMs })).then(
		(result) => {
			port.postMessage(
				result,
				result.groups.map((g) => g.latencies.buffer as ArrayBuffer),
			);
			port.close();
		},
		(err: unknown) => {
			throw err;
		},
	);
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
	if (sorted.length === 0) return Number.NaN;
	return (
		sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
	);
}

export function median(values: number[]): number {
	const s = [...values].sort((a, b) => a - b);
	if (s.length === 0) return Number.NaN;
	const mid = Math.floor(s.length / 2);
	return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Merges counters: { a: 1 } + { a: 2, b: 1 } → { a: 3, b: 1 }. */
export function addCounts(
	into: Record<string, number>,
	from: Record<string, number>,
): Record<string, number> {
	for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
	return into;
}

/** `memory 96.1%, edge 3.9%` (largest first). */
export function shares(counts: Record<string, number>): string {
	const total = Object.values(counts).reduce((a, b) => a + b, 0);
	if (total === 0) return "-";
	return Object.entries(counts)
		.sort((a, b) => b[1] - a[1])
		.map(([k, v]) => `${k} ${((100 * v) / total).toFixed(v === total ? 0 : 1)}%`)
		.join(", ");
}

export const fmtMs = (ms: number): string =>
	Number.isNaN(ms) ? "-" : ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
export const fmtInt = (n: number): string => Math.round(n).toLocaleString("en");

/** Deterministic PRNG (mulberry32) in [0, 1). */
export function rng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** Sampler of ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (inverse CDF, binary search). */
export function zipf(n: number, s: number, random: () => number): () => number {
	const cdf = new Float64Array(n);
	let sum = 0;
	for (let k = 0; k < n; k++) {
		sum += 1 / (k + 1) ** s;
		cdf[k] = sum;
	}
	return () => {
		const u = random() * sum;
		let lo = 0;
		let hi = n - 1;
		while (lo < hi) {
			const mid = (lo + hi) >>> 1;
			if ((cdf[mid] ?? 0) < u) lo = mid + 1;
			else hi = mid;
		}
		return lo;
	};
}

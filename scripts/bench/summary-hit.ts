// `npm run bench:summary -- [--rounds 3] [--closed-seconds 8] [--connections 32]
//  [--open-seconds 15] [--rate 1250]`: the issue's targets for the cached summary
// (GET /api/v1/fast/repositories/{id}/summary), side by side in one run:
//   1. memory-tier hit (Worker A)  >= 0.5 x bare GET /ping in the same workerd (A);
//   2. Cache API hit (Worker B)    >= 0.8 x a bare Worker that does one caches.default.match and
//                                  returns what it finds (C): locally the Cache API is
//                                  Miniflare's own cache service, which bounds this tier, so the
//                                  tier is compared with that bound, not with /ping;
//   3. memory-tier hit (A)         >= 0.5 x a Go peer built as the seed documents its handler.
// Each ratio is of the closed-loop maximum throughput (req/s), the median over rounds.
//
// What runs (all set up here and torn down at the end, also on Ctrl-C):
//   - the bundle `wrangler deploy` would upload (--dry-run --outdir <tmp>), in two Miniflare
//     instances, each its own workerd process, reached on a direct workerd socket (no wrangler
//     dev proxy, no Miniflare entry worker in front):
//       A: CACHE_MEMORY_TTL_MS=2000 (wrangler.toml's default): hits come from isolate memory,
//          and from the Cache API for the one request per id and 2 s that finds the copy expired;
//       B: CACHE_MEMORY_TTL_MS=0: every hit is a Cache API hit;
//     both as in production otherwise: the rate limiter on (Upstash stand-in over real Redis;
//     RATE_LIMIT_READ raised from wrangler.toml's 600/60 to 1000000/60 so the bench's one caller,
//     at most a few hundred thousand requests a minute, is never refused: any 429 would show as
//     a non-2xx error), the access log line and the Analytics Engine datapoint of every request
//     (Miniflare parses the log lines in this Node process: that cost is on the machine too);
//   - C: scripts/bench/cache-match-worker.js, a module Worker with the same Miniflare options as
//     B (compatibility date and flags, vars, AE binding, direct socket; no Durable Objects: it
//     exports none). GET /match/<n> is one caches.default.match; 100 keys are stored first
//     (POST /warm) with a summary's JSON body, the same bytes the Worker serves;
//   - the Go peer (scripts/bench/go-peer/main.go): Gin, HS256 Bearer check with golang-jwt, one
//     Redis GET (redigo, the same Redis) of a key this bench fills with the exact body the Worker
//     serves, Postgres (pgx v4) on a miss, X-Cache: HIT|MISS. Built from Debian's packages in
//     GOPATH mode (installed with apt-get where root and apt-get allow; else skipped with a
//     message) and run with GOMAXPROCS=1;
//   - database gi_bench_summary (created, migrated and seeded with 10,000 repositories when
//     absent), the Neon and Upstash stand-ins on free ports (Redis key prefix gi:bench:summary:,
//     flushed at start and end), a per-run JWT secret and one token for it.
// 100 repository ids are warmed (one request each on A and B). Then per round, in rotating
// order, for each target (GET /ping on A, summary on A, summary on B, GET /match/<n> on C,
// summary on the Go peer; the summary paths cycle over the 100 ids with the Bearer token):
//   closed loop: wrk -t1 -c32 -d8s --latency (Debian's wrk; the Node closed-loop runner of
//                lib.ts when wrk cannot be installed), the same settings for every target: the
//                maximum throughput. One wrk thread is one core's worth of client on this
//                2-core machine, which leaves the server under test the other core (reported:
//                wrk's and the server's CPU over the run; near 100% for wrk = the client limits);
//   fixed rate:  lib.ts's open-loop runner at 1,250 req/s for 15 s: latency counted from each
//                request's scheduled time (no coordinated omission); errors include "dropped"
//                (due while 5,000 were outstanding) and "unfinished" (no answer 1 s after the end).
// Reported: per round and the median over rounds of req/s, p50/p99 and errors (wrk: non-2xx/3xx
// answers and socket errors); the X-Cache-Tier / X-Cache distribution of every target, counted
// by wrk's Lua `response` hook and by the open-loop runner; the headline ratios with targets.
import { createRequire } from "node:module";
import { availableParallelism, loadavg } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureDebianPackages } from "./debian.ts";
import { buildGoPeer, type GoPeer, startGoPeer } from "./go-peer.ts";
import {
	addCounts,
	buildWorker,
	cpuSeconds,
	ensureBenchDatabase,
	fmtInt,
	fmtMs,
	type LoadResult,
	log,
	median,
	mintToken,
	percentile,
	query,
	REDIS_URL,
	type RunningWorker,
	runBench,
	runLoad,
	shares,
	sleep,
	startStack,
	startWorker,
	workerdPids,
} from "./lib.ts";
import { runWrk } from "./wrk.ts";

const { values } = parseArgs({
	options: {
		rounds: { type: "string", default: "3" },
		"closed-seconds": { type: "string", default: "8" },
		connections: { type: "string", default: "32" },
		"open-seconds": { type: "string", default: "15" },
		rate: { type: "string", default: "1250" },
	},
	strict: true,
});
const ROUNDS = Number(values.rounds);
const CLOSED_S = Number(values["closed-seconds"]);
const CONNECTIONS = Number(values.connections);
const OPEN_MS = Number(values["open-seconds"]) * 1000;
const RATE = Number(values.rate);
for (const [name, v, max] of [
	["rounds", ROUNDS, 10],
	["closed-seconds", CLOSED_S, 120],
	["connections", CONNECTIONS, 512],
	["open-seconds", OPEN_MS / 1000, 120],
	["rate", RATE, 20_000],
] as const) {
	if (!(Number.isInteger(v) && v > 0 && v <= max)) {
		console.error(`--${name} must be an integer from 1 to ${max}`);
		process.exit(2);
	}
}

const DB_NAME = "gi_bench_summary";
const REPOS = 10_000;
const WARM_IDS = 100;
const REDIS_PREFIX = "gi:bench:summary:";
/** The Go peer's keys: under the bench's prefix, so they are flushed with it. */
const GO_PREFIX = `${REDIS_PREFIX}go:`;
const READ_BUDGET = "1000000/60";
const WRK_THREADS = 1;

type Key = "ping" | "pinglog" | "memory" | "edge" | "match" | "go";

interface Target {
	key: Key;
	name: string;
	origin: string;
	paths: string[];
	/** Header names as wrk sends them; the open-loop runner gets the same. */
	headers: Record<string, string>;
	/** Processes whose CPU time is the server's (the workerd processes, or the Go peer). */
	serverPids: () => number[];
}

interface Closed {
	reqPerS: number;
	p50: number;
	p99: number;
	errors: number;
	errorKinds: Record<string, number>;
	xCache: Record<string, number>;
	xCacheTier: Record<string, number>;
	/** CPU of the load generator over the run (1 = one core). */
	clientCpu: number;
	/** CPU of the server's processes over the run. */
	serverCpu: number;
	/** CPU of this Node process (stand-ins, Miniflare's log parsing) over the run. */
	harnessCpu: number;
}

interface Open {
	reqPerS: number;
	p50: number;
	p99: number;
	errors: number;
	errorKinds: Record<string, number>;
	xCache: Record<string, number>;
	xCacheTier: Record<string, number>;
}

function openOf(r: LoadResult): Open {
	const g = r.groups[0];
	if (!g) throw new Error("no results");
	return {
		reqPerS: g.ok / (r.elapsedMs / 1000),
		p50: percentile(g.latencies, 50),
		p99: percentile(g.latencies, 99),
		errors: g.errors,
		errorKinds: Object.fromEntries(Object.entries(g.statuses).filter(([k]) => !/^[23]\d\d$/.test(k))),
		xCache: g.xCache,
		xCacheTier: g.xCacheTier,
	};
}

const pct = (x: number) => `${Math.round(100 * x)}%`;
const errorsOf = (m: { errors: number; errorKinds: Record<string, number> }) =>
	m.errors === 0
		? "0"
		: `${m.errors} (${Object.entries(m.errorKinds)
				.map(([k, v]) => `${k} ${v}`)
				.join(", ")})`;

runBench(
	async (signal) => {
		const started = performance.now();
		log(
			`${availableParallelism()} CPUs, load average ${loadavg()
				.map((l) => l.toFixed(2))
				.join(" ")} (a shared machine: figures may be noisy)`,
		);

		// Tools first (apt-get may take a while), then the Go peer's build.
		const wrk = await ensureDebianPackages(["wrk"]);
		if (wrk.ok) log("load generator: wrk (Debian)");
		else log(`wrk unavailable (${wrk.reason}): the closed loop uses lib.ts's Node runner instead`);
		const goBuild = await buildGoPeer();
		if (goBuild.ok && "bin" in goBuild)
			log(`built the Go peer (GOPATH mode, Debian's packages) in ${Math.round(goBuild.ms)} ms`);
		else if (!goBuild.ok) log(`Go peer SKIPPED: ${goBuild.reason}`);

		const build = buildWorker();
		const dbUrl = await ensureBenchDatabase(DB_NAME, REPOS);
		const stack = await startStack(dbUrl, REDIS_PREFIX);
		const token = await mintToken(stack.secret, build.vars);
		const prod = { ...stack.vars, RATE_LIMIT_READ: READ_BUDGET };
		const withMemory = await startWorker(build, "A", { ...prod, CACHE_MEMORY_TTL_MS: "2000" });
		const edgeVars = { ...prod, CACHE_MEMORY_TTL_MS: "0" };
		const edgeOnly = await startWorker(build, "B", edgeVars);
		const matchDir = dirname(fileURLToPath(import.meta.url));
		const matcher = await startWorker(
			{
				dir: matchDir,
				modules: [{ type: "ESModule", path: `${matchDir}/cache-match-worker.js` }],
				config: { ...build.config, durable_objects: undefined, migrations: undefined },
				vars: build.vars,
			},
			"C",
			edgeVars,
		);
		const workers = [withMemory, edgeOnly, matcher];
		log(
			`Miniflare A (memory tier 2 s) at ${withMemory.origin}, B (memory tier off) at ${edgeOnly.origin}, C (caches.default.match) at ${matcher.origin}; RATE_LIMIT_READ ${READ_BUDGET}`,
		);

		const rows = await query<{ id: string }>(
			dbUrl,
			"SELECT id FROM repositories ORDER BY stars DESC, id LIMIT $1",
			[WARM_IDS + 1],
		);
		const ids = rows.slice(0, WARM_IDS).map((r) => r.id);
		const missId = rows[WARM_IDS]?.id;
		const paths = ids.map((id) => `/api/v1/fast/repositories/${id}/summary`);
		const auth = { Authorization: `Bearer ${token}` };

		// Warm-up: one request per id and instance (A loads the origin and fills Redis; B then finds
		// the entries in Redis), and a check that the answers are what they should be.
		const bodies = new Map<string, string>();
		for (const w of [withMemory, edgeOnly]) {
			const tiers: Record<string, number> = {};
			for (const [i, path] of paths.entries()) {
				const res = await fetch(`${w.origin}${path}`, { headers: auth, signal });
				const text = await res.text();
				const body = JSON.parse(text) as { id?: string };
				if (res.status !== 200 || !path.includes(`/${body.id}/`)) {
					throw new Error(`warm-up: ${path} answered ${res.status} ${text.slice(0, 200)}`);
				}
				bodies.set(ids[i] ?? "", text);
				const tier = res.headers.get("x-cache-tier") ?? "-";
				tiers[tier] = (tiers[tier] ?? 0) + 1;
			}
			const ping = await fetch(`${w.origin}/ping`, { signal });
			if (ping.status !== 200 || (await ping.text()) !== "pong")
				throw new Error("GET /ping did not answer pong");
			log(`warmed ${paths.length} ids on ${w.name}: ${shares(tiers)}`);
		}
		const sizes = [...bodies.values()].map((b) => Buffer.byteLength(b));
		const sample = bodies.get(ids[0] ?? "") ?? "";

		// C: 100 keys holding a summary body.
		const warm = await fetch(`${matcher.origin}/warm?keys=${WARM_IDS}`, {
			method: "POST",
			body: sample,
			signal,
		});
		if (warm.status !== 200) throw new Error(`cache-match warm-up answered ${warm.status}`);
		const matchPaths = ids.map((_, n) => `/match/${n}`);
		for (const p of matchPaths) {
			const res = await fetch(`${matcher.origin}${p}`, { signal });
			const text = await res.text();
			if (res.status !== 200 || text !== sample) throw new Error(`cache-match ${p}: ${res.status}`);
		}
		log(
			`summary bodies ${Math.min(...sizes)}-${Math.max(...sizes)} bytes; C stores ${Buffer.byteLength(sample)} bytes under ${WARM_IDS} keys, all 100 match`,
		);

		// The Go peer: its Redis keys hold the very bodies the Worker served.
		let goPeer: GoPeer | undefined;
		if (goBuild.ok && "bin" in goBuild) {
			const { Redis } = createRequire(import.meta.url)("ioredis") as typeof import("ioredis");
			const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
			await redis.connect();
			try {
				for (const [id, body] of bodies) await redis.set(`${GO_PREFIX}repo_summary:${id}`, body, "EX", 3600);
				if (missId) await redis.del(`${GO_PREFIX}repo_summary:${missId}`);
			} finally {
				redis.disconnect();
			}
			goPeer = await startGoPeer(goBuild.bin, {
				LISTEN: "127.0.0.1:0",
				JWT_SECRET: stack.secret,
				JWT_ISSUER: build.vars.JWT_ISSUER ?? "",
				JWT_AUDIENCE: build.vars.JWT_AUDIENCE ?? "",
				REDIS_ADDR: `${new URL(REDIS_URL).hostname}:${new URL(REDIS_URL).port || 6379}`,
				REDIS_KEY_PREFIX: GO_PREFIX,
				DATABASE_URL: dbUrl,
			});
			const origin = goPeer.origin;
			const noToken = await fetch(`${origin}${paths[0]}`, { signal });
			await noToken.body?.cancel();
			const hit = await fetch(`${origin}${paths[0]}`, { headers: auth, signal });
			const hitText = await hit.text();
			if (noToken.status !== 401 || hit.status !== 200 || hit.headers.get("x-cache") !== "HIT")
				throw new Error(
					`Go peer check: no token ${noToken.status}, with token ${hit.status} X-Cache ${hit.headers.get("x-cache")}`,
				);
			const same = JSON.stringify(JSON.parse(hitText)) === JSON.stringify(JSON.parse(sample));
			let miss = "no miss check";
			if (missId) {
				const first = await fetch(`${origin}/api/v1/fast/repositories/${missId}/summary`, {
					headers: auth,
					signal,
				});
				await first.text();
				const second = await fetch(`${origin}/api/v1/fast/repositories/${missId}/summary`, {
					headers: auth,
					signal,
				});
				await second.text();
				miss = `an id not in Redis: ${first.status} X-Cache ${first.headers.get("x-cache")}, then ${second.status} X-Cache ${second.headers.get("x-cache")}`;
			}
			log(
				`Go peer (GOMAXPROCS=1) at ${origin}: no token 401; hit 200 X-Cache HIT, body ${hitText === sample ? "byte-identical to" : same ? "the same JSON as (not byte-identical to)" : "DIFFERENT from"} the Worker's; ${miss}`,
			);
		}

		const workerd = () => workerdPids();
		const targets: Target[] = [
			{
				key: "ping",
				name: "bare GET /ping (A)",
				origin: withMemory.origin,
				paths: ["/ping"],
				headers: {},
				serverPids: workerd,
			},
			{
				key: "memory",
				name: "summary, memory tier (A)",
				origin: withMemory.origin,
				paths,
				headers: auth,
				serverPids: workerd,
			},
			{
				key: "edge",
				name: "summary, Cache API (B)",
				origin: edgeOnly.origin,
				paths,
				headers: auth,
				serverPids: workerd,
			},
			{
				key: "pinglog",
				name: "bare route + access-log line (C)",
				origin: matcher.origin,
				paths: ["/ping-log"],
				headers: {},
				serverPids: workerd,
			},
			{
				key: "match",
				name: "bare caches.match (C)",
				origin: matcher.origin,
				paths: matchPaths,
				headers: {},
				serverPids: workerd,
			},
		];
		if (goPeer) {
			const pid = goPeer.pid;
			targets.push({
				key: "go",
				name: "Go peer summary",
				origin: goPeer.origin,
				paths,
				headers: auth,
				serverPids: () => [pid],
			});
		}

		const closedLoop = async (t: Target, seconds: number): Promise<Closed> => {
			const pids = t.serverPids();
			const server0 = cpuSeconds(pids);
			const harness0 = process.cpuUsage();
			const t0 = performance.now();
			if (wrk.ok) {
				const r = await runWrk(
					{
						origin: t.origin,
						paths: t.paths,
						headers: t.headers,
						threads: WRK_THREADS,
						connections: CONNECTIONS,
						durationS: seconds,
						timeoutS: 10,
					},
					signal,
				);
				const elapsed = (performance.now() - t0) / 1000;
				const harness = process.cpuUsage(harness0);
				const xCache: Record<string, number> = {};
				const xCacheTier: Record<string, number> = {};
				for (const [k, n] of Object.entries(r.cacheCounts)) {
					const [tier = "-", xc = "-"] = k.split("|");
					xCacheTier[tier] = (xCacheTier[tier] ?? 0) + n;
					xCache[xc] = (xCache[xc] ?? 0) + n;
				}
				const errorKinds = Object.fromEntries(
					[
						["non-2xx/3xx", r.non2xx],
						["connect", r.socket.connect],
						["read", r.socket.read],
						["write", r.socket.write],
						["timeout", r.socket.timeout],
					].filter(([, n]) => Number(n) > 0),
				) as Record<string, number>;
				return {
					reqPerS: r.reqPerS,
					p50: r.p50,
					p99: r.p99,
					errors: Object.values(errorKinds).reduce((a, b) => a + b, 0),
					errorKinds,
					xCache,
					xCacheTier,
					clientCpu: r.clientCpu,
					serverCpu: (cpuSeconds(pids) - server0) / elapsed,
					harnessCpu: (harness.user + harness.system) / 1e6 / elapsed,
				};
			}
			const r = await runLoad(
				{
					mode: "closed",
					origins: [t.origin],
					paths: t.paths,
					groups: [t.name],
					cycle: true,
					headers: t.headers,
					concurrency: CONNECTIONS,
					durationMs: seconds * 1000,
					connections: CONNECTIONS,
					timeoutMs: 10_000,
				},
				signal,
			);
			const elapsed = (performance.now() - t0) / 1000;
			const harness = process.cpuUsage(harness0);
			return {
				...openOf(r),
				clientCpu: r.clientBusy,
				serverCpu: (cpuSeconds(pids) - server0) / elapsed,
				harnessCpu: (harness.user + harness.system) / 1e6 / elapsed,
			};
		};

		// JIT and connection warm-up of every target (not measured).
		for (const t of targets) await closedLoop(t, 2);

		const closed = new Map<Key, Closed[]>(targets.map((t) => [t.key, []]));
		const open = new Map<Key, Open[]>(targets.map((t) => [t.key, []]));
		const width = Math.max(...targets.map((t) => t.name.length));
		const lg = wrk.ok
			? `wrk -t${WRK_THREADS} -c${CONNECTIONS} -d${CLOSED_S}s`
			: `node closed loop (${CONNECTIONS})`;
		for (let round = 0; round < ROUNDS; round++) {
			console.log(`\nround ${round + 1}/${ROUNDS}`);
			const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
			for (const t of order) {
				const c = await closedLoop(t, CLOSED_S);
				await sleep(500, signal);
				const o = openOf(
					await runLoad(
						{
							origins: [t.origin],
							paths: t.paths,
							groups: [t.name],
							cycle: true,
							headers: t.headers,
							timeoutMs: 10_000,
							mode: "open",
							ratePerS: RATE,
							durationMs: OPEN_MS,
							connections: 64,
							maxOutstanding: 5000,
							drainMs: 1000,
						},
						signal,
					),
				);
				await sleep(500, signal);
				closed.get(t.key)?.push(c);
				open.get(t.key)?.push(o);
				const tiers =
					t.key === "ping" || t.key === "pinglog" || t.key === "match"
						? ""
						: `  [${shares(c.xCacheTier)}; X-Cache ${shares(c.xCache)}]`;
				console.log(
					`  ${t.name.padEnd(width)}  ${lg}: ${fmtInt(c.reqPerS)} req/s p50 ${fmtMs(c.p50)} p99 ${fmtMs(c.p99)} ms err ${errorsOf(c)}, CPU client ${pct(c.clientCpu)} server ${pct(c.serverCpu)} (${fmtInt((c.serverCpu * 1e6) / Math.max(1, c.reqPerS))} µs/req) harness ${pct(c.harnessCpu)}` +
						`  | ${fmtInt(RATE)} req/s fixed: p50 ${fmtMs(o.p50)} p99 ${fmtMs(o.p99)} ms err ${errorsOf(o)}${tiers}`,
				);
			}
			const r = (a: Key, b: Key) => {
				const x = closed.get(a)?.at(-1)?.reqPerS;
				const y = closed.get(b)?.at(-1)?.reqPerS;
				return x && y ? `${(x / y).toFixed(2)}x` : "-";
			};
			console.log(
				`  ratios this round: memory/ping ${r("memory", "ping")}, Cache API/caches.match ${r("edge", "match")}, memory/Go ${r("memory", "go")}`,
			);
		}

		const medC = (k: Key, f: (x: Closed) => number) => median((closed.get(k) ?? []).map(f));
		const medO = (k: Key, f: (x: Open) => number) => median((open.get(k) ?? []).map(f));
		const sumErr = (m: { errors: number }[] | undefined) =>
			String((m ?? []).reduce((a, x) => a + x.errors, 0));
		console.log(
			`\nmedians over ${ROUNDS} round(s): closed loop ${lg}; fixed rate ${fmtInt(RATE)} req/s for ${OPEN_MS / 1000} s (latency from the scheduled time)`,
		);
		const header = [
			"target",
			"closed req/s",
			"p50 ms",
			"p99 ms",
			"errors",
			"wrk CPU",
			"server CPU",
			"fixed p50",
			"p99",
			"errors",
		];
		const table = targets.map((t) => [
			t.name,
			fmtInt(medC(t.key, (x) => x.reqPerS)),
			fmtMs(medC(t.key, (x) => x.p50)),
			fmtMs(medC(t.key, (x) => x.p99)),
			sumErr(closed.get(t.key)),
			pct(medC(t.key, (x) => x.clientCpu)),
			pct(medC(t.key, (x) => x.serverCpu)),
			fmtMs(medO(t.key, (x) => x.p50)),
			fmtMs(medO(t.key, (x) => x.p99)),
			sumErr(open.get(t.key)),
		]);
		const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
		const line = (cells: string[]) =>
			`  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
		console.log(line(header));
		for (const r of table) console.log(line(r));
		console.log(
			"  (errors: the sum over rounds; CPU: share of one core over the closed-loop run, server = all workerd processes or the Go peer)",
		);

		console.log("\nX-Cache-Tier / X-Cache (all rounds, closed loop and fixed rate):");
		for (const t of targets) {
			if (t.key === "ping" || t.key === "pinglog" || t.key === "match") continue;
			const tiers: Record<string, number> = {};
			const xc: Record<string, number> = {};
			for (const m of [...(closed.get(t.key) ?? []), ...(open.get(t.key) ?? [])]) {
				addCounts(tiers, m.xCacheTier);
				addCounts(xc, m.xCache);
			}
			console.log(`  ${t.name.padEnd(width)}  X-Cache-Tier ${shares(tiers)}; X-Cache ${shares(xc)}`);
		}

		const headline = (label: string, a: Key, b: Key, target: number) => {
			const x = medC(a, (m) => m.reqPerS);
			const y = medC(b, (m) => m.reqPerS);
			if (!(x > 0 && y > 0)) return `  ${label.padEnd(36)}  -      (target >= ${target}; not measured)`;
			const ratio = x / y;
			return `  ${label.padEnd(36)}  ${ratio.toFixed(2)}x  (target >= ${target}: ${ratio >= target ? "met" : "NOT met"})  ${fmtInt(x)} / ${fmtInt(y)} req/s`;
		};
		console.log(
			`\nheadline: closed-loop max throughput, ${lg}, median req/s over ${ROUNDS} round(s), ratio of the medians`,
		);
		console.log(headline("memory-tier hit / bare /ping", "memory", "ping", 0.5));
		console.log(headline("Cache API hit / bare caches.match", "edge", "match", 0.8));
		console.log(headline("(memory-tier hit / bare route + log)", "memory", "pinglog", 0.5));
		console.log(
			goPeer
				? headline("memory-tier hit / Go peer", "memory", "go", 0.5)
				: `  ${"memory-tier hit / Go peer".padEnd(36)}  -      (target >= 0.5; Go peer skipped: ${goBuild.ok ? "?" : goBuild.reason})`,
		);
		if (goPeer) console.log(headline("(Cache API hit / Go peer)", "edge", "go", 0.5));
		const delta = (a: Key, b: Key, f: (x: Open) => number) => {
			const d = medO(a, f) - medO(b, f);
			return `${d >= 0 ? "+" : ""}${fmtMs(d)}`;
		};
		console.log(
			`  fixed rate ${fmtInt(RATE)} req/s, p50 / p99 over the baseline: memory tier vs /ping ${delta("memory", "ping", (x) => x.p50)} / ${delta("memory", "ping", (x) => x.p99)} ms; Cache API vs caches.match ${delta("edge", "match", (x) => x.p50)} / ${delta("edge", "match", (x) => x.p99)} ms${goPeer ? `; memory tier vs Go peer ${delta("memory", "go", (x) => x.p50)} / ${delta("memory", "go", (x) => x.p99)} ms` : ""}`,
		);

		for (const w of workers as RunningWorker[]) {
			if (w.problems.count > 0) {
				console.log(`\nWorker ${w.name} logged ${w.problems.count} warnings/errors:`);
				for (const [kind, n] of Object.entries(w.problems.byKind).sort((a, b) => b[1] - a[1]))
					console.log(`  ${n} x ${kind}`);
			}
		}
		if (goPeer && goPeer.logLines.length > 0) {
			console.log(`\nGo peer logged:`);
			for (const s of goPeer.logLines.slice(0, 5)) console.log(`  ${s}`);
		}
		log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
	},
	// Set-up (apt-get, go build, seeding) plus, per round and target, the two runs and pauses.
	10 * 60_000 + ROUNDS * 5 * (CLOSED_S + OPEN_MS / 1000 + 4) * 1000,
);

// `npm run bench:summary -- [--rounds 3] [--open-seconds 15] [--closed-seconds 8] [--rate 1250]
//  [--concurrency 32]`: the cached summary path against a bare Hono route, in the same Worker
// build and the same runtime.
//
// Set-up (all its own, torn down at the end, also on Ctrl-C): the bundle `wrangler deploy` would
// upload (--dry-run --outdir <tmp>); database gi_bench_summary (created, migrated and seeded
// with 10,000 repositories when absent); the Neon and Upstash stand-ins on free ports (Redis key
// prefix gi:bench:summary:, flushed at start and end); a per-run JWT secret and a token for it.
// Two Miniflare instances run the bundle, each in its own workerd process, reached on a direct
// workerd socket (no wrangler dev proxy, no Miniflare entry worker in front):
//   A: CACHE_MEMORY_TTL_MS=2000 (the default): hits come from isolate memory, and from the Cache
//      API for the one request per id and 2 s that finds the memory copy expired;
//   B: CACHE_MEMORY_TTL_MS=0: every hit is a Cache API hit.
// 100 repository ids are warmed (one request each per instance), then per round, in rotating
// order, for GET /ping (bare, on A), the summary on A and the summary on B (cycling over the 100
// ids, Bearer token):
//   open loop:   a fixed 1,250 req/s for 15 s; each request is sent at its due time whatever is
//                still outstanding, and its latency counts from that due time. An overloaded
//                server shows as errors: "dropped" (due while 5,000 were outstanding) and
//                "unfinished" (no answer 1 s after the schedule ended);
//   closed loop: 32 keep-alive connections back to back for 8 s: the maximum throughput.
// Reported: per round and the median over rounds of req/s, p50, p99 and errors; the X-Cache /
// X-Cache-Tier distribution; the ratio summary/bare of req/s (target >= 0.8).
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
	addCounts,
	buildWorker,
	ensureBenchDatabase,
	fmtInt,
	fmtMs,
	type LoadResult,
	log,
	median,
	mintToken,
	percentile,
	query,
	type RunningWorker,
	runBench,
	runLoad,
	shares,
	sleep,
	startStack,
	startWorker,
} from "./lib.ts";

const { values } = parseArgs({
	options: {
		rounds: { type: "string", default: "3" },
		"open-seconds": { type: "string", default: "15" },
		"closed-seconds": { type: "string", default: "8" },
		rate: { type: "string", default: "1250" },
		concurrency: { type: "string", default: "32" },
	},
	strict: true,
});
const ROUNDS = Number(values.rounds);
const OPEN_MS = Number(values["open-seconds"]) * 1000;
const CLOSED_MS = Number(values["closed-seconds"]) * 1000;
const RATE = Number(values.rate);
const CONCURRENCY = Number(values.concurrency);
for (const [name, v, max] of [
	["rounds", ROUNDS, 10],
	["open-seconds", OPEN_MS / 1000, 120],
	["closed-seconds", CLOSED_MS / 1000, 120],
	["rate", RATE, 20_000],
	["concurrency", CONCURRENCY, 512],
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

interface Target {
	name: string;
	worker: RunningWorker;
	paths: string[];
	headers: Record<string, string>;
}

interface Measured {
	reqPerS: number;
	p50: number;
	p99: number;
	errors: number;
	/** Non-2xx outcomes: "dropped", "error:timeout", "503"… */
	errorKinds: Record<string, number>;
	xCache: Record<string, number>;
	xCacheTier: Record<string, number>;
	clientBusy: number;
}

function summarise(r: LoadResult): Measured {
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
		clientBusy: r.clientBusy,
	};
}

const pct = (x: number) => `${Math.round(100 * x)}%`;
const errorsOf = (m: Measured) =>
	m.errors === 0
		? "0"
		: `${m.errors} (${Object.entries(m.errorKinds)
				.map(([k, v]) => `${k} ${v}`)
				.join(", ")})`;

runBench(async (signal) => {
	const started = performance.now();
	log(
		`${availableParallelism()} CPUs, load average ${loadavg()
			.map((l) => l.toFixed(2))
			.join(" ")} (a shared machine: figures may be noisy)`,
	);
	const build = buildWorker();
	const dbUrl = await ensureBenchDatabase(DB_NAME, REPOS);
	const stack = await startStack(dbUrl, REDIS_PREFIX);
	const token = await mintToken(stack.secret, build.vars);
	const withMemory = await startWorker(build, "A", { ...stack.vars, CACHE_MEMORY_TTL_MS: "2000" });
	const edgeOnly = await startWorker(build, "B", { ...stack.vars, CACHE_MEMORY_TTL_MS: "0" });
	log(`Miniflare A (memory tier 2 s) at ${withMemory.origin}, B (memory tier off) at ${edgeOnly.origin}`);

	const ids = (
		await query<{ id: string }>(dbUrl, "SELECT id FROM repositories ORDER BY stars DESC, id LIMIT $1", [
			WARM_IDS,
		])
	).map((r) => r.id);
	const paths = ids.map((id) => `/api/v1/fast/repositories/${id}/summary`);
	const auth = { authorization: `Bearer ${token}` };

	// Warm-up: one request per id and instance (A loads the origin and fills Redis; B then finds
	// the entries in Redis), and a check that the answers are what they should be.
	for (const w of [withMemory, edgeOnly]) {
		const tiers: Record<string, number> = {};
		for (const path of paths) {
			const res = await fetch(`${w.origin}${path}`, { headers: auth, signal });
			const body = (await res.json()) as { id?: string };
			if (res.status !== 200 || !path.includes(`/${body.id}/`)) {
				throw new Error(`warm-up: ${path} answered ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
			}
			const tier = res.headers.get("x-cache-tier") ?? "-";
			tiers[tier] = (tiers[tier] ?? 0) + 1;
		}
		const ping = await fetch(`${w.origin}/ping`, { signal });
		if (ping.status !== 200 || (await ping.text()) !== "pong")
			throw new Error("GET /ping did not answer pong");
		log(`warmed ${paths.length} ids on ${w.name}: ${shares(tiers)}`);
	}

	const targets: Target[] = [
		{ name: "bare GET /ping (A)", worker: withMemory, paths: ["/ping"], headers: {} },
		{ name: "summary, memory tier (A)", worker: withMemory, paths, headers: auth },
		{ name: "summary, Cache API only (B)", worker: edgeOnly, paths, headers: auth },
	];
	// JIT warm-up of each path (not measured).
	for (const t of targets) {
		await runLoad(
			{
				mode: "closed",
				origins: [t.worker.origin],
				paths: t.paths,
				groups: [t.name],
				cycle: true,
				headers: t.headers,
				concurrency: 8,
				durationMs: 1000,
				connections: 8,
				timeoutMs: 10_000,
			},
			signal,
		);
	}

	const open = new Map<string, Measured[]>(targets.map((t) => [t.name, []]));
	const closed = new Map<string, Measured[]>(targets.map((t) => [t.name, []]));
	const width = Math.max(...targets.map((t) => t.name.length));
	for (let round = 0; round < ROUNDS; round++) {
		console.log(`\nround ${round + 1}/${ROUNDS}`);
		const order = targets.map((_, i) => targets[(i + round) % targets.length] as Target);
		for (const t of order) {
			const common = {
				origins: [t.worker.origin],
				paths: t.paths,
				groups: [t.name],
				cycle: true,
				headers: t.headers,
				timeoutMs: 10_000,
			};
			const o = summarise(
				await runLoad(
					{
						...common,
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
			const c = summarise(
				await runLoad(
					{
						...common,
						mode: "closed",
						concurrency: CONCURRENCY,
						durationMs: CLOSED_MS,
						connections: CONCURRENCY,
					},
					signal,
				),
			);
			await sleep(500, signal);
			open.get(t.name)?.push(o);
			closed.get(t.name)?.push(c);
			const cache =
				t.paths.length > 1 ? `  [open: ${shares(o.xCacheTier)}; X-Cache ${shares(o.xCache)}]` : "";
			console.log(
				`  ${t.name.padEnd(width)}  open ${fmtInt(o.reqPerS)} req/s p50 ${fmtMs(o.p50)} p99 ${fmtMs(o.p99)} ms err ${errorsOf(o)}` +
					`  | closed(${CONCURRENCY}) ${fmtInt(c.reqPerS)} req/s p50 ${fmtMs(c.p50)} p99 ${fmtMs(c.p99)} ms err ${errorsOf(c)}` +
					`, client busy ${pct(c.clientBusy)}${cache}`,
			);
		}
	}

	const med = (m: Measured[] | undefined, f: (x: Measured) => number) => median((m ?? []).map(f));
	console.log(
		`\nmedians over ${ROUNDS} rounds (open loop: ${RATE} req/s offered for ${OPEN_MS / 1000} s, latency from the scheduled time; closed loop: ${CONCURRENCY} connections for ${CLOSED_MS / 1000} s)`,
	);
	const header = [
		"target",
		"open req/s",
		"p50 ms",
		"p99 ms",
		"errors",
		"closed req/s",
		"p50 ms",
		"p99 ms",
		"errors",
	];
	const rows = targets.map((t) => {
		const o = open.get(t.name);
		const c = closed.get(t.name);
		const errs = (m: Measured[] | undefined) => String((m ?? []).reduce((a, x) => a + x.errors, 0));
		return [
			t.name,
			fmtInt(med(o, (x) => x.reqPerS)),
			fmtMs(med(o, (x) => x.p50)),
			fmtMs(med(o, (x) => x.p99)),
			errs(o),
			fmtInt(med(c, (x) => x.reqPerS)),
			fmtMs(med(c, (x) => x.p50)),
			fmtMs(med(c, (x) => x.p99)),
			errs(c),
		];
	});
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) =>
		`  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
	console.log(line(header));
	for (const r of rows) console.log(line(r));

	console.log(
		`  load generator busy in the closed loop (event-loop utilisation; near 100% = the client is the limit): ${targets
			.map((t) => `${t.name} ${pct(med(closed.get(t.name), (x) => x.clientBusy))}`)
			.join(", ")}`,
	);
	console.log("\nX-Cache-Tier / X-Cache of the summary targets (all rounds, open and closed loop):");
	for (const t of targets.slice(1)) {
		const tiers: Record<string, number> = {};
		const xc: Record<string, number> = {};
		for (const m of [...(open.get(t.name) ?? []), ...(closed.get(t.name) ?? [])]) {
			addCounts(tiers, m.xCacheTier);
			addCounts(xc, m.xCache);
		}
		console.log(`  ${t.name.padEnd(width)}  ${shares(tiers)}; X-Cache ${shares(xc)}`);
	}

	const [bare, mem, edge] = targets.map((t) => ({ o: open.get(t.name), c: closed.get(t.name) }));
	const ratio = (a: Measured[] | undefined, b: Measured[] | undefined) =>
		(med(a, (x) => x.reqPerS) / med(b, (x) => x.reqPerS)).toFixed(2);
	console.log("\nsummary / bare, req/s (target >= 0.8):");
	console.log(
		`  memory tier (A):      closed loop (max throughput) ${ratio(mem?.c, bare?.c)}, open loop (1,250 offered) ${ratio(mem?.o, bare?.o)}`,
	);
	console.log(
		`  Cache API only (B):   closed loop (max throughput) ${ratio(edge?.c, bare?.c)}, open loop (1,250 offered) ${ratio(edge?.o, bare?.o)}`,
	);
	const delta = (a: Measured[] | undefined, f: (x: Measured) => number) => fmtMs(med(a, f) - med(bare?.o, f));
	console.log(
		`  open-loop latency over bare: memory tier p50 +${delta(mem?.o, (x) => x.p50)} ms, p99 +${delta(mem?.o, (x) => x.p99)} ms; Cache API only p50 +${delta(edge?.o, (x) => x.p50)} ms, p99 +${delta(edge?.o, (x) => x.p99)} ms`,
	);
	for (const w of [withMemory, edgeOnly]) {
		if (w.problems.count > 0) {
			console.log(`\nWorker ${w.name} logged ${w.problems.count} warnings/errors, e.g.:`);
			for (const s of w.problems.samples.slice(0, 5)) console.log(`  ${s}`);
		}
	}
	log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
}, 9 * 60_000);

// `npm run bench:hit-ratio -- [--warmup 100000] [--measure 100000] [--concurrency 8]
//  [--colo-b 0.3] [--seed 1]`: the layered cache's hit ratio under a Zipf(s=1.0) request mix.
//
// Set-up (all its own, torn down at the end, also on Ctrl-C): the bundle `wrangler deploy` would
// upload; database gi_bench_hitratio (created, migrated and seeded with 100,000 repositories when
// absent); the Neon stand-in and the Upstash stand-in over real Redis, key prefix
// gi:bench:hitratio: (flushed at start and end); a per-run JWT secret and a token for it.
// Two Miniflare instances of the bundle play two colos: each its own workerd process, so its own
// isolate memory and Cache API storage, and both share Redis, so a key one colo loaded is a
// Redis hit in the other. Colo B gets `--colo-b` of the requests.
//
// The trace (deterministic for a seed): 70% summary (Zipf over the repository ids ranked by
// stars), 20% search (Zipf over ~500 queries built from the seeded data: description words,
// topics, languages, GitHub-style qualifiers, filters, sorts, a second page), 10% leaderboard
// (Zipf over category x timeframe x {all, 3 top languages}). An endpoint the Worker does not
// route yet (404 "no route") is left out of the trace, and the report says so. The first
// `--warmup` requests warm the caches; the next `--measure` are reported: hit ratio (X-Cache HIT
// or STALE) overall, per endpoint and per colo, the tier that answered (X-Cache-Tier), and the
// best any cache could do on this trace (a request is a compulsory miss when its key was never
// requested before, in either colo).
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
	addCounts,
	buildWorker,
	ensureBenchDatabase,
	fmtInt,
	fmtMs,
	type GroupStats,
	type LoadResult,
	log,
	mintToken,
	percentile,
	query,
	type RunningWorker,
	rng,
	runBench,
	runLoad,
	shares,
	startStack,
	startWorker,
	zipf,
} from "./lib.ts";

const { values } = parseArgs({
	options: {
		warmup: { type: "string", default: "100000" },
		measure: { type: "string", default: "100000" },
		concurrency: { type: "string", default: "8" },
		"colo-b": { type: "string", default: "0.3" },
		seed: { type: "string", default: "1" },
	},
	strict: true,
});
const WARMUP = Number(values.warmup);
const MEASURE = Number(values.measure);
const CONCURRENCY = Number(values.concurrency);
const COLO_B = Number(values["colo-b"]);
const SEED = Number(values.seed);
if (
	!(Number.isInteger(WARMUP) && WARMUP >= 0 && WARMUP <= 1_000_000) ||
	!(Number.isInteger(MEASURE) && MEASURE > 0 && MEASURE <= 1_000_000) ||
	!(Number.isInteger(CONCURRENCY) && CONCURRENCY > 0 && CONCURRENCY <= 256) ||
	!(COLO_B >= 0 && COLO_B <= 1) ||
	!Number.isInteger(SEED)
) {
	console.error(
		"usage: npm run bench:hit-ratio -- [--warmup 0..1000000] [--measure 1..1000000] [--concurrency 1..256] [--colo-b 0..1] [--seed N]",
	);
	process.exit(2);
}

const DB_NAME = "gi_bench_hitratio";
const REPOS = 100_000;
const REDIS_PREFIX = "gi:bench:hitratio:";
const ZIPF_S = 1.0;
const SEARCH_QUERIES = 500;
/** Time limit of each phase; a phase cut by it is reported as such. */
const PHASE_LIMIT_MS = 20 * 60_000;

const KINDS = ["summary", "search", "leaderboard"] as const;
type Kind = (typeof KINDS)[number];
const MIX: Record<Kind, number> = { summary: 0.7, search: 0.2, leaderboard: 0.1 };
const COLOS = ["colo-a", "colo-b"] as const;

// Words too common to search for, or not words at all.
const STOPWORDS = new Set(
	"the and for with that this from your into over are its all has have any via not but can you our out more than use using based also".split(
		" ",
	),
);

interface Vocabulary {
	languages: string[];
	topics: string[];
	words: string[];
	/** Summary ids, by stars descending. */
	ids: string[];
}

async function vocabulary(dbUrl: string): Promise<Vocabulary> {
	const languages = (
		await query<{ language: string }>(
			dbUrl,
			"SELECT language FROM repositories WHERE language IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1",
		)
	).map((r) => r.language);
	const topics = (
		await query<{ t: string }>(
			dbUrl,
			"SELECT t FROM repositories, unnest(topics) AS t GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 200",
		)
	).map((r) => r.t);
	const words = (
		await query<{ word: string }>(
			dbUrl,
			`SELECT word FROM ts_stat($$SELECT to_tsvector('simple', coalesce(description, '')) FROM repositories$$)
			 WHERE length(word) >= 3 AND word ~ '^[a-z][a-z0-9+#.-]*$' ORDER BY ndoc DESC, word LIMIT 600`,
		)
	)
		.map((r) => r.word)
		.filter((w) => !STOPWORDS.has(w));
	const ids = (await query<{ id: string }>(dbUrl, "SELECT id FROM repositories ORDER BY stars DESC, id")).map(
		(r) => r.id,
	);
	if (!languages.length || !topics.length || words.length < 50)
		throw new Error("the seeded data looks empty");
	return { languages, topics, words, ids };
}

/** ~500 distinct search paths, most popular first (drawn with Zipf over word frequency ranks). */
function searchPaths(v: Vocabulary, random: () => number): string[] {
	const word = zipf(v.words.length, 1, random);
	const topic = zipf(v.topics.length, 1, random);
	const language = zipf(v.languages.length, 1, random);
	const w = () => v.words[word()] ?? "api";
	const t = () => v.topics[topic()] ?? "cli";
	const l = () => v.languages[language()] ?? "Go";
	const slug = (name: string) => name.toLowerCase().replaceAll(" ", "-");
	const makers: [number, () => [string, string]][] = [
		[0.3, () => [w(), ""]],
		[0.12, () => [t(), ""]],
		[0.15, () => [`${w()} ${w()}`, ""]],
		[0.08, () => [`${w()} language:${slug(l())}`, ""]],
		[0.05, () => [`topic:${t()}`, ""]],
		[0.1, () => [w(), `&language=${encodeURIComponent(l())}`]],
		[0.05, () => [`${w()} stars:>${random() < 0.5 ? 100 : 1000}`, ""]],
		[0.05, () => [w(), `&sort=${["stars", "updated", "forks"][Math.floor(random() * 3)]}`]],
		[0.05, () => [w(), `&min_stars=${random() < 0.5 ? 10 : 100}`]],
		[0.05, () => [w(), "&offset=20"]],
	];
	const out = new Set<string>();
	for (let attempt = 0; attempt < 50_000 && out.size < SEARCH_QUERIES; attempt++) {
		let u = random();
		let make = makers[0]?.[1];
		for (const [p, m] of makers) {
			make = m;
			u -= p;
			if (u < 0) break;
		}
		if (!make) break;
		const [q, extra] = make();
		out.add(`/api/v1/fast/search?q=${encodeURIComponent(q)}${extra}`);
	}
	return [...out];
}

function leaderboardPaths(v: Vocabulary): string[] {
	const out: string[] = [];
	for (const language of ["", ...v.languages.slice(0, 3)]) {
		for (const category of ["trending", "popular", "quality"]) {
			for (const timeframe of ["week", "day", "month", "year"]) {
				const lang = language ? `&language=${encodeURIComponent(language)}` : "";
				out.push(`/api/v1/fast/leaderboard?category=${category}&timeframe=${timeframe}${lang}`);
			}
		}
	}
	return out;
}

/** Whether the Worker routes `path` (an unknown route is a 404 "no route for …"). */
async function routed(w: RunningWorker, path: string, signal: AbortSignal): Promise<[boolean, string]> {
	const res = await fetch(`${w.origin}${path}`, { headers: { "cache-control": "no-store" }, signal });
	const text = await res.text();
	if (res.status === 404 && text.includes('"message":"no route for')) return [false, "404 no route"];
	return [true, String(res.status)];
}

interface Trace {
	paths: string[];
	origin: number[];
	group: number[];
	keys: string[];
}

const groupOf = (kind: number, colo: number) => kind * COLOS.length + colo;
const groupNames = KINDS.flatMap((k) => COLOS.map((c) => `${k}@${c}`));

function makeTrace(pools: Record<Kind, string[]>, enabled: Set<Kind>, total: number, seed: number): Trace {
	const random = rng(seed);
	const samplers = Object.fromEntries(KINDS.map((k) => [k, zipf(pools[k].length, ZIPF_S, random)])) as Record<
		Kind,
		() => number
	>;
	const trace: Trace = { paths: [], origin: [], group: [], keys: [] };
	for (let i = 0; i < total; i++) {
		// Every draw is made whether or not its endpoint is enabled, so the summary stream is the
		// same request for request whatever else the Worker serves.
		const u = random();
		const kindIndex = u < MIX.summary ? 0 : u < MIX.summary + MIX.search ? 1 : 2;
		const kind = KINDS[kindIndex] ?? "summary";
		const rank = samplers[kind]();
		const colo = random() < COLO_B ? 1 : 0;
		if (!enabled.has(kind)) continue;
		trace.paths.push(pools[kind][rank] ?? "/");
		trace.origin.push(colo);
		trace.group.push(groupOf(kindIndex, colo));
		trace.keys.push(`${kind}:${rank}`);
	}
	return trace;
}

/** Per measured request: was its key requested before (anywhere / at the same colo)? */
function idealHits(trace: Trace, warmup: number): { global: number[]; local: number[]; total: number[] } {
	const seen = new Set<string>();
	const seenAt = COLOS.map(() => new Set<string>());
	const global = groupNames.map(() => 0);
	const local = groupNames.map(() => 0);
	const total = groupNames.map(() => 0);
	for (let i = 0; i < trace.paths.length; i++) {
		const key = trace.keys[i] ?? "";
		const colo = trace.origin[i] ?? 0;
		const g = trace.group[i] ?? 0;
		const at = seenAt[colo] ?? new Set<string>();
		if (i >= warmup) {
			total[g] = (total[g] ?? 0) + 1;
			if (seen.has(key)) global[g] = (global[g] ?? 0) + 1;
			if (at.has(key)) local[g] = (local[g] ?? 0) + 1;
		}
		seen.add(key);
		at.add(key);
	}
	return { global, local, total };
}

interface Tally {
	requests: number;
	ok: number;
	errors: number;
	hits: number;
	stale: number;
	tiers: Record<string, number>;
	statuses: Record<string, number>;
	ideal: number;
	idealLocal: number;
	idealTotal: number;
}

function tally(
	groups: GroupStats[],
	pick: (g: number) => boolean,
	ideal: ReturnType<typeof idealHits>,
): Tally {
	const t: Tally = {
		requests: 0,
		ok: 0,
		errors: 0,
		hits: 0,
		stale: 0,
		tiers: {},
		statuses: {},
		ideal: 0,
		idealLocal: 0,
		idealTotal: 0,
	};
	groups.forEach((g, i) => {
		if (!pick(i)) return;
		t.requests += g.completed;
		t.ok += g.ok;
		t.errors += g.errors;
		t.hits += (g.xCache.HIT ?? 0) + (g.xCache.STALE ?? 0);
		t.stale += g.xCache.STALE ?? 0;
		addCounts(t.tiers, Object.fromEntries(Object.entries(g.xCacheTier).filter(([tier]) => tier !== "-")));
		addCounts(t.statuses, g.statuses);
		t.ideal += ideal.global[i] ?? 0;
		t.idealLocal += ideal.local[i] ?? 0;
		t.idealTotal += ideal.total[i] ?? 0;
	});
	return t;
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(3) : "-");

function phaseLine(name: string, r: LoadResult): string {
	const all = Float64Array.from(r.groups.flatMap((g) => Array.from(g.latencies))).sort();
	const ok = r.groups.reduce((a, g) => a + g.ok, 0);
	const errors = r.groups.reduce((a, g) => a + g.errors, 0);
	const cut = r.exhausted ? "" : ` — CUT SHORT by the ${PHASE_LIMIT_MS / 1000} s limit`;
	return `${name}: ${fmtInt(r.sent)} requests in ${(r.elapsedMs / 1000).toFixed(1)} s (${fmtInt(ok / (r.elapsedMs / 1000))} req/s at ${CONCURRENCY} in flight), p50 ${fmtMs(percentile(all, 50))} ms, p99 ${fmtMs(percentile(all, 99))} ms, errors ${errors}${cut}`;
}

runBench(async (signal) => {
	const started = performance.now();
	log(
		`${availableParallelism()} CPUs, load average ${loadavg()
			.map((l) => l.toFixed(2))
			.join(" ")} (a shared machine: timings may be noisy; hit ratios do not depend on them)`,
	);
	const build = buildWorker();
	const dbUrl = await ensureBenchDatabase(DB_NAME, REPOS);
	const stack = await startStack(dbUrl, REDIS_PREFIX);
	if (!stack.redis) log("without Redis there is no shared tier: colo B's misses all go to the origin");
	const token = await mintToken(stack.secret, build.vars);
	const colos = [
		await startWorker(build, "colo-a", stack.vars),
		await startWorker(build, "colo-b", stack.vars),
	] as const;
	log(
		`Miniflare colo-a at ${colos[0].origin}, colo-b at ${colos[1].origin} (memory tier ${build.vars.CACHE_MEMORY_TTL_MS} ms)`,
	);

	const v = await vocabulary(dbUrl);
	const pools: Record<Kind, string[]> = {
		summary: v.ids.map((id) => `/api/v1/fast/repositories/${id}/summary`),
		search: searchPaths(v, rng(SEED * 7919)),
		leaderboard: leaderboardPaths(v),
	};
	const enabled = new Set<Kind>(["summary"]);
	for (const kind of ["search", "leaderboard"] as const) {
		const [ok, why] = await routed(colos[0], pools[kind][0] ?? "/", signal);
		if (ok) enabled.add(kind);
		else
			log(
				`SKIPPING ${kind}: GET ${pools[kind][0]} answers ${why} (not mounted yet); its ${MIX[kind] * 100}% share is left out`,
			);
	}
	log(
		`pools: ${fmtInt(pools.summary.length)} repositories, ${pools.search.length} search queries, ${pools.leaderboard.length} leaderboard combinations; mix ${KINDS.map((k) => `${k} ${enabled.has(k) ? `${MIX[k] * 100}%` : "skipped"}`).join(", ")}; Zipf s=${ZIPF_S}; colo-b share ${COLO_B}`,
	);

	const trace = makeTrace(pools, enabled, WARMUP + MEASURE, SEED);
	// The trace lost the skipped endpoints' draws: warm-up keeps its share of what is left.
	const warm = Math.round((trace.paths.length * WARMUP) / (WARMUP + MEASURE));
	const ideal = idealHits(trace, warm);
	const slice = (from: number, to: number) => ({
		paths: trace.paths.slice(from, to),
		pathOrigin: trace.origin.slice(from, to),
		pathGroup: trace.group.slice(from, to),
	});
	const common = {
		mode: "closed" as const,
		origins: colos.map((c) => c.origin),
		groups: groupNames,
		cycle: false,
		headers: { authorization: `Bearer ${token}` },
		concurrency: CONCURRENCY,
		durationMs: PHASE_LIMIT_MS,
		connections: CONCURRENCY,
		timeoutMs: 15_000,
	};
	const progress = (total: number) => (done: number, ms: number) =>
		log(
			`  ${fmtInt(done)} / ${fmtInt(total)} after ${Math.round(ms / 1000)} s (${fmtInt(done / (ms / 1000))} req/s)`,
		);
	if (warm > 0) {
		log(`warm-up: ${fmtInt(warm)} requests…`);
		console.log(
			`  ${phaseLine("warm-up", await runLoad({ ...common, ...slice(0, warm) }, signal, progress(warm)))}`,
		);
	}
	log(`measuring: ${fmtInt(trace.paths.length - warm)} requests…`);
	const r = await runLoad(
		{ ...common, ...slice(warm, trace.paths.length) },
		signal,
		progress(trace.paths.length - warm),
	);
	console.log(`  ${phaseLine("measured", r)}`);
	for (const s of r.errorSamples.slice(0, 5)) console.log(`  error: ${s}`);

	const rows: [string, Tally][] = [
		["overall", tally(r.groups, () => true, ideal)],
		...KINDS.filter((k) => enabled.has(k)).map((k): [string, Tally] => [
			k,
			tally(r.groups, (g) => Math.floor(g / COLOS.length) === KINDS.indexOf(k), ideal),
		]),
		...COLOS.map((c, ci): [string, Tally] => [c, tally(r.groups, (g) => g % COLOS.length === ci, ideal)]),
		...KINDS.filter((k) => enabled.has(k)).flatMap((k) =>
			COLOS.map((c, ci): [string, Tally] => [
				`${k}@${c}`,
				tally(r.groups, (g) => g === groupOf(KINDS.indexOf(k), ci), ideal),
			]),
		),
	];
	console.log(
		`\nafter warm-up (${fmtInt(warm)} requests), measured ${fmtInt(r.sent)}: hit = X-Cache HIT or STALE; ideal = the best any cache could do on this trace without expiry (only the first request of a key misses); colo-local ideal = the same without a shared tier (Redis). Entries older than fresh + stale-while-revalidate (summary 35 min) are reloaded, so a slow replay also loses hits to expiry`,
	);
	const header = [
		"slice",
		"requests",
		"errors",
		"hit ratio",
		"ideal",
		"colo-local ideal",
		"stale",
		"memory",
		"edge",
		"redis",
		"origin",
	];
	const pct = (t: Tally, tier: string) => {
		const total = Object.values(t.tiers).reduce((a, b) => a + b, 0);
		return total ? `${((100 * (t.tiers[tier] ?? 0)) / total).toFixed(1)}%` : "-";
	};
	const table = rows.map(([name, t]) => [
		name,
		fmtInt(t.requests),
		String(t.errors),
		ratio(t.hits, t.ok),
		ratio(t.ideal, t.idealTotal),
		ratio(t.idealLocal, t.idealTotal),
		String(t.stale),
		pct(t, "memory"),
		pct(t, "edge"),
		pct(t, "redis"),
		pct(t, "origin"),
	]);
	const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? "").length)));
	const line = (cells: string[]) =>
		`  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
	console.log(line(header));
	for (const [i, row] of table.entries()) {
		if (i === 1 || i === 1 + enabled.size || i === 1 + enabled.size + COLOS.length) console.log("");
		console.log(line(row));
	}
	console.log(
		"\nlatency of the measured requests, ms (closed loop, so queueing included): p50 / p99, and the mean per tier",
	);
	for (const k of KINDS.filter((kind) => enabled.has(kind))) {
		const gs = r.groups.filter((_, g) => Math.floor(g / COLOS.length) === KINDS.indexOf(k));
		const lat = Float64Array.from(gs.flatMap((g) => Array.from(g.latencies))).sort();
		const n: Record<string, number> = {};
		const ms: Record<string, number> = {};
		for (const g of gs) {
			addCounts(n, g.xCacheTier);
			addCounts(ms, g.tierMs);
		}
		const perTier = ["memory", "edge", "redis", "origin"]
			.filter((t) => n[t])
			.map((t) => `${t} ${fmtMs((ms[t] ?? 0) / (n[t] ?? 1))}`)
			.join(", ");
		console.log(
			`  ${k.padEnd(12)} p50 ${fmtMs(percentile(lat, 50))} / p99 ${fmtMs(percentile(lat, 99))}; mean by tier: ${perTier}`,
		);
	}
	const overall = rows[0]?.[1];
	if (overall) {
		const other = Object.entries(overall.statuses).filter(([s]) => !/^2\d\d$|^304$/.test(s));
		if (other.length)
			console.log(
				`\n  non-2xx answers: ${shares(Object.fromEntries(other))} (${JSON.stringify(Object.fromEntries(other))})`,
			);
		console.log(
			`\noverall hit ratio ${ratio(overall.hits, overall.ok)} (target >= 0.95; the best possible on this trace, without expiry, is ${ratio(overall.ideal, overall.idealTotal)})`,
		);
	}
	if (enabled.size < KINDS.length) {
		console.log(
			`NOTE: ${KINDS.filter((k) => !enabled.has(k)).join(", ")} not mounted in this build; figures cover the other endpoints only. Re-run when it is.`,
		);
	}
	for (const w of colos) {
		if (w.problems.count > 0) {
			console.log(`\nWorker ${w.name} logged ${w.problems.count} warnings/errors, e.g.:`);
			for (const s of w.problems.samples.slice(0, 5)) console.log(`  ${s}`);
		}
	}
	log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
}, 45 * 60_000);

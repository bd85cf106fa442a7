import { createServer } from "node:net";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import { databaseName, ensureDatabase, migrateDatabase, redactUrl, withDatabase } from "../lib/pg.ts";
import { seedDatabase } from "../lib/seed.ts";
import { startNeonStandIn } from "../stack/neon-standin.ts";
import { buildWorker, mintToken, startWorker as startBuiltWorker } from "./lib.ts";

const { values: args } = parseArgs({
	options: {
		iterations: { type: "string", default: "60" },
		"baseline-iterations": { type: "string", default: "4" },
		"skip-worker": { type: "boolean", default: false },
		"skip-baseline": { type: "boolean", default: false },
	},
});
const ITERATIONS = Number(args.iterations);
const BASELINE_ITERATIONS = Number(args["baseline-iterations"]);
const URL_ = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/gitinsight_bench";
const REPOS = Number(process.env.REPOS ?? 1_000_000);
const SEED = Number(process.env.SEED ?? 1);
const DEADLINE = Date.now() + Number(process.env.BENCH_DEADLINE_S ?? 900) * 1000;
const TARGET_SQL_P95 = 30;
const TARGET_WORKER_P95 = 50;
const TARGET_SPEEDUP = 20;

const log = (line: string) => console.log(`[bench] ${line}`);

// The Worker's own modules, loaded at run time (src/ typechecks with the bundler's settings, not
// these scripts'; both modules import nothing relative but types, so Node loads them as they are).
type SearchSort = "relevance" | "stars" | "forks" | "updated";
/** The fields of src/search/search.qualifiers.ts's SearchRequest that the baseline reads. */
interface SearchRequest {
	text: { terms: string[]; phrases: string[]; excluded: string[] };
	language: { name: string; known: boolean } | null;
	topics: string[];
	stars: { min: number | null; max: number | null };
	fork: "include" | "exclude" | "only";
	sort: SearchSort;
	limit: number;
	offset: number;
}
const { resolveSearch } = (await import(
	new URL("../../src/search/search.qualifiers.ts", import.meta.url).href
)) as {
	resolveSearch(p: {
		q: string;
		language?: string | undefined;
		min_stars?: number | undefined;
		sort: SearchSort;
		limit: number;
		offset: number;
	}): SearchRequest;
};
const { searchSql } = (await import(new URL("../../src/search/search.queries.ts", import.meta.url).href)) as {
	searchSql(req: SearchRequest): SQL;
};

interface Class {
	name: string;
	/** Query strings of GET /api/v1/fast/search, cycled through. */
	queries: string[];
}

const q = (params: Record<string, string | number>) =>
	new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();

// The mix. Word frequencies in the 1M seed: rare words ~2 repositories, "kubernetes" ~83k (8%),
// "graphql" ~57k, "terraform" ~50k, "dashboard" ~42k, "api" ~715k (72%), "library" ~440k.
const CLASSES: Class[] = [
	{
		name: "rare word",
		queries: ["tokamak", "zettelkasten", "hyperloglog", "sourdough"].map((w) => q({ q: w })),
	},
	{ name: "mid word", queries: ["kubernetes", "graphql", "terraform", "dashboard"].map((w) => q({ q: w })) },
	{ name: "common word", queries: ["api", "library", "tool", "app"].map((w) => q({ q: w })) },
	{
		name: "language filter",
		queries: [
			q({ q: "graphql", language: "Go" }),
			q({ q: "api", language: "Rust" }),
			q({ q: "docker", language: "Python" }),
			q({ q: "kubernetes", language: "TypeScript" }),
		],
	},
	{
		name: "qualifiers",
		queries: [
			q({ q: "parser topic:rust stars:10..1000 fork:false" }),
			q({ q: "api language:go stars:>1000" }),
			q({ q: "topic:cli stars:>100" }),
			q({ q: "dashboard -react topic:docker" }),
		],
	},
	// Deep pages (offset 9900, limit 100: the last page under the cap), one class per sort.
	...(["relevance", "stars", "forks", "updated"] as const).map((sort) => ({
		name: `deep page, ${sort}`,
		queries: ["api", "library", "tool", "app"].map((w) => q({ q: w, sort, offset: 9900, limit: 100 })),
	})),
	// Every sort at page 1 (relevance is the "mid word" class).
	...(["stars", "forks", "updated"] as const).map((sort) => ({
		name: `sort=${sort}`,
		queries: ["kubernetes", "graphql", "terraform", "dashboard"].map((w) => q({ q: w, sort })),
	})),
];

function requestOf(query: string): SearchRequest {
	const p = new URLSearchParams(query);
	return resolveSearch({
		q: p.get("q") ?? "",
		language: p.get("language") ?? undefined,
		min_stars: p.has("min_stars") ? Number(p.get("min_stars")) : undefined,
		sort: (p.get("sort") ?? "relevance") as SearchSort,
		limit: Number(p.get("limit") ?? 20),
		offset: Number(p.get("offset") ?? 0),
	});
}

// ---------------------------------------------------------------------------------------------
// The statements

const dialect = new PgDialect();

function appQuery(query: string): { text: string; values: unknown[] } {
	const { sql, params } = dialect.sqlToQuery(searchSql(requestOf(query)));
	return { text: sql, values: params };
}

const likeEscape = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** What a typical service writes: ILIKE and four separate queries. */
function baselineQueries(query: string): { text: string; values: unknown[] }[] {
	const req = requestOf(query);
	const values: unknown[] = [];
	const bind = (v: unknown) => {
		values.push(v);
		return `$${values.length}`;
	};
	const base: string[] = [];
	for (const w of [...req.text.terms, ...req.text.phrases]) {
		const p = bind(likeEscape(w));
		base.push(`(name ILIKE ${p} OR description ILIKE ${p})`);
	}
	for (const w of req.text.excluded) {
		const p = bind(likeEscape(w));
		base.push(`NOT (name ILIKE ${p} OR description ILIKE ${p})`);
	}
	for (const t of req.topics) base.push(`${bind(t)} = ANY(topics)`);
	if (req.fork === "exclude") base.push("NOT is_fork");
	if (req.fork === "only") base.push("is_fork");
	const lang = req.language ? [`language = ${bind(req.language.name)}`] : [];
	const stars = [
		...(req.stars.min !== null ? [`stars >= ${bind(req.stars.min)}`] : []),
		...(req.stars.max !== null ? [`stars <= ${bind(req.stars.max)}`] : []),
	];
	const where = (parts: string[]) => (parts.length ? parts.join(" AND ") : "TRUE");
	// Parameters are shared by the four statements; each gets only those it references, renumbered.
	const statement = (text: string) => {
		const used = [...new Set([...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
		const renumbered = text.replace(/\$(\d+)/g, (_m, n: string) => `$${used.indexOf(Number(n)) + 1}`);
		return { text: renumbered, values: used.map((n) => values[n - 1]) };
	};
	const order = { relevance: "stars", stars: "stars", forks: "forks", updated: "updated_at" }[req.sort];
	const all = [...base, ...lang, ...stars];
	return [
		statement(
			`SELECT id, name, full_name, description, language, stars, forks, trending_score FROM repositories
			WHERE ${where(all)} ORDER BY ${order} DESC, id LIMIT ${req.limit} OFFSET ${req.offset}`,
		),
		statement(`SELECT count(*) FROM repositories WHERE ${where(all)}`),
		statement(
			`SELECT language, count(*) FROM repositories WHERE ${where([...base, ...stars])} GROUP BY language`,
		),
		statement(
			`SELECT CASE WHEN stars <= 10 THEN '0-10' WHEN stars <= 100 THEN '11-100' WHEN stars <= 1000 THEN '101-1000'
				ELSE '1000+' END AS range, count(*) FROM repositories WHERE ${where([...base, ...lang])} GROUP BY 1`,
		),
	];
}

// ---------------------------------------------------------------------------------------------
// Measurement

function percentile(sorted: number[], p: number): number {
	if (!sorted.length) return Number.NaN;
	return (
		sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
	);
}

interface Stats {
	n: number;
	p50: number;
	p95: number;
	p99: number;
}

function stats(samples: number[]): Stats {
	const sorted = [...samples].sort((a, b) => a - b);
	return {
		n: sorted.length,
		p50: percentile(sorted, 50),
		p95: percentile(sorted, 95),
		p99: percentile(sorted, 99),
	};
}

/** Runs `fn` over the class's queries round-robin: `warmup` untimed rounds, then `n` timed calls. */
async function measure(
	queries: string[],
	n: number,
	warmup: number,
	fn: (query: string) => Promise<void>,
	budgetMs = Number.POSITIVE_INFINITY,
): Promise<Stats> {
	for (let i = 0; i < warmup * queries.length; i++) await fn(queries[i % queries.length] ?? "");
	const samples: number[] = [];
	const stop = Math.min(DEADLINE, Date.now() + budgetMs);
	for (let i = 0; i < n; i++) {
		if (Date.now() > stop && samples.length >= queries.length) break;
		const t0 = performance.now();
		await fn(queries[i % queries.length] ?? "");
		samples.push(performance.now() - t0);
	}
	return stats(samples);
}

// ---------------------------------------------------------------------------------------------
// Database and Worker set-up

async function ensureBenchDatabase(): Promise<void> {
	const name = databaseName(URL_);
	if (await ensureDatabase(URL_, name)) log(`created database ${name}`);
	await migrateDatabase(URL_);
	const client = new pg.Client({ connectionString: URL_ });
	await client.connect();
	const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM repositories");
	await client.end();
	const have = Number(rows[0]?.n ?? 0);
	if (have === REPOS) return log(`${redactUrl(URL_)}: ${have} repositories`);
	log(`${redactUrl(URL_)} has ${have} repositories, want ${REPOS}: seeding (seed ${SEED}), a few minutes`);
	const s = await seedDatabase(URL_, { repos: REPOS, seed: SEED, log: (l) => log(`  ${l}`) });
	log(`seeded ${s.repositories} repositories in ${(s.ms / 1000).toFixed(0)} s`);
}

async function _freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

interface Worker {
	base: string;
	/** An admin token: its Cache-Control: no-cache is honoured to the letter. */
	token: string;
	stop(): Promise<void>;
}

async function startWorker(): Promise<Worker> {
	const neon = await startNeonStandIn({
		pgHost: new URL(URL_).hostname,
		pgPort: Number(new URL(URL_).port || 5432),
	});
	const workerDb = new URL(withDatabase(URL_, databaseName(URL_)));
	workerDb.hostname = "db.localtest.me";
	workerDb.port = "5432";
	workerDb.password ||= "local";
	// The deploy bundle on workerd through Miniflare's Node API, like the other benchmarks: no
	// `wrangler dev` proxy in the measured path.
	const build = buildWorker();
	const secret = `bench-${"x".repeat(40)}`;
	const running = await startBuiltWorker(build, "search", {
		DATABASE_URL: workerDb.toString(),
		NEON_HTTP_ENDPOINT: neon.httpEndpoint,
		NEON_WS_PROXY: neon.wsProxy,
		// No Redis tier: with an admin's no-cache every request goes to the origin anyway.
		UPSTASH_REDIS_REST_URL: "",
		UPSTASH_REDIS_REST_TOKEN: "",
		JWT_SECRET: secret,
	});
	return {
		base: running.origin,
		// Cache-Control: no-cache is honoured to the letter only for admin and service tokens.
		token: await mintToken(secret, build.vars, "admin"),
		stop: async () => {
			await running.mf.dispose();
			await neon.close();
		},
	};
}

// ---------------------------------------------------------------------------------------------

interface Row {
	name: string;
	sql: Stats;
	baseline?: Stats;
	worker?: Stats;
}

const fmt = (x: number | undefined) =>
	x === undefined || Number.isNaN(x) ? "-" : x < 100 ? x.toFixed(1) : x.toFixed(0);

function printTable(rows: Row[]): void {
	const header = [
		"class",
		"SQL p50",
		"p95",
		"p99",
		"baseline p50",
		"p95",
		"p99",
		"speed-up p95",
		"Worker p50",
		"p95",
		"p99",
	];
	const lines = rows.map((r) => [
		r.name,
		fmt(r.sql.p50),
		fmt(r.sql.p95),
		fmt(r.sql.p99),
		fmt(r.baseline?.p50),
		fmt(r.baseline?.p95),
		fmt(r.baseline?.p99),
		r.baseline ? `${(r.baseline.p95 / r.sql.p95).toFixed(0)}x` : "-",
		fmt(r.worker?.p50),
		fmt(r.worker?.p95),
		fmt(r.worker?.p99),
	]);
	const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
	const row = (cells: string[]) =>
		`| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
	console.log("\nLatency in ms (n per cell in the notes below).");
	console.log(row(header));
	console.log(
		`|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`,
	);
	for (const l of lines) console.log(row(l));
}

async function main(): Promise<void> {
	log(
		`load average (1/5/15 min): ${loadavg()
			.map((x) => x.toFixed(1))
			.join(" / ")}`,
	);
	await ensureBenchDatabase();
	const client = new pg.Client({ connectionString: URL_, application_name: "bench-search" });
	await client.connect();
	// The Worker sends the statement in a batch after its read settings (jit off and a
	// statement_timeout: readSettings in src/db/client.ts); jit off for the whole session here,
	// for the baseline too.
	await client.query("SET jit = off");
	const rows: Row[] = [];

	// (a) the app's SQL
	log(`(a) the app's statement: ${ITERATIONS} timed runs per class after 3 warm-up rounds`);
	for (const c of CLASSES) {
		const prepared = new Map(c.queries.map((query) => [query, appQuery(query)]));
		const sql = await measure(c.queries, ITERATIONS, 3, async (query) => {
			const s = prepared.get(query);
			if (s) await client.query(s.text, s.values);
		});
		rows.push({ name: c.name, sql });
		log(`  ${c.name}: p50 ${fmt(sql.p50)} p95 ${fmt(sql.p95)} p99 ${fmt(sql.p99)}`);
	}
	// Context for the table: totals and estimate flags of one query per class.
	for (const c of CLASSES) {
		const first = c.queries[0] ?? "";
		const s = appQuery(first);
		const { rows: r } = await client.query<{ mode: string }>(s.text, s.values);
		log(`  ${c.name}: "${decodeURIComponent(first.replaceAll("+", " "))}" → mode ${r[0]?.mode}`);
	}

	// (c) through the Worker
	if (!args["skip-worker"]) {
		log("(c) starting the built Worker on workerd (Miniflare API) against the benchmark database");
		const worker = await startWorker();
		try {
			log(
				`(c) the Worker at ${worker.base}: ${ITERATIONS} timed GETs per class, an admin token with Cache-Control: no-cache`,
			);
			for (const c of CLASSES) {
				const http = await measure(c.queries, ITERATIONS, 3, async (query) => {
					const res = await fetch(`${worker.base}/api/v1/fast/search?${query}`, {
						headers: { "cache-control": "no-cache", authorization: `Bearer ${worker.token}` },
					});
					if (res.status !== 200) throw new Error(`${query}: HTTP ${res.status} ${await res.text()}`);
					if (res.headers.get("x-cache") !== "MISS") throw new Error(`${query}: not from the origin`);
					await res.arrayBuffer();
				});
				const row = rows.find((r) => r.name === c.name);
				if (row) row.worker = http;
				log(`  ${c.name}: p50 ${fmt(http.p50)} p95 ${fmt(http.p95)} p99 ${fmt(http.p99)}`);
			}
		} finally {
			await worker.stop();
		}
	}

	// (b) the baseline, last: its sequential scans would otherwise disturb the others' caches.
	if (!args["skip-baseline"]) {
		log(
			`(b) the ILIKE + COUNT + GROUP BY baseline: ${BASELINE_ITERATIONS} timed runs per class (no warm-up)`,
		);
		for (const c of CLASSES) {
			const prepared = new Map(c.queries.map((query) => [query, baselineQueries(query)]));
			const baseline = await measure(
				c.queries,
				BASELINE_ITERATIONS,
				0,
				async (query) => {
					for (const s of prepared.get(query) ?? []) await client.query(s.text, s.values);
				},
				60_000,
			);
			const row = rows.find((r) => r.name === c.name);
			if (row) row.baseline = baseline;
			log(`  ${c.name}: p50 ${fmt(baseline.p50)} p95 ${fmt(baseline.p95)} p99 ${fmt(baseline.p99)}`);
		}
	}
	await client.end();

	printTable(rows);
	console.log(
		`Load average at the end (1/5/15 min): ${loadavg()
			.map((x) => x.toFixed(1))
			.join(" / ")}`,
	);
	const n = rows[0];
	console.log(
		`\nn: SQL ${n?.sql.n ?? 0}, Worker ${n?.worker?.n ?? 0}, baseline ${n?.baseline?.n ?? 0} per class (queries of a class round-robin).`,
	);
	console.log(
		`Targets: SQL p95 <= ${TARGET_SQL_P95} ms, Worker p95 <= ${TARGET_WORKER_P95} ms, common word >= ${TARGET_SPEEDUP}x the baseline at p95.`,
	);
	for (const r of rows) {
		const misses: string[] = [];
		if (r.sql.p95 > TARGET_SQL_P95) misses.push(`SQL p95 ${fmt(r.sql.p95)} ms`);
		if (r.worker && r.worker.p95 > TARGET_WORKER_P95) misses.push(`Worker p95 ${fmt(r.worker.p95)} ms`);
		if (r.name === "common word" && r.baseline && r.baseline.p95 / r.sql.p95 < TARGET_SPEEDUP)
			misses.push(`speed-up ${(r.baseline.p95 / r.sql.p95).toFixed(1)}x`);
		console.log(
			`  ${misses.length ? "MISS" : "ok  "} ${r.name}${misses.length ? `: ${misses.join(", ")}` : ""}`,
		);
	}
}

main().catch((err: Error) => {
	console.error(`[bench] failed: ${err.stack ?? err.message}`);
	process.exit(1);
});

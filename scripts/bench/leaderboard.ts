// `npm run bench:leaderboard -- [--runs N] [--iterations N] [--explain]`: times the leaderboard
// SQL of src/leaderboard/leaderboard.queries.ts (the very statements the Worker sends) over
// node-postgres against DATABASE_URL (default: the 1M-repository gitinsight_bench database):
//   - the cron's full refresh (every snapshot), `--runs` times;
//   - the request path: the snapshot read (one primary-key row) and the on-demand ranking of one
//     combination, p50/p95 over `--iterations` runs per timeframe, category and language scope
//     (all languages, the most common language, the 20th and the rarest).
// Everything runs in one transaction that is rolled back: the database is left as it was (the
// snapshot table is created inside it from drizzle/ when the database predates it).
// "Today" is the newest day of the daily stats, so an older dataset still fills every window.
import { readFile } from "node:fs/promises";
import { registerHooks } from "node:module";
import { parseArgs } from "node:util";
import { type SQL, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";

// src/ is bundled for workerd and imports without extensions; let Node resolve those to .ts.
registerHooks({
	resolve(specifier, context, nextResolve) {
		try {
			return nextResolve(specifier, context);
		} catch (err) {
			if (!/^\.\.?\//.test(specifier) || /\.[cm]?[jt]s$/.test(specifier)) throw err;
			return nextResolve(`${specifier}.ts`, context);
		}
	},
});

type Category = "trending" | "popular" | "quality";
type Timeframe = "day" | "week" | "month" | "year";
interface Query {
	category: Category;
	timeframe: Timeframe;
	language?: string | undefined;
	limit: number;
}
/** The part of leaderboard.queries.ts used here (scripts typecheck without src's bundler paths). */
interface LeaderboardQueries {
	refreshStatements(opts: { now?: Date }): SQL[];
	snapshotQuery(q: Query): SQL;
	liveQuery(q: Query, now: Date): SQL;
}

const { values } = parseArgs({
	options: {
		runs: { type: "string", default: "3" },
		iterations: { type: "string", default: "20" },
		explain: { type: "boolean", default: false },
		only: { type: "string" },
	},
	strict: true,
});
const runs = Number(values.runs);
const iterations = Number(values.iterations);
if (!(Number.isInteger(runs) && runs > 0 && Number.isInteger(iterations) && iterations > 0)) {
	console.error("usage: npm run bench:leaderboard -- [--runs N] [--iterations N] [--explain]");
	process.exit(2);
}

const queriesPath = new URL("../../src/leaderboard/leaderboard.queries.ts", import.meta.url).href;
const lb = (await import(queriesPath)) as LeaderboardQueries;
const url = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/gitinsight_bench";
const client = new pg.Client({ connectionString: url });
await client.connect();
const db = drizzle({ client });

function percentile(sorted: number[], p: number): number {
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);

async function timed(query: SQL): Promise<number> {
	const t0 = performance.now();
	await db.execute(query);
	return performance.now() - t0;
}

async function series(query: () => SQL): Promise<{ p50: number; p95: number; times: number[] }> {
	await db.execute(query()); // warm-up
	const times: number[] = [];
	for (let i = 0; i < iterations; i++) times.push(await timed(query()));
	times.sort((a, b) => a - b);
	return { p50: percentile(times, 50), p95: percentile(times, 95), times };
}

try {
	const { rows: info } = await client.query<{ repos: string; stats: string; today: string | null }>(
		`SELECT (SELECT count(*) FROM repositories) AS repos, (SELECT count(*) FROM repository_daily_stats) AS stats,
			(SELECT max(day)::text FROM repository_daily_stats) AS today`,
	);
	const meta = info[0];
	if (!meta?.today) throw new Error("no daily stats: seed the database first (npm run seed)");
	const now = new Date(`${meta.today}T12:00:00Z`);
	const { rows: langRows } = await client.query<{ language: string }>(
		"SELECT language FROM repositories WHERE language IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1",
	);
	const langs = langRows.map((r) => r.language);
	const scopes: [string, string | undefined][] = [
		["all", undefined],
		[`top: ${langs[0]}`, langs[0]],
		[`#20: ${langs[19] ?? langs.at(-1)}`, langs[19] ?? langs.at(-1)],
		[`rare: ${langs.at(-1)}`, langs.at(-1)],
	];
	console.log(
		`leaderboard bench: ${Number(meta.repos).toLocaleString("en")} repositories, ${Number(meta.stats).toLocaleString("en")} daily stats rows, today ${meta.today}, ${langs.length} languages`,
	);

	await client.query("BEGIN");
	const { rows: exists } = await client.query<{ t: string | null }>(
		"SELECT to_regclass('leaderboard_snapshots')::text AS t",
	);
	if (!exists[0]?.t) {
		const ddl = await readFile(
			new URL("../../drizzle/0002_leaderboard_snapshots.sql", import.meta.url),
			"utf8",
		);
		for (const statement of ddl.split("--> statement-breakpoint")) await client.query(statement);
	}

	if (values.only !== "live") {
		console.log(`\nfull refresh (${runs} runs; 3 categories x 4 timeframes x (all + top 20 languages)):`);
		const refreshTimes: number[] = [];
		for (let i = 0; i < runs; i++) {
			const [setWorkMem, upsert] = lb.refreshStatements({ now });
			if (!setWorkMem || !upsert) throw new Error("unexpected refresh statements");
			await db.execute(setWorkMem);
			const t0 = performance.now();
			const { rows } = await db.execute(upsert);
			const elapsed = performance.now() - t0;
			refreshTimes.push(elapsed);
			console.log(`  run ${i + 1}: ${ms(elapsed)} ms  ${JSON.stringify(rows[0])}`);
		}
		refreshTimes.sort((a, b) => a - b);
		if (values.explain) {
			const [setWorkMem, upsert] = lb.refreshStatements({ now });
			if (setWorkMem && upsert) {
				await db.execute(setWorkMem);
				const plan = await db.execute<{ "QUERY PLAN": string }>(sql`EXPLAIN (ANALYZE, COSTS OFF) ${upsert}`);
				for (const p of plan.rows) console.log(`    ${p["QUERY PLAN"]}`);
			}
		}
		console.log(
			`  median ${ms(percentile(refreshTimes, 50))} ms, min ${ms(refreshTimes[0] ?? Number.NaN)} ms`,
		);
	}
	if (values.only === "refresh") process.exit(0);

	const snap = await series(() => lb.snapshotQuery({ category: "trending", timeframe: "week", limit: 50 }));
	const snapLang = await series(() =>
		lb.snapshotQuery({
			category: "trending",
			timeframe: "week",
			limit: 50,
			language: langs[1]?.toLowerCase(),
		}),
	);
	console.log(
		`\nrequest path, snapshot read (limit 50, ${iterations} runs): all languages p50 ${ms(snap.p50)} / p95 ${ms(snap.p95)} ms; with language resolution p50 ${ms(snapLang.p50)} / p95 ${ms(snapLang.p95)} ms`,
	);

	console.log(`\non-demand ranking (limit 50, ${iterations} runs each), p50 / p95 ms:`);
	const header = ["timeframe", "category", ...scopes.map(([name]) => name)];
	const table: string[][] = [];
	const pooled: string[] = [];
	for (const timeframe of ["day", "week", "month", "year"] as const) {
		const all: number[] = [];
		for (const category of ["trending", "popular", "quality"] as const) {
			const row: string[] = [timeframe, category];
			for (const [, language] of scopes) {
				const q: Query = { category, timeframe, language, limit: 50 };
				const r = await series(() => lb.liveQuery(q, now));
				all.push(...r.times);
				row.push(`${ms(r.p50)} / ${ms(r.p95)}`);
				if (values.explain) {
					const plan = await db.execute<{ "QUERY PLAN": string }>(
						sql`EXPLAIN (ANALYZE, COSTS OFF) ${lb.liveQuery(q, now)}`,
					);
					console.log(`\n${category} ${timeframe} ${language ?? "all"}:`);
					for (const p of plan.rows) console.log(`    ${p["QUERY PLAN"]}`);
				}
			}
			table.push(row);
		}
		all.sort((a, b) => a - b);
		pooled.push(
			`  ${timeframe.padEnd(5)}  p50 ${ms(percentile(all, 50))}  p95 ${ms(percentile(all, 95))}  max ${ms(all.at(-1) ?? Number.NaN)}`,
		);
	}
	const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")}`;
	console.log(line(header));
	for (const row of table) console.log(line(row));
	console.log("\non-demand ranking per timeframe (3 categories x 4 scopes pooled), ms:");
	for (const p of pooled) console.log(p);
} finally {
	await client.query("ROLLBACK").catch(() => undefined);
	await client.end();
}

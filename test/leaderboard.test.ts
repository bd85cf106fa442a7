// GET /api/v1/fast/leaderboard through the real Worker against the seeded repositories: every
// category x timeframe ranked as an independent computation (in JS, from the raw rows) says, both
// on demand (no snapshot yet) and from the snapshots the scheduled handler writes; growth, the
// language filter and its canonical spelling, limit, cache headers and the canonical cache key,
// and 400s for bad input. Only leaderboard_snapshots rows are written (seeded rows are shared).

import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { type SQL, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import worker from "../src/index";
import { getLeaderboard, type SqlReader } from "../src/leaderboard/leaderboard.queries";
import { leaderboardOperations } from "../src/leaderboard/leaderboard.routes";
import {
	CATEGORIES,
	type Category,
	LeaderboardResponse,
	TIMEFRAME_DAYS,
	TIMEFRAMES,
	type Timeframe,
} from "../src/leaderboard/leaderboard.schemas";
import { buildOpenApi } from "../src/lib/openapi";
import { call, errorBody, hs256Token } from "./helpers";

const BASE = "/api/v1/fast/leaderboard";
const db = createDb(env);

type Repo = {
	id: string;
	name: string;
	full_name: string;
	language: string | null;
	stars: number;
	forks: number;
	quality_score: number;
};
type Stat = { repository_id: string; day: string; stars_gained: number; forks_gained: number };
type Expected = {
	id: string;
	name: string;
	full_name: string;
	language: string | null;
	stars: number;
	forks: number;
	score: number;
	growth: { stars: number; forks: number };
};

let repos: Repo[];
let stats: Stat[];
/** Languages by repository count, most common first. */
let languages: { language: string; n: number }[];

beforeAll(async () => {
	repos = (
		await db.execute<Repo>(
			sql`SELECT id::text, name, full_name, language, stars, forks, quality_score FROM repositories`,
		)
	).rows;
	stats = (
		await db.execute<Stat>(
			sql`SELECT repository_id::text, day::text, stars_gained, forks_gained FROM repository_daily_stats`,
		)
	).rows;
	languages = (
		await db.execute<{ language: string; n: number }>(
			sql`SELECT language, count(*)::int AS n FROM repositories WHERE language IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1`,
		)
	).rows;
	expect(repos.length).toBeGreaterThanOrEqual(400);
});

function addDays(day: string, n: number): string {
	return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The ranking computed here from the raw rows, independently of the SQL under test. */
function expected(category: Category, timeframe: Timeframe, language?: string, limit = 100): Expected[] {
	const today = new Date().toISOString().slice(0, 10);
	const from = addDays(today, 1 - TIMEFRAME_DAYS[timeframe]);
	const growth = new Map<string, { stars: number; forks: number }>();
	for (const s of stats) {
		if (s.day < from || s.day > today) continue;
		const g = growth.get(s.repository_id) ?? { stars: 0, forks: 0 };
		g.stars += s.stars_gained;
		g.forks += s.forks_gained;
		growth.set(s.repository_id, g);
	}
	const rows = repos
		.filter((r) => language === undefined || r.language === language)
		.map((r) => ({ ...r, growth: growth.get(r.id) ?? { stars: 0, forks: 0 } }));
	let ranked: (Repo & { growth: { stars: number; forks: number }; score: number })[];
	switch (category) {
		case "trending":
			ranked = rows
				.filter((r) => r.growth.stars > 0)
				.sort((a, b) => b.growth.stars - a.growth.stars || b.stars - a.stars || byId(a, b))
				.map((r) => ({ ...r, score: r.growth.stars }));
			break;
		case "popular":
			ranked = rows.sort((a, b) => b.stars - a.stars || byId(a, b)).map((r) => ({ ...r, score: r.stars }));
			break;
		case "quality":
			ranked = rows
				.sort((a, b) => b.quality_score - a.quality_score || b.stars - a.stars || byId(a, b))
				.map((r) => ({ ...r, score: r.quality_score }));
			break;
	}
	return ranked.slice(0, limit).map((r) => ({
		id: r.id,
		name: r.name,
		full_name: r.full_name,
		language: r.language,
		stars: r.stars,
		forks: r.forks,
		score: r.score,
		growth: r.growth,
	}));
}

let opsToken: Promise<string> | undefined;

/** By default as an admin with no-cache (honoured to the letter only for admin and service tokens). */
async function get(query: string, headers?: Record<string, string>) {
	opsToken ??= hs256Token({ sub: "leaderboard-ops", role: "admin" });
	const res = await call(`${BASE}${query}`, {
		headers: headers ?? { authorization: `Bearer ${await opsToken}`, "cache-control": "no-cache" },
	});
	return { res, body: res.status === 200 ? ((await res.json()) as LeaderboardResponse) : null };
}

function expectRanking(body: LeaderboardResponse | null, want: Expected[]) {
	if (!body) throw new Error("no body");
	expect(body.entries.map((e) => e.id)).toEqual(want.map((e) => e.id));
	body.entries.forEach((e, i) => {
		const w = want[i];
		if (!w) throw new Error(`unexpected entry #${i + 1}`);
		expect(e.rank).toBe(i + 1);
		expect({ ...e, rank: undefined, score: undefined }).toEqual({ ...w, rank: undefined, score: undefined });
		// quality_score is served rounded to 2 decimals.
		expect(Math.abs(e.score - w.score)).toBeLessThanOrEqual(0.005 + 1e-9);
	});
}

async function runCron(scheduledTime = Date.now()) {
	const ctx = createExecutionContext();
	await worker.scheduled(createScheduledController({ scheduledTime, cron: "*/5 * * * *" }), env, ctx);
	await waitOnExecutionContext(ctx);
}

const combos = CATEGORIES.flatMap((c) => TIMEFRAMES.map((t) => [c, t] as const));

describe("leaderboard on demand (before any snapshot)", () => {
	it("starts without snapshots", async () => {
		const { rows } = await db.execute<{ n: number }>(
			sql`SELECT count(*)::int AS n FROM leaderboard_snapshots`,
		);
		expect(rows[0]?.n).toBe(0);
	});

	it("answers the documented shape with the defaults (trending, week, all languages, 50)", async () => {
		const before = Date.now();
		const { res, body } = await get("");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toContain("application/json");
		expect(Object.keys(body ?? {})).toEqual(["category", "timeframe", "language", "generated_at", "entries"]);
		expect(body).toMatchObject({ category: "trending", timeframe: "week", language: null });
		expect(body?.generated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
		expect(Date.parse(body?.generated_at ?? "")).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
		expect(Object.keys(body?.entries[0] ?? {})).toEqual([
			"rank",
			"id",
			"name",
			"full_name",
			"language",
			"stars",
			"forks",
			"score",
			"growth",
		]);
		expectRanking(body, expected("trending", "week", undefined, 50));
		expect(LeaderboardResponse.safeParse(body).success).toBe(true);
	});

	it("describes itself for /openapi.json from the same schemas", () => {
		type Op = { parameters: { name: string; schema: { enum?: string[] } }[] };
		const { paths } = buildOpenApi(leaderboardOperations, { version: "test" });
		const op = paths["/api/v1/fast/leaderboard"]?.get as Op | undefined;
		const params = op?.parameters ?? [];
		expect(params.map((p) => p.name)).toEqual(["category", "timeframe", "language", "limit"]);
		expect(params[0]?.schema.enum).toEqual([...CATEGORIES]);
		expect(params[1]?.schema.enum).toEqual([...TIMEFRAMES]);
	});

	it.each(combos)("ranks %s / %s like an independent computation", async (category, timeframe) => {
		const { body } = await get(`?category=${category}&timeframe=${timeframe}&limit=100`);
		const want = expected(category, timeframe);
		expect(want.length).toBeGreaterThan(0);
		expectRanking(body, want);
	});

	it("filters by language, case-insensitively, answering the stored spelling", async () => {
		const top = languages[0]?.language ?? "";
		for (const category of CATEGORIES) {
			const { body } = await get(
				`?category=${category}&timeframe=month&language=${encodeURIComponent(top.toUpperCase())}`,
			);
			expect(body?.language).toBe(top);
			expectRanking(body, expected(category, "month", top, 50));
			expect(body?.entries.every((e) => e.language === top)).toBe(true);
		}
	});

	it("answers an unknown language with an empty ranking", async () => {
		const { res, body } = await get("?language=Brainfuck&category=popular");
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ category: "popular", language: "Brainfuck", entries: [] });
	});

	it("honours limit: 1, 7 (a prefix of 100), 100", async () => {
		const one = await get("?category=popular&limit=1");
		expect(one.body?.entries).toHaveLength(1);
		const seven = await get("?category=quality&timeframe=year&limit=7");
		const hundred = await get("?category=quality&timeframe=year&limit=100");
		expect(seven.body?.entries).toEqual(hundred.body?.entries.slice(0, 7));
		expect(hundred.body?.entries).toHaveLength(Math.min(100, repos.length));
	});
});

describe("leaderboard cache", () => {
	it("sends public cache headers fitting the 5-minute cron", async () => {
		const { res } = await get("?category=popular&timeframe=day&limit=3", {});
		expect(res.headers.get("cache-control")).toMatch(
			/^public, max-age=\d+, stale-while-revalidate=300, stale-if-error=21600$/,
		);
		expect(res.headers.get("etag")).toMatch(/^W\/".+"$/);
		expect(res.headers.get("x-cache")).toMatch(/^(MISS|HIT)$/);
	});

	it("shares one entry between equivalent requests (order, defaults, case, whitespace)", async () => {
		const lang = languages[1]?.language ?? "";
		const first = await get(`?language=${encodeURIComponent(lang)}&limit=9`, {});
		expect(first.res.headers.get("x-cache")).toBe("MISS");
		for (const q of [
			`?limit=9&timeframe=week&category=trending&language=${encodeURIComponent(lang.toLowerCase())}`,
			`?category=TRENDING&timeframe=Week&limit=09&language=${encodeURIComponent(` ${lang.toUpperCase()} `)}`,
			`?language=${encodeURIComponent(lang)}&limit=9&utm_source=x`,
		]) {
			const again = await get(q, {});
			expect(again.res.status).toBe(200);
			expect(again.res.headers.get("x-cache")).toBe("HIT");
			expect(again.body).toEqual(first.body);
		}
		const other = await get(`?language=${encodeURIComponent(lang)}&limit=10`, {});
		expect(other.res.headers.get("x-cache")).toBe("MISS");
	});

	it("answers 304 to If-None-Match", async () => {
		const first = await get("?category=quality&timeframe=day&limit=4", {});
		const etag = first.res.headers.get("etag") ?? "";
		const again = await call(`${BASE}?category=quality&timeframe=day&limit=4`, {
			headers: { "if-none-match": etag },
		});
		expect(again.status).toBe(304);
	});
});

describe("leaderboard bad input", () => {
	it.each([
		["category", "category=newest", "trending, popular, quality"],
		["category", "category=", "trending, popular, quality"],
		["category", "category=trending%00", "trending, popular, quality"],
		["timeframe", "timeframe=decade", "day, week, month, year"],
		["timeframe", "timeframe=w%C3%A9ek", "day, week, month, year"],
		["limit", "limit=0", "1 to 100"],
		["limit", "limit=101", "1 to 100"],
		["limit", "limit=abc", "1 to 100"],
		["limit", "limit=-1", "1 to 100"],
		["limit", "limit=1.5", "1 to 100"],
		["limit", "limit=1e2", "1 to 100"],
		["limit", "limit=", "1 to 100"],
		["limit", `limit=${"9".repeat(400)}`, "1 to 100"],
		["language", "language=%00", "language name"],
		["language", "language=Py%0Athon", "language name"],
		["language", "language=%F0%9F%92%A9", "language name"],
		["language", "language=%E2%80%AEnohtyP", "language name"],
		["language", "language=Python%27%3B%20DROP%20TABLE%20repositories%3B--", "language name"],
		["language", `language=${"a".repeat(51)}`, "language name"],
	])("answers 400 naming %s for %s", async (parameter, query, allowed) => {
		const res = await call(`${BASE}?${query}`);
		expect(res.status).toBe(400);
		const err = await errorBody(res);
		expect(err.code).toBe("invalid_parameter");
		expect(err.message).toContain(parameter);
		expect(err.details?.[0]?.parameter).toBe(parameter);
		expect(err.details?.[0]?.message).toContain(allowed);
	});

	it("names every bad parameter at once", async () => {
		const err = await errorBody(await call(`${BASE}?category=x&timeframe=y&limit=z`));
		expect(err.details?.map((d) => d.parameter).sort()).toEqual(["category", "limit", "timeframe"]);
	});
});

describe("leaderboard snapshots (the cron)", () => {
	let generatedAt: string;

	it("the scheduled handler writes every snapshot", async () => {
		const started = Date.now();
		await runCron();
		const { rows } = await db.execute<{
			category: string;
			timeframe: string;
			language: string;
			at: string;
			n: number;
		}>(
			sql`SELECT category, timeframe, language, to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at,
				jsonb_array_length(entries)::int AS n FROM leaderboard_snapshots`,
		);
		const scopes = 1 + Math.min(20, languages.length);
		expect(rows).toHaveLength(CATEGORIES.length * TIMEFRAMES.length * scopes);
		expect(new Set(rows.map((r) => r.language))).toEqual(
			new Set(["", ...languages.slice(0, 20).map((l) => l.language)]),
		);
		expect(new Set(rows.map((r) => r.at)).size).toBe(1);
		generatedAt = rows[0]?.at ?? "";
		expect(Date.parse(generatedAt)).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000);
		for (const r of rows) {
			const want = expected(r.category as Category, r.timeframe as Timeframe, r.language || undefined);
			expect(r.n, `${r.category}/${r.timeframe}/${r.language}`).toBe(want.length);
		}
	});

	it.each(combos)("serves %s / %s from the snapshot, ranked the same", async (category, timeframe) => {
		const { body } = await get(`?category=${category}&timeframe=${timeframe}&limit=100`);
		expect(body?.generated_at).toBe(generatedAt);
		expectRanking(body, expected(category, timeframe));
	});

	it("serves language snapshots, and ranks a language outside the top ones on demand", async () => {
		const inTop = languages[2]?.language ?? "";
		for (const category of CATEGORIES) {
			const { body } = await get(
				`?category=${category}&timeframe=year&language=${encodeURIComponent(inTop)}&limit=100`,
			);
			expect(body?.generated_at).toBe(generatedAt);
			expectRanking(body, expected(category, "year", inTop));
		}
		const rare = languages.at(-1)?.language ?? "";
		expect(languages.length).toBeGreaterThan(20);
		for (const category of CATEGORIES) {
			const { body } = await get(
				`?category=${category}&timeframe=year&language=${encodeURIComponent(rare.toLowerCase())}`,
			);
			expect(body?.language).toBe(rare);
			expect(Date.parse(body?.generated_at ?? "")).toBeGreaterThanOrEqual(Date.parse(generatedAt));
			expectRanking(body, expected(category, "year", rare, 50));
		}
	});

	it("a second run rewrites the snapshots in place and drops ones it no longer makes", async () => {
		await db.execute(sql`INSERT INTO leaderboard_snapshots (category, timeframe, language, generated_at, entries)
			VALUES ('popular', 'week', 'No-Longer-Common', now(), '[]')`);
		await new Promise((r) => setTimeout(r, 1100));
		await runCron();
		const gone = await db.execute<{ n: number }>(
			sql`SELECT count(*)::int AS n FROM leaderboard_snapshots WHERE language = 'No-Longer-Common'`,
		);
		expect(gone.rows[0]?.n).toBe(0);
		const { rows } = await db.execute<{ n: number; at: string }>(
			sql`SELECT count(*)::int AS n, max(to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS at
				FROM leaderboard_snapshots`,
		);
		expect(rows[0]?.n).toBe(CATEGORIES.length * TIMEFRAMES.length * (1 + Math.min(20, languages.length)));
		expect(rows[0]?.at).not.toBe(generatedAt);
		const { body } = await get("?category=popular&timeframe=day");
		expect(body?.generated_at).toBe(rows[0]?.at);
	});

	it("ranks now when the snapshot is older than the cron could leave it", async () => {
		await db.execute(sql`UPDATE leaderboard_snapshots SET generated_at = now() - interval '2 hours'
			WHERE category = 'popular' AND timeframe = 'month' AND language = ''`);
		const before = Math.floor(Date.now() / 1000) * 1000;
		const { body } = await get("?category=popular&timeframe=month&limit=100");
		expect(Date.parse(body?.generated_at ?? "")).toBeGreaterThanOrEqual(before);
		expectRanking(body, expected("popular", "month"));
	});

	it("serves an old snapshot when ranking now fails", async () => {
		const { rows } = await db.execute<{ at: string }>(
			sql`SELECT to_char(generated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS at FROM leaderboard_snapshots
				WHERE category = 'popular' AND timeframe = 'month' AND language = ''`,
		);
		let calls = 0;
		// The real database for the snapshot read, a failure for the on-demand ranking after it.
		const failingLive: SqlReader = {
			async execute<T extends Record<string, unknown>>(query: SQL) {
				if (++calls > 1) throw new Error("origin down");
				return db.execute<T>(query);
			},
		};
		const body = await getLeaderboard(
			failingLive,
			{ category: "popular", timeframe: "month", limit: 5 },
			new Date(),
		);
		expect(calls).toBe(2);
		expect(body.generated_at).toBe(rows[0]?.at);
		expectRanking(body, expected("popular", "month", undefined, 5));
	});

	it("logs and swallows a failing refresh instead of throwing", async () => {
		const ctx = createExecutionContext();
		const broken = { ...env, NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" };
		await expect(
			Promise.resolve(worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), broken, ctx)),
		).resolves.toBeUndefined();
		await waitOnExecutionContext(ctx);
	});
});

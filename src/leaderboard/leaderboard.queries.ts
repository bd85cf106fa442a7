// Leaderboard rankings in SQL (tables of src/db/schema.ts; every value a bound parameter):
//   refreshStatements / refreshLeaderboards — the cron: every category x timeframe for all
//     languages and each of the most common languages, in one set-based statement that upserts
//     leaderboard_snapshots (and drops snapshots it no longer produces);
//   getLeaderboard — a request: one snapshot read by primary key (which also resolves the
//     language's stored spelling), else the on-demand ranking of that one combination.
// Rankings: trending by stars gained in the window (ties: stars desc, id); popular by stars (ties:
// id); quality by quality_score (ties: stars desc, id). Trending lists only repositories that
// gained stars in the window. Windows are UTC days ending today inclusive (TIMEFRAME_DAYS).
// The on-demand SQL stays index-backed: the day index (day, repository_id, stars_gained,
// forks_gained) for all-language windows, the language index plus the daily stats primary key
// (repository_id, day) for one language, the stars / quality indexes for popular / quality.
// Orders say DESC NULLS LAST because that is how the indexes are declared (drizzle's .desc()).
// Past 400 lines because the refresh is one SQL statement, kept whole to read with its plan.
import { type SQL, type SQLChunk, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import {
	CATEGORIES,
	type LeaderboardEntry,
	type LeaderboardQuery,
	type LeaderboardResponse,
	MAX_LIMIT,
	TIMEFRAME_DAYS,
	TIMEFRAMES,
} from "./leaderboard.schemas";

/** What the cron needs of drizzle (neon-http in the Worker): statements in one transaction. */
export type LeaderboardDb = Pick<Db, "execute" | "batch">;
/** What a request needs: one statement at a time. */
export interface SqlReader {
	execute<T extends Record<string, unknown>>(query: SQL): PromiseLike<{ rows: T[] }>;
}

/** Languages with their own snapshots: the most common ones by repository count. */
export const TOP_LANGUAGES = 20;
/** A snapshot older than this means the cron has stopped; requests then rank on demand. */
export const SNAPSHOT_MAX_AGE_MS = 30 * 60_000;
/** For the refresh's aggregates and sorts (one transaction; the default 4 MB spills to disk). */
const REFRESH_WORK_MEM = "64MB";

const utcDay = (now: Date) => now.toISOString().slice(0, 10);
const rfc3339 = (col: SQL) => sql`to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

/** One entry as stored and served; `r` is a repositories row. */
function entryJson(rank: SQL, score: SQL, growthStars: SQL, growthForks: SQL): SQL {
	return sql`jsonb_build_object(
		'rank', ${rank}, 'id', r.id, 'name', r.name, 'full_name', r.full_name, 'language', r.language,
		'stars', r.stars, 'forks', r.forks, 'score', ${score},
		'growth', jsonb_build_object('stars', ${growthStars}, 'forks', ${growthForks}))`;
}

// ---------------------------------------------------------------------------------------------
// The cron's refresh.

export interface RefreshOptions {
	now?: Date;
	topLanguages?: number;
}

export interface RefreshStats {
	snapshots: number;
	entries: number;
	languages: number;
	deleted: number;
}

/**
 * The refresh as statements for one transaction: a work_mem setting and the upsert. `sums` reads
 * a year of daily stats once (serially: a statement that writes gets no parallel workers) and
 * derives every window with FILTER; trending ranks all windows and language groups in one sort;
 * popular and quality read the heads of the stars and quality indexes, per language too.
 */
export function refreshStatements(opts: RefreshOptions = {}): [SQL, SQL] {
	const now = opts.now ?? new Date();
	const today = sql`${utcDay(now)}::date`;
	const top = opts.topLanguages ?? TOP_LANGUAGES;
	// Timeframes are numbered 1..4 inside the statement: narrow sort keys.
	const windows = TIMEFRAMES.map((t, i) => ({
		t,
		n: i + 1,
		days: TIMEFRAME_DAYS[t],
		s: sql.identifier(`s_${t}`),
		f: sql.identifier(`f_${t}`),
	}));
	const maxDays = Math.max(...windows.map((w) => w.days));
	const list = (items: SQL[]) => sql.join(items, sql`, `);
	const windowSum = (col: SQL, days: number, as: SQLChunk) =>
		sql`coalesce(sum(${col}) FILTER (WHERE d.day > ${today} - ${days}::int), 0)::int AS ${as}`;
	const sumColumns = list(
		windows.flatMap((w) => [
			windowSum(sql`d.stars_gained`, w.days, w.s),
			windowSum(sql`d.forks_gained`, w.days, w.f),
		]),
	);
	// A sums row s -> one (t, gs, gf) row per timeframe.
	const perWindow = sql`(VALUES ${list(windows.map((w) => sql`(${w.n}::int, s.${w.s}, s.${w.f})`))}) AS g(t, gs, gf)`;
	const timeframes = sql`(VALUES ${list(windows.map((w) => sql`(${w.n}::int, ${w.t}::text)`))}) AS tf(t, timeframe)`;
	const categories = sql`(VALUES ${list(CATEGORIES.map((c) => sql`(${c}::text)`))}) AS c(category)`;
	const limit = sql`${MAX_LIMIT}::int`;

	const upsert = sql`
WITH langs AS MATERIALIZED (
	-- The languages with their own snapshots, numbered 1..top (scope 0 = all languages).
	SELECT language, row_number() OVER (ORDER BY count(*) DESC, language)::int AS li
	FROM repositories WHERE language IS NOT NULL
	GROUP BY language ORDER BY count(*) DESC, language LIMIT ${top}::int
),
scopes AS MATERIALIZED (SELECT 0 AS li, ''::text AS language UNION ALL SELECT li, language FROM langs),
sums AS MATERIALIZED (
	SELECT d.repository_id AS id, ${sumColumns}
	FROM repository_daily_stats d
	WHERE d.day > ${today} - ${maxDays}::int AND d.day <= ${today}
	GROUP BY d.repository_id
),
-- Trending. Rank within (timeframe, language group), where every language outside the top ones
-- shares group 0: a repository in the all-language top 100 is in its group's top 100, so one sort
-- yields both the per-language rankings (groups > 0) and the candidates for the overall one.
by_group AS MATERIALIZED (
	SELECT * FROM (
		SELECT g.t, x.li, s.id, g.gs, g.gf, x.stars,
			row_number() OVER (PARTITION BY g.t, x.li ORDER BY g.gs DESC, x.stars DESC, s.id)::int AS rank
		FROM sums s
		JOIN LATERAL (
			SELECT r.stars, coalesce(l.li, 0) AS li FROM repositories r LEFT JOIN langs l ON l.language = r.language
			WHERE r.id = s.id
		) x ON true
		CROSS JOIN LATERAL ${perWindow}
		WHERE g.gs > 0
	) ranked WHERE rank <= ${limit}
),
trending AS (
	SELECT * FROM (
		SELECT t, 0 AS li, id, gs::float8 AS score, gs, gf,
			row_number() OVER (PARTITION BY t ORDER BY gs DESC, stars DESC, id)::int AS rank
		FROM by_group
	) overall WHERE rank <= ${limit}
	UNION ALL
	SELECT t, li, id, gs::float8, gs, gf, rank FROM by_group WHERE li > 0
),
popular AS (
	SELECT 0 AS li, id, stars::float8 AS score, row_number() OVER (ORDER BY stars DESC, id)::int AS rank
	FROM (SELECT id, stars FROM repositories ORDER BY stars DESC NULLS LAST, id LIMIT ${limit}) p
	UNION ALL
	SELECT l.li, p.id, p.stars::float8, row_number() OVER (PARTITION BY l.li ORDER BY p.stars DESC, p.id)::int
	FROM langs l CROSS JOIN LATERAL (
		SELECT id, stars FROM repositories WHERE language = l.language
		ORDER BY stars DESC NULLS LAST, id LIMIT ${limit}
	) p
),
quality AS (
	SELECT 0 AS li, id, quality_score, row_number() OVER (ORDER BY quality_score DESC, stars DESC, id)::int AS rank
	FROM (
		SELECT id, quality_score, stars FROM repositories
		ORDER BY quality_score DESC NULLS LAST, stars DESC, id LIMIT ${limit}
	) q
	UNION ALL
	-- Walks the quality index per language until it has its 100 (about 100 / its share of rows).
	SELECT l.li, q.id, q.quality_score,
		row_number() OVER (PARTITION BY l.li ORDER BY q.quality_score DESC, q.stars DESC, q.id)::int
	FROM langs l CROSS JOIN LATERAL (
		SELECT id, quality_score, stars FROM repositories WHERE language = l.language
		ORDER BY quality_score DESC NULLS LAST, stars DESC, id LIMIT ${limit}
	) q
),
-- Growth of the popular and quality entries (trending rows carry theirs).
picked AS MATERIALIZED (
	SELECT * FROM sums WHERE id IN (SELECT id FROM popular UNION SELECT id FROM quality)
),
ranked AS (
	SELECT 'trending'::text AS category, t, li, id, score, rank, gs, gf FROM trending
	UNION ALL
	SELECT k.category, tf.t, k.li, k.id, k.score, k.rank, coalesce(g.gs, 0), coalesce(g.gf, 0)
	FROM (
		SELECT 'popular'::text AS category, li, id, score, rank FROM popular
		UNION ALL
		SELECT 'quality', li, id, round(quality_score::numeric, 2)::float8, rank FROM quality
	) k
	CROSS JOIN ${timeframes}
	LEFT JOIN picked s ON s.id = k.id
	LEFT JOIN LATERAL (SELECT g.gs, g.gf FROM ${perWindow} WHERE g.t = tf.t) g ON true
),
entries AS (
	SELECT k.category, k.t, k.li,
		jsonb_agg(${entryJson(sql`k.rank`, sql`k.score`, sql`k.gs`, sql`k.gf`)} ORDER BY k.rank) AS entries
	FROM ranked k
	-- OFFSET 0: primary-key lookups of these few thousand rows, not a hash join over the table.
	CROSS JOIN LATERAL (SELECT * FROM repositories WHERE id = k.id OFFSET 0) r
	GROUP BY k.category, k.t, k.li
),
computed AS (
	SELECT c.category, tf.timeframe, sc.language, coalesce(e.entries, '[]'::jsonb) AS entries
	FROM ${categories} CROSS JOIN ${timeframes} CROSS JOIN scopes sc
	LEFT JOIN entries e ON e.category = c.category AND e.t = tf.t AND e.li = sc.li
),
upserted AS (
	INSERT INTO leaderboard_snapshots (category, timeframe, language, generated_at, entries)
	SELECT category, timeframe, language, ${now.toISOString()}::timestamptz, entries FROM computed
	ON CONFLICT (category, timeframe, language)
		DO UPDATE SET generated_at = excluded.generated_at, entries = excluded.entries
	RETURNING jsonb_array_length(entries) AS n
),
deleted AS (
	DELETE FROM leaderboard_snapshots o WHERE NOT EXISTS (
		SELECT 1 FROM computed c WHERE c.category = o.category AND c.timeframe = o.timeframe AND c.language = o.language)
	RETURNING 1
)
SELECT (SELECT count(*) FROM upserted)::int AS snapshots,
	(SELECT coalesce(sum(n), 0) FROM upserted)::int AS entries,
	(SELECT count(*) FROM langs)::int AS languages,
	(SELECT count(*) FROM deleted)::int AS deleted`;

	return [sql`SET LOCAL work_mem = ${sql.raw(`'${REFRESH_WORK_MEM}'`)}`, upsert];
}

/** Recomputes every snapshot in one transaction. */
export async function refreshLeaderboards(
	db: LeaderboardDb,
	opts: RefreshOptions = {},
): Promise<RefreshStats> {
	const [setWorkMem, upsert] = refreshStatements(opts);
	const [, result] = await db.batch([
		db.execute(setWorkMem),
		db.execute<RefreshStats & Record<string, unknown>>(upsert),
	]);
	const row = result.rows[0];
	if (!row) throw new Error("leaderboard refresh returned no row");
	return { snapshots: row.snapshots, entries: row.entries, languages: row.languages, deleted: row.deleted };
}

// ---------------------------------------------------------------------------------------------
// Requests.

/**
 * The snapshot of (category, timeframe, language) with its first `limit` entries, and the
 * language's stored spelling: an index-only loose scan over the distinct languages (a few dozen
 * probes of the (language, stars) index) matched case-insensitively. No row: unknown language.
 */
export function snapshotQuery(q: LeaderboardQuery): SQL {
	const canonical = q.language
		? sql`WITH RECURSIVE langs(language) AS (
				(SELECT language FROM repositories WHERE language IS NOT NULL ORDER BY language LIMIT 1)
				UNION ALL
				SELECT (SELECT r.language FROM repositories r WHERE r.language > l.language ORDER BY r.language LIMIT 1)
				FROM langs l WHERE l.language IS NOT NULL
			),
			canon AS (SELECT language FROM langs WHERE lower(language) = lower(${q.language}) ORDER BY language LIMIT 1)`
		: sql`WITH canon AS (SELECT ''::text AS language)`;
	return sql`${canonical}
		SELECT c.language, s.generated_at IS NOT NULL AS found,
			${rfc3339(sql`s.generated_at`)} AS generated_at,
			(extract(epoch FROM s.generated_at) * 1000)::float8 AS generated_ms,
			(SELECT coalesce(jsonb_agg(e ORDER BY i), '[]'::jsonb)
				FROM jsonb_array_elements(s.entries) WITH ORDINALITY AS x(e, i) WHERE i <= ${q.limit}::int) AS entries
		FROM canon c LEFT JOIN leaderboard_snapshots s
			ON s.category = ${q.category} AND s.timeframe = ${q.timeframe} AND s.language = c.language`;
}

/** Ranks one combination now: the top `limit` entries as a jsonb array. */
export function liveQuery(q: LeaderboardQuery, now: Date): SQL {
	const today = sql`${utcDay(now)}::date`;
	const days = TIMEFRAME_DAYS[q.timeframe];
	const inWindow = sql`d.day > ${today} - ${days}::int AND d.day <= ${today}`;
	const limit = sql`${q.limit}::int`;
	const ofLanguage = q.language ? sql`WHERE language = ${q.language}` : sql``;
	const growthOf = sql`LEFT JOIN LATERAL (
		SELECT coalesce(sum(d.stars_gained), 0)::int AS gs, coalesce(sum(d.forks_gained), 0)::int AS gf
		FROM repository_daily_stats d WHERE d.repository_id = r.id AND ${inWindow}
	) g ON true`;
	const aggregate = (score: SQL) =>
		sql`SELECT coalesce(jsonb_agg(${entryJson(sql`k.rank`, score, sql`k.gs`, sql`k.gf`)} ORDER BY k.rank), '[]'::jsonb) AS entries`;

	switch (q.category) {
		case "trending": {
			// Stars gained per repository in the window, then the top `limit` by (gs, stars, id).
			const gained = q.language
				? // One language (on demand: one outside the snapshots' top languages, so a small one):
					// per repository, a range of the daily stats primary key. A LATERAL, because the
					// planner underestimates distinct repositories in the daily stats (a few have a row
					// every day, most a handful) and would otherwise scan a whole year of the table.
					sql`SELECT r.id, g.gs, g.gf FROM repositories r CROSS JOIN LATERAL (
						SELECT sum(d.stars_gained)::int AS gs, sum(d.forks_gained)::int AS gf
						FROM repository_daily_stats d WHERE d.repository_id = r.id AND ${inWindow}
					) g WHERE r.language = ${q.language} AND g.gs > 0`
				: // All languages: an index-only range scan of the day index.
					sql`SELECT d.repository_id AS id, sum(d.stars_gained)::int AS gs, sum(d.forks_gained)::int AS gf
					FROM repository_daily_stats d WHERE ${inWindow}
					GROUP BY d.repository_id HAVING sum(d.stars_gained) > 0`;
			// Only repositories at or above the limit-th growth can rank; look up just those.
			return sql`WITH gained AS MATERIALIZED (${gained}),
				cut AS (SELECT gs FROM gained ORDER BY gs DESC OFFSET ${q.limit - 1}::int LIMIT 1),
				k AS (
					SELECT row_number() OVER (ORDER BY x.gs DESC, r.stars DESC, r.id) AS rank, x.gs, x.gf, r.id
					FROM gained x CROSS JOIN LATERAL (SELECT id, stars FROM repositories WHERE id = x.id OFFSET 0) r
					WHERE x.gs >= coalesce((SELECT gs FROM cut), 1)
					ORDER BY rank LIMIT ${limit}
				)
				${aggregate(sql`k.gs::float8`)} FROM k JOIN repositories r ON r.id = k.id`;
		}
		case "popular":
			return sql`WITH k AS (
					SELECT row_number() OVER (ORDER BY r.stars DESC, r.id) AS rank, r.id, g.gs, g.gf
					FROM (SELECT id, stars FROM repositories ${ofLanguage} ORDER BY stars DESC NULLS LAST, id LIMIT ${limit}) r
					${growthOf}
				)
				${aggregate(sql`r.stars::float8`)} FROM k JOIN repositories r ON r.id = k.id`;
		case "quality":
			return sql`WITH k AS (
					SELECT row_number() OVER (ORDER BY r.quality_score DESC, r.stars DESC, r.id) AS rank, r.id, g.gs, g.gf
					FROM (
						SELECT id, quality_score, stars FROM repositories ${ofLanguage}
						ORDER BY quality_score DESC NULLS LAST, stars DESC, id LIMIT ${limit}
					) r
					${growthOf}
				)
				${aggregate(sql`round(r.quality_score::numeric, 2)::float8`)} FROM k JOIN repositories r ON r.id = k.id`;
		default:
			return unexpected(q.category);
	}
}

// Not errors.ts's assertNever: this module also runs in Node (scripts/bench/leaderboard.ts), whose
// type stripping cannot load errors.ts (parameter properties).
function unexpected(value: never): never {
	throw new Error(`unexpected category: ${String(value)}`);
}

type SnapshotRow = {
	language: string;
	found: boolean;
	generated_at: string | null;
	generated_ms: number | null;
	entries: LeaderboardEntry[];
};

/**
 * The response for `q`: from its snapshot when there is a recent one, else ranked now. A snapshot
 * past SNAPSHOT_MAX_AGE_MS (the cron has stopped) is still served when ranking now fails.
 */
export async function getLeaderboard(
	db: SqlReader,
	q: LeaderboardQuery,
	now: Date,
): Promise<LeaderboardResponse> {
	const { rows } = await db.execute<SnapshotRow>(snapshotQuery(q));
	const snap = rows[0];
	// A language no repository has: an empty ranking (the set of languages is data, not an enum).
	if (!snap) return respond(q, q.language ?? null, utcSeconds(now), []);
	const language = snap.language || null;
	const fromSnapshot = () => respond(q, language, snap.generated_at ?? "", snap.entries);
	const rankedNow = async () =>
		respond(q, language, utcSeconds(now), await rankNow(db, { ...q, language: language ?? undefined }, now));
	if (!snap.found) return rankedNow();
	if (now.getTime() - (snap.generated_ms ?? 0) < SNAPSHOT_MAX_AGE_MS) return fromSnapshot();
	try {
		return await rankedNow();
	} catch (err) {
		console.warn(
			JSON.stringify({
				level: "warn",
				msg: "leaderboard: ranking now failed, serving an old snapshot",
				generated_at: snap.generated_at,
				error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
			}),
		);
		return fromSnapshot();
	}
}

async function rankNow(db: SqlReader, q: LeaderboardQuery, now: Date): Promise<LeaderboardEntry[]> {
	const { rows } = await db.execute<{ entries: LeaderboardEntry[] }>(liveQuery(q, now));
	return rows[0]?.entries ?? [];
}

function respond(
	q: LeaderboardQuery,
	language: string | null,
	generatedAt: string,
	entries: LeaderboardEntry[],
): LeaderboardResponse {
	return {
		category: q.category,
		timeframe: q.timeframe,
		language,
		generated_at: generatedAt,
		entries: entries.map(toEntry),
	};
}

function utcSeconds(d: Date): string {
	return `${d.toISOString().slice(0, 19)}Z`;
}

/** jsonb objects come back with their keys reordered; serve them in the documented order. */
function toEntry(e: LeaderboardEntry): LeaderboardEntry {
	return {
		rank: e.rank,
		id: e.id,
		name: e.name,
		full_name: e.full_name,
		language: e.language,
		stars: e.stars,
		forks: e.forks,
		score: e.score,
		growth: { stars: e.growth.stars, forks: e.growth.forks },
	};
}

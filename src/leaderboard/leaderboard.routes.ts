// GET /api/v1/fast/leaderboard: public, read through the layered cache. The cron rewrites the
// snapshots every 5 minutes (wrangler.toml), so an answer is fresh for 5 minutes, may be served
// stale for 5 more while one background load refreshes it, and is kept for hours as the
// stale-if-error fallback. The cache key is built from the validated parameters (defaults filled
// in, case folded, fixed order), so equivalent requests share one entry. Only the whole board is
// read from Postgres, under the read settings (statement_timeout); shorter limits are cut from
// its cached copy.
import { Hono } from "hono";
import { boundedRead } from "../db/client";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { CachePolicy } from "../lib/cache";
import { cachedJson, cacheOptions } from "../lib/http-cache";
import type { ApiOperation } from "../lib/openapi";
import { parseQuery } from "../lib/validate";
import { getLeaderboard, type SqlReader } from "./leaderboard.queries";
import { LeaderboardQuery, LeaderboardResponse, MAX_LIMIT } from "./leaderboard.schemas";

export const LEADERBOARD_POLICY: CachePolicy = {
	name: "leaderboard",
	freshMs: 5 * 60_000,
	swrMs: 5 * 60_000,
	errorMs: 6 * 60 * 60_000,
	negativeMs: 30_000,
	// Any language= is accepted (an unknown one is an empty board): at most 1,024 entries of
	// ≤ 32 KiB in Redis (≤ 32 MiB; a whole board is ~8-15 KB).
	redisSlots: { slots: 1024, maxEntryBytes: 32 * 1024 },
};

/** `trending:week:50:python` — language last, lower-cased ("" for all languages). */
export function leaderboardKey(q: LeaderboardQuery): string {
	return `${q.category}:${q.timeframe}:${q.limit}:${(q.language ?? "").toLowerCase()}`;
}

export const leaderboard = new Hono<AppEnv>().get("/", async (c) => {
	const q = parseQuery(LeaderboardQuery, c.req.queries());
	const deps = c.get("deps");
	const opts = await cacheOptions(c);
	// Only the whole board (MAX_LIMIT entries) is loaded from Postgres; a shorter one is cut
	// from the cached whole board, so the 100 possible limits cost one ranking, not 100 (an
	// on-demand ranking is the expensive read here). deps.db is read inside the loader so that a
	// cache hit never builds a database client.
	const whole = { ...q, limit: MAX_LIMIT };
	const loadWhole = () =>
		deps.cache.read(
			LEADERBOARD_POLICY,
			leaderboardKey(whole),
			async () => {
				// Every statement of the request under the read settings (a statement_timeout).
				const ms = deps.config.SQL_STATEMENT_TIMEOUT_MS;
				const reader: SqlReader = { execute: (query) => boundedRead(deps.db, query, ms) };
				return JSON.stringify(await getLeaderboard(reader, whole, new Date(deps.now())));
			},
			opts,
		);
	const result =
		q.limit === MAX_LIMIT
			? await loadWhole()
			: await deps.cache.read(
					LEADERBOARD_POLICY,
					leaderboardKey(q),
					async () => {
						const board = await loadWhole();
						// The cut is as old as the whole board it is cut from (not fresher).
						const fetchedAt = deps.now() - board.ageS * 1000;
						if (board.body === null) return { body: null, fetchedAt };
						const parsed = JSON.parse(board.body) as LeaderboardResponse;
						return {
							body: JSON.stringify({ ...parsed, entries: parsed.entries.slice(0, q.limit) }),
							fetchedAt,
						};
					},
					opts,
				);
	// The loader never answers null; the callback only satisfies cachedJson's signature.
	return cachedJson(
		c,
		LEADERBOARD_POLICY,
		result,
		"public",
		() => new ApiError("not_found", "no leaderboard"),
	);
});

export const leaderboardOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/fast/leaderboard",
		summary: "Leaderboard: trending, popular or quality repositories",
		description:
			"Rankings are precomputed every 5 minutes by the cron for all languages and the 20 most common ones (other languages are ranked on request). Trending ranks by stars gained in the timeframe (ties: stars, id) and lists only repositories that gained stars; popular by stars; quality by quality score (ties: stars, id). An unknown language answers an empty list. Served from the layered cache (5 min fresh, 5 min stale-while-revalidate, 6 h stale-if-error); Cache-Control: no-cache / max-age=N accept copies up to max(N, 5) s old (to the letter for admin and service tokens); If-None-Match answers 304.",
		tag: "leaderboards",
		query: LeaderboardQuery,
		response: LeaderboardResponse,
		cached: true,
	},
];

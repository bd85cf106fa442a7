// GET /api/v1/fast/leaderboard: public, read through the layered cache. The cron rewrites the
// snapshots every 5 minutes (wrangler.toml), so an answer is fresh for 5 minutes, may be served
// stale for 5 more while one background load refreshes it, and is kept for hours as the
// stale-if-error fallback. The cache key is built from the validated parameters (defaults filled
// in, case folded, fixed order), so equivalent requests share one entry.
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { CachePolicy } from "../lib/cache";
import { cachedJson, readOptionsOf } from "../lib/http-cache";
import type { ApiOperation } from "../lib/openapi";
import { parseQuery } from "../lib/validate";
import { getLeaderboard } from "./leaderboard.queries";
import { LeaderboardQuery, LeaderboardResponse } from "./leaderboard.schemas";

export const LEADERBOARD_POLICY: CachePolicy = {
	name: "leaderboard",
	freshMs: 5 * 60_000,
	swrMs: 5 * 60_000,
	errorMs: 6 * 60 * 60_000,
	negativeMs: 30_000,
};

/** `trending:week:50:python` — language last, lower-cased ("" for all languages). */
export function leaderboardKey(q: LeaderboardQuery): string {
	return `${q.category}:${q.timeframe}:${q.limit}:${(q.language ?? "").toLowerCase()}`;
}

export const leaderboard = new Hono<AppEnv>().get("/", async (c) => {
	const q = parseQuery(LeaderboardQuery, c.req.queries());
	const deps = c.get("deps");
	const result = await deps.cache.read(
		LEADERBOARD_POLICY,
		leaderboardKey(q),
		// deps.db is read inside the loader so that a cache hit never builds a database client.
		async () => JSON.stringify(await getLeaderboard(deps.db, q, new Date(deps.now()))),
		readOptionsOf(c.req.header("cache-control")),
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
			"Rankings are precomputed every 5 minutes by the cron for all languages and the 20 most common ones (other languages are ranked on request). Trending ranks by stars gained in the timeframe (ties: stars, id) and lists only repositories that gained stars; popular by stars; quality by quality score (ties: stars, id). An unknown language answers an empty list. Served from the layered cache (5 min fresh, 5 min stale-while-revalidate, 6 h stale-if-error); honours Cache-Control: no-cache / max-age=N and If-None-Match.",
		tag: "leaderboards",
		query: LeaderboardQuery,
		response: LeaderboardResponse,
		cached: true,
	},
];

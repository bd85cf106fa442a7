// GET /api/v1/fast/search: public, read through the layered cache. The request is parsed and
// validated first; the cache key is built from the normalised request (q's words lower-cased and
// whitespace-collapsed, qualifiers parsed, merged with the explicit parameters and written in a
// fixed order, the canonical language name, defaults filled), so equivalent requests —
// `?q=API language:go` and `?language=golang&q=api&sort=relevance&limit=20` — share one entry.
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { CachePolicy } from "../lib/cache";
import { sha256Name } from "../lib/digest";
import { cachedJson, cacheOptions } from "../lib/http-cache";
import type { ApiOperation } from "../lib/openapi";
import { parseQuery } from "../lib/validate";
import { searchKey } from "./search.qualifiers";
import { searchRepositories } from "./search.queries";
import { SearchQuery, SearchQueryParams, SearchResponse } from "./search.schemas";

/** Search: 2 min fresh (the seed's TTL), 1 min stale-while-revalidate, 30 min stale-if-error. */
export const SEARCH_POLICY: CachePolicy = {
	name: "search",
	freshMs: 2 * 60_000,
	swrMs: 60_000,
	errorMs: 30 * 60_000,
	negativeMs: 30_000,
	// Anyone can ask for any q: at most 4,096 entries of ≤ 32 KiB in Redis (≤ 128 MiB; a
	// default page is ~5 KB, a 100-result one ~23 KB).
	redisSlots: { slots: 4096, maxEntryBytes: 32 * 1024 },
};

/** Keys longer than this (or with anything but printable ASCII) are stored as their SHA-256. */
const MAX_PLAIN_KEY = 160;

export async function cacheKeyOf(canonical: string): Promise<string> {
	if (canonical.length <= MAX_PLAIN_KEY && /^[\x21-\x7e]*$/.test(canonical)) return canonical;
	return sha256Name(canonical);
}

// Search always answers 200 (an empty result is a result); the cache never stores null here.
const unreachable = () => new ApiError("internal_error", "search produced no body");

export const search = new Hono<AppEnv>().get("/", async (c) => {
	const req = parseQuery(SearchQuery, c.req.queries());
	const deps = c.get("deps");
	const result = await deps.cache.read(
		SEARCH_POLICY,
		await cacheKeyOf(searchKey(req)),
		// deps.db is read inside the loader so that a cache hit never builds a database client.
		async () => JSON.stringify(await searchRepositories(deps.db, req, deps.config.SQL_STATEMENT_TIMEOUT_MS)),
		await cacheOptions(c),
	);
	return cachedJson(c, SEARCH_POLICY, result, "public", unreachable);
});

export const searchOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/fast/search",
		summary: "Faceted full-text repository search",
		description:
			"Public. total and facets count the whole match set (each facet ignores its own filter); above a few thousand matches they are sampled estimates, flagged total_is_estimate / facets_are_estimates. Served from the layered cache (2 min fresh, 1 min stale-while-revalidate, 30 min stale-if-error) under a canonical key, so equivalent requests share an entry. Cache-Control: no-cache / max-age=N accept copies up to max(N, 5) s old (to the letter for admin and service tokens); If-None-Match answers 304.",
		tag: "search",
		query: SearchQueryParams,
		response: SearchResponse,
		cached: true,
	},
];

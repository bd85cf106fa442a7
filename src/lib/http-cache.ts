// HTTP side of the cache: reading a request's Cache-Control into read options, and answering
// with the truthful headers (X-Cache, X-Cache-Tier, Age, ETag, Cache-Control) and 304s.
import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { ApiError } from "../errors";
import { privilegedCaller } from "../middleware/auth";
import type { CachePolicy, CacheResult, ReadOptions } from "./cache";

/**
 * The youngest copy most clients can ask for: their `no-cache`, `max-age=0` and `max-age=N` below
 * it are read as "at most this old". Anyone can send those directives, so honouring them to the
 * letter would let anyone send every request to Postgres; with the floor, a key is loaded from
 * the origin about once per REVALIDATE_FLOOR_MS at most (the Redis tier is shared by every colo)
 * whatever the requests say (issue 11). Admin and service tokens get them to the letter
 * (operators and the pipeline checking a change; see privilegedCaller).
 */
export const REVALIDATE_FLOOR_MS = 5_000;

/**
 * `Cache-Control: no-cache | no-store | max-age=N` from the client, as read options; `floorMs`
 * is the youngest copy the client may insist on (0: honoured to the letter, no-store included).
 */
export function readOptionsOf(header: string | undefined, floorMs = REVALIDATE_FLOOR_MS): ReadOptions {
	if (!header) return {};
	const opts: ReadOptions = {};
	const atMost = (ms: number) => {
		const bounded = Math.max(floorMs, ms);
		if (bounded === 0) opts.noCache = true;
		else opts.maxAgeMs = Math.min(opts.maxAgeMs ?? Number.POSITIVE_INFINITY, bounded);
	};
	for (const raw of header.toLowerCase().split(",")) {
		const [name, value] = raw.trim().split("=", 2);
		if (name === "no-cache") atMost(0);
		// With the floor, no-store is dropped too: a load that writes no tier would leave the copy
		// too old for the next request, which would load again, and so on per request.
		else if (name === "no-store" && floorMs === 0) opts.noStore = true;
		else if (name === "max-age" && value !== undefined && /^\d{1,9}$/.test(value.trim())) {
			atMost(Number(value.trim()) * 1000);
		}
	}
	return opts;
}

/** The request's Cache-Control as read options, floored unless the caller is privileged. */
export async function cacheOptions(c: Context<AppEnv>): Promise<ReadOptions> {
	const header = c.req.header("cache-control");
	if (!header) return {};
	return readOptionsOf(header, (await privilegedCaller(c)) ? 0 : REVALIDATE_FLOOR_MS);
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
	if (!ifNoneMatch) return false;
	const bare = (t: string) => t.trim().replace(/^W\//, "");
	return ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((t) => bare(t) === bare(etag));
}

/**
 * Answers with a cached body. `visibility` is "private" for authenticated endpoints (shared
 * caches must not keep them) and "public" otherwise. A null body becomes `notFound`.
 */
export function cachedJson(
	c: Context<AppEnv>,
	policy: CachePolicy,
	result: CacheResult,
	visibility: "private" | "public",
	notFound: () => ApiError,
): Response {
	c.header("X-Cache", result.status);
	c.header("X-Cache-Tier", result.tier);
	c.header("Age", String(result.ageS));
	if (result.body === null) throw notFound();
	const maxAge = result.status === "STALE" ? 0 : result.freshForS;
	const extra =
		visibility === "public"
			? `, stale-while-revalidate=${Math.floor(policy.swrMs / 1000)}, stale-if-error=${Math.floor(policy.errorMs / 1000)}`
			: "";
	c.header("Cache-Control", `${visibility}, max-age=${maxAge}${extra}`);
	c.header("ETag", result.etag);
	if (visibility === "private") c.header("Vary", "Authorization", { append: true });
	if (etagMatches(c.req.header("if-none-match"), result.etag)) return c.body(null, 304);
	return c.body(result.body, 200, { "Content-Type": "application/json; charset=UTF-8" });
}

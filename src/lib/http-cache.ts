// HTTP side of the cache: reading a request's Cache-Control into read options, and answering
// with the truthful headers (X-Cache, X-Cache-Tier, Age, ETag, Cache-Control) and 304s.
import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { ApiError } from "../errors";
import type { CachePolicy, CacheResult, ReadOptions } from "./cache";

/** `Cache-Control: no-cache | no-store | max-age=N` from the client, as read options. */
export function readOptionsOf(header: string | undefined): ReadOptions {
	if (!header) return {};
	const opts: ReadOptions = {};
	for (const raw of header.toLowerCase().split(",")) {
		const [name, value] = raw.trim().split("=", 2);
		if (name === "no-cache") opts.noCache = true;
		else if (name === "no-store") opts.noStore = true;
		else if (name === "max-age" && value !== undefined && /^\d{1,9}$/.test(value.trim())) {
			const seconds = Number(value.trim());
			if (seconds === 0) opts.noCache = true;
			else opts.maxAgeMs = seconds * 1000;
		}
	}
	return opts;
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

// GET /api/v1/fast/repositories/{repo_id}/summary and …/by-name/{owner}/{name}/summary.
// Authenticated (checked before any cached byte is served), read through the layered cache.
// By-name requests resolve owner/name → id through a long-lived cached mapping and then share
// the by-id summary entry, so one invalidation by id covers both forms.
import { type Context, Hono } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { CachePolicy } from "../lib/cache";
import { cachedJson, cacheOptions } from "../lib/http-cache";
import type { ApiOperation } from "../lib/openapi";
import { parseInput } from "../lib/validate";
import { requireAuth } from "../middleware/auth";
import { findRepositoryId, getRepositorySummary } from "./repos.queries";
import { RepoIdParams, RepoNameParams, RepositorySummary } from "./repos.schemas";

/**
 * Summary: 5 min fresh (the seed's TTL), 30 min stale-while-revalidate, 1 h stale-if-error.
 * The long SWR window is safe because changes announced by the analysis pipeline invalidate the
 * entry at once (POST /api/v1/events), and a stale answer always triggers its own refresh: only
 * the first read after 5 quiet minutes sees the older copy, and it saves a round trip to Neon.
 */
export const SUMMARY_POLICY: CachePolicy = {
	name: "summary",
	freshMs: 5 * 60_000,
	swrMs: 30 * 60_000,
	errorMs: 60 * 60_000,
	negativeMs: 30_000,
};

/** owner/name → id: changes only on rename or transfer. */
export const REPO_REF_POLICY: CachePolicy = {
	name: "repo-ref",
	freshMs: 60 * 60_000,
	swrMs: 10 * 60_000,
	errorMs: 24 * 60 * 60_000,
	negativeMs: 30_000,
};

const notFound = () => new ApiError("not_found", "repository not found");

async function summaryResponse(c: Context<AppEnv>, id: string): Promise<Response> {
	const deps = c.get("deps");
	const result = await deps.cache.read(
		SUMMARY_POLICY,
		id,
		// deps.db is read inside the loader so that a cache hit never builds a database client.
		async () => {
			const summary = await getRepositorySummary(deps.db, id);
			return summary ? JSON.stringify(summary) : null;
		},
		await cacheOptions(c),
	);
	return cachedJson(c, SUMMARY_POLICY, result, "private", notFound);
}

export const repos = new Hono<AppEnv>()
	.use(requireAuth())
	.get("/:repo_id/summary", (c) => {
		const { repo_id } = parseInput(RepoIdParams, c.req.param(), "path");
		return summaryResponse(c, repo_id.toLowerCase());
	})
	.get("/by-name/:owner/:name/summary", async (c) => {
		const { owner, name } = parseInput(RepoNameParams, c.req.param(), "path");
		const deps = c.get("deps");
		const ref = await deps.cache.read(REPO_REF_POLICY, `${owner}/${name}`.toLowerCase(), async () =>
			findRepositoryId(deps.db, owner, name),
		);
		if (ref.body === null) {
			c.header("X-Cache", ref.status);
			throw notFound();
		}
		return summaryResponse(c, ref.body);
	});

export const reposOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/fast/repositories/{repo_id}/summary",
		summary: "Repository summary by id",
		description:
			"Served from the layered cache (5 min fresh, 30 min stale-while-revalidate, 1 h stale-if-error). Cache-Control: no-cache / max-age=N accept copies up to max(N, 5) s old (to the letter for admin and service tokens); If-None-Match answers 304.",
		tag: "repositories",
		roles: ["user", "admin", "service"],
		pathParams: RepoIdParams,
		response: RepositorySummary,
		cached: true,
	},
	{
		method: "get",
		path: "/api/v1/fast/repositories/by-name/{owner}/{name}/summary",
		summary: "Repository summary by owner/name (case-insensitive)",
		tag: "repositories",
		roles: ["user", "admin", "service"],
		pathParams: RepoNameParams,
		response: RepositorySummary,
		cached: true,
	},
];

// Request and response shapes of the repository summary endpoints (also the OpenAPI source).
import { z } from "zod";

// Any 8-4-4-4-12 hex id: ids are uuids, but not necessarily of an RFC 4122 version.
export const RepoIdParams = z.object({
	repo_id: z.guid({ message: "repo_id must be a UUID such as 550e8400-e29b-41d4-a716-446655440000" }),
});

export const RepoNameParams = z.object({
	owner: z
		.string()
		.regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/, "owner must be 1-39 letters, digits or hyphens"),
	name: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "name must be 1-100 letters, digits, '.', '_' or '-'"),
});

export const RepositorySummary = z.object({
	id: z.string(),
	name: z.string(),
	full_name: z.string(),
	language: z.string().nullable(),
	stars: z.number().int(),
	forks: z.number().int(),
	last_updated: z.string().describe("RFC 3339, UTC"),
	analysis_status: z.enum(["pending", "queued", "analyzing", "completed", "failed"]),
	insight_count: z.number().int(),
	trending_score: z.number(),
});
export type RepositorySummary = z.infer<typeof RepositorySummary>;

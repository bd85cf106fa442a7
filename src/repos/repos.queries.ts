// Origin reads for repositories (drizzle over Neon HTTP: one round trip each).
import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { repositories } from "../db/schema";
import type { RepositorySummary } from "./repos.schemas";

const summaryColumns = {
	id: repositories.id,
	name: repositories.name,
	full_name: repositories.fullName,
	language: repositories.language,
	stars: repositories.stars,
	forks: repositories.forks,
	last_updated: sql<string>`to_char(${repositories.updatedAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
	analysis_status: repositories.analysisStatus,
	insight_count: repositories.insightCount,
	trending_score: sql<number>`round(${repositories.trendingScore}::numeric, 2)::float8`,
};

export async function getRepositorySummary(db: Db, id: string): Promise<RepositorySummary | null> {
	const rows = await db.select(summaryColumns).from(repositories).where(eq(repositories.id, id)).limit(1);
	return rows[0] ?? null;
}

/** owner/name → id, case-insensitively (GitHub names are). */
export async function findRepositoryId(db: Db, owner: string, name: string): Promise<string | null> {
	const rows = await db
		.select({ id: repositories.id })
		.from(repositories)
		.where(sql`lower(${repositories.fullName}) = lower(${`${owner}/${name}`})`)
		.limit(1);
	return rows[0]?.id ?? null;
}

// The Postgres schema: the only source of row types. drizzle-kit generates drizzle/*.sql from it;
// drizzle/0000_extensions.sql (hand-written) creates pg_trgm and the immutable helper that the
// generated search column needs.
import { sql } from "drizzle-orm";
import {
	boolean,
	customType,
	date,
	doublePrecision,
	index,
	integer,
	jsonb,
	pgEnum,
	pgTable,
	primaryKey,
	text,
	timestamp,
	uniqueIndex,
	uuid,
} from "drizzle-orm/pg-core";

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

export const analysisStatus = pgEnum("analysis_status", [
	"pending",
	"queued",
	"analyzing",
	"completed",
	"failed",
]);
export const insightSeverity = pgEnum("insight_severity", ["info", "low", "medium", "high", "critical"]);

// One row per repository. `search` is maintained by Postgres itself: names and topics with the
// 'simple' configuration (identifiers are not English words), the description stemmed as English.
export const repositories = pgTable(
	"repositories",
	{
		id: uuid("id").primaryKey().defaultRandom(),
		owner: text("owner").notNull(),
		name: text("name").notNull(),
		fullName: text("full_name").notNull(),
		description: text("description").notNull().default(""),
		language: text("language"),
		topics: text("topics").array().notNull().default(sql`'{}'::text[]`),
		stars: integer("stars").notNull().default(0),
		forks: integer("forks").notNull().default(0),
		isFork: boolean("is_fork").notNull().default(false),
		createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
		pushedAt: timestamp("pushed_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
		updatedAt: timestamp("updated_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
		analysisStatus: analysisStatus("analysis_status").notNull().default("pending"),
		insightCount: integer("insight_count").notNull().default(0),
		trendingScore: doublePrecision("trending_score").notNull().default(0),
		qualityScore: doublePrecision("quality_score").notNull().default(0),
		search: tsvector("search")
			.notNull()
			.generatedAlwaysAs(
				sql`setweight(to_tsvector('simple'::regconfig, gi_name_words(name)), 'A') || setweight(to_tsvector('simple'::regconfig, gi_name_words(owner)), 'B') || setweight(to_tsvector('simple'::regconfig, gi_topics_text(topics)), 'B') || setweight(to_tsvector('english'::regconfig, description), 'C')`,
			),
	},
	(t) => [
		uniqueIndex("repositories_full_name_lower_idx").on(sql`lower(${t.fullName})`),
		index("repositories_search_idx").using("gin", t.search),
		index("repositories_name_trgm_idx").using("gin", sql`${t.name} gin_trgm_ops`),
		index("repositories_stars_idx").on(t.stars.desc(), t.id),
		index("repositories_language_stars_idx").on(t.language, t.stars.desc()),
		index("repositories_quality_idx").on(t.qualityScore.desc()),
		index("repositories_trending_idx").on(t.trendingScore.desc()),
		index("repositories_updated_idx").on(t.updatedAt.desc()),
		// Search (src/search): the forks sort, and relevance's window over the popular matches (the
		// literal 100 is repeated in search.queries.ts so the planner can prove the predicate).
		index("repositories_forks_idx").on(t.forks.desc(), t.id),
		index("repositories_search_popular_idx").using("gin", t.search).where(sql`${t.stars} >= 100`),
	],
);

// Findings of the analysis pipeline about one repository.
export const insights = pgTable(
	"insights",
	{
		id: uuid("id").primaryKey().defaultRandom(),
		repositoryId: uuid("repository_id")
			.notNull()
			.references(() => repositories.id, { onDelete: "cascade" }),
		kind: text("kind").notNull(),
		severity: insightSeverity("severity").notNull().default("info"),
		title: text("title").notNull(),
		body: text("body").notNull().default(""),
		createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
	},
	(t) => [index("insights_repository_created_idx").on(t.repositoryId, t.createdAt.desc())],
);

// Stars and forks gained per repository per UTC day, kept for a year. Sparse: a day without
// activity has no row. Leaderboards sum these over day/week/month/year windows.
export const repositoryDailyStats = pgTable(
	"repository_daily_stats",
	{
		repositoryId: uuid("repository_id")
			.notNull()
			.references(() => repositories.id, { onDelete: "cascade" }),
		day: date("day", { mode: "string" }).notNull(),
		starsGained: integer("stars_gained").notNull().default(0),
		forksGained: integer("forks_gained").notNull().default(0),
	},
	(t) => [
		primaryKey({ columns: [t.repositoryId, t.day] }),
		index("repository_daily_stats_day_idx").on(t.day, t.repositoryId, t.starsGained, t.forksGained),
	],
);

export type Repository = typeof repositories.$inferSelect;
export type Insight = typeof insights.$inferSelect;
export type RepositoryDailyStat = typeof repositoryDailyStats.$inferSelect;

// Precomputed leaderboards, rewritten by the cron (src/leaderboard/leaderboard.queries.ts): one row
// per category, timeframe and language ('' = all languages) with the top entries, ranked, as the
// API shows them. Requests read one row by primary key instead of ranking per request.
export const leaderboardSnapshots = pgTable(
	"leaderboard_snapshots",
	{
		category: text("category").notNull(),
		timeframe: text("timeframe").notNull(),
		language: text("language").notNull().default(""),
		generatedAt: timestamp("generated_at", { withTimezone: true, mode: "string" }).notNull(),
		entries: jsonb("entries").notNull(),
	},
	(t) => [primaryKey({ columns: [t.category, t.timeframe, t.language] })],
);

export type LeaderboardSnapshot = typeof leaderboardSnapshots.$inferSelect;

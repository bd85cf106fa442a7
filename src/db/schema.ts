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
		// Search (src/search): the forks sort, relevance's window over the popular matches (the
		// literal 100 is repeated in search.queries.ts so the planner can prove the predicate), and
		// the topic: filter.
		index("repositories_forks_idx").on(t.forks.desc(), t.id),
		index("repositories_search_popular_idx").using("gin", t.search).where(sql`${t.stars} >= 100`),
		index("repositories_topics_idx").using("gin", t.topics),
		// Covering b-trees for deep pages in the stars / forks orders (search.queries.ts, COVERED):
		// the head of each order carries what the filter reads, so walking it needs no heap visits.
		// (drizzle has no INCLUDE; as trailing keys the columns never affect the order, id is unique.)
		// A b-tree entry must stay under ~2.7 kB, so rows whose tsvector is larger (none in practice:
		// GitHub caps descriptions and topics) go to the small "oversize" index of the same order.
		index("repositories_stars_cover_idx")
			.on(t.stars.desc(), t.id, t.search, t.language, t.isFork)
			.where(sql`${t.stars} >= 10 AND octet_length(${t.search}::text) <= 1600`),
		index("repositories_stars_oversize_idx")
			.on(t.stars.desc(), t.id)
			.where(sql`${t.stars} >= 10 AND octet_length(${t.search}::text) > 1600`),
		index("repositories_forks_cover_idx")
			.on(t.forks.desc(), t.id, t.search, t.language, t.isFork)
			.where(sql`${t.forks} >= 2 AND octet_length(${t.search}::text) <= 1600`),
		index("repositories_forks_oversize_idx")
			.on(t.forks.desc(), t.id)
			.where(sql`${t.forks} >= 2 AND octet_length(${t.search}::text) > 1600`),
		// The updated_at order has no stable head (a time cutoff would go stale), so its covering
		// b-tree spans the whole table: ~280 MB at 1M repositories (the table is ~460 MB), which buys
		// deep sort=updated pages without ~30-70k random heap reads (README, Performance).
		index("repositories_updated_cover_idx")
			.on(t.updatedAt.desc(), t.id, t.search, t.language, t.isFork)
			.where(sql`octet_length(${t.search}::text) <= 1600`),
		index("repositories_updated_oversize_idx")
			.on(t.updatedAt.desc(), t.id)
			.where(sql`octet_length(${t.search}::text) > 1600`),
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

CREATE TYPE "public"."analysis_status" AS ENUM('pending', 'queued', 'analyzing', 'completed', 'failed');--> statement-breakpoint
CREATE TYPE "public"."insight_severity" AS ENUM('info', 'low', 'medium', 'high', 'critical');--> statement-breakpoint
CREATE TABLE "insights" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"repository_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"severity" "insight_severity" DEFAULT 'info' NOT NULL,
	"title" text NOT NULL,
	"body" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "repositories" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"owner" text NOT NULL,
	"name" text NOT NULL,
	"full_name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"language" text,
	"topics" text[] DEFAULT '{}'::text[] NOT NULL,
	"stars" integer DEFAULT 0 NOT NULL,
	"forks" integer DEFAULT 0 NOT NULL,
	"is_fork" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"pushed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"analysis_status" "analysis_status" DEFAULT 'pending' NOT NULL,
	"insight_count" integer DEFAULT 0 NOT NULL,
	"trending_score" double precision DEFAULT 0 NOT NULL,
	"quality_score" double precision DEFAULT 0 NOT NULL,
	"search" "tsvector" GENERATED ALWAYS AS (setweight(to_tsvector('simple'::regconfig, gi_name_words(name)), 'A') || setweight(to_tsvector('simple'::regconfig, gi_name_words(owner)), 'B') || setweight(to_tsvector('simple'::regconfig, gi_topics_text(topics)), 'B') || setweight(to_tsvector('english'::regconfig, description), 'C')) STORED NOT NULL
);
--> statement-breakpoint
CREATE TABLE "repository_daily_stats" (
	"repository_id" uuid NOT NULL,
	"day" date NOT NULL,
	"stars_gained" integer DEFAULT 0 NOT NULL,
	"forks_gained" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "repository_daily_stats_repository_id_day_pk" PRIMARY KEY("repository_id","day")
);
--> statement-breakpoint
ALTER TABLE "insights" ADD CONSTRAINT "insights_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "repository_daily_stats" ADD CONSTRAINT "repository_daily_stats_repository_id_repositories_id_fk" FOREIGN KEY ("repository_id") REFERENCES "public"."repositories"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "insights_repository_created_idx" ON "insights" USING btree ("repository_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "repositories_full_name_lower_idx" ON "repositories" USING btree (lower("full_name"));--> statement-breakpoint
CREATE INDEX "repositories_search_idx" ON "repositories" USING gin ("search");--> statement-breakpoint
CREATE INDEX "repositories_name_trgm_idx" ON "repositories" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "repositories_stars_idx" ON "repositories" USING btree ("stars" DESC NULLS LAST,"id");--> statement-breakpoint
CREATE INDEX "repositories_language_stars_idx" ON "repositories" USING btree ("language","stars" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "repositories_quality_idx" ON "repositories" USING btree ("quality_score" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "repositories_trending_idx" ON "repositories" USING btree ("trending_score" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "repositories_updated_idx" ON "repositories" USING btree ("updated_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "repository_daily_stats_day_idx" ON "repository_daily_stats" USING btree ("day","repository_id","stars_gained","forks_gained");
CREATE TABLE "leaderboard_snapshots" (
	"category" text NOT NULL,
	"timeframe" text NOT NULL,
	"language" text DEFAULT '' NOT NULL,
	"generated_at" timestamp with time zone NOT NULL,
	"entries" jsonb NOT NULL,
	CONSTRAINT "leaderboard_snapshots_category_timeframe_language_pk" PRIMARY KEY("category","timeframe","language")
);

// Request and response shapes of GET /api/v1/fast/leaderboard (also the OpenAPI source).
// Parameters are case-insensitive and trimmed; unknown parameters are ignored (so they neither
// fail a request nor split its cache entry); a parameter given twice is a 400.
import { z } from "zod";

export const CATEGORIES = ["trending", "popular", "quality"] as const;
export const TIMEFRAMES = ["day", "week", "month", "year"] as const;
export type Category = (typeof CATEGORIES)[number];
export type Timeframe = (typeof TIMEFRAMES)[number];

/** UTC days in each window, ending today inclusive ("day" is today only). */
export const TIMEFRAME_DAYS: Readonly<Record<Timeframe, number>> = { day: 1, week: 7, month: 30, year: 365 };

export const DEFAULT_LIMIT = 50;
/** Entries per ranking: the most a request may ask for, and what a snapshot keeps. */
export const MAX_LIMIT = 100;

/** GitHub linguist names: letters, digits, spaces and + # ' . _ / * ( ) - ("C++", "Ren'Py", "F*"). */
const LANGUAGE_RE = /^[A-Za-z0-9][A-Za-z0-9 +#'._/*()-]{0,49}$/;

function oneOf<const T extends readonly [string, ...string[]]>(name: string, values: T, fallback: T[number]) {
	const error = `${name} must be one of: ${values.join(", ")}`;
	return (
		z
			.string({ error })
			.trim()
			.toLowerCase()
			.pipe(z.enum(values, { error }))
			.default(fallback)
			// The JSON Schema of the input side (a string) would not show the allowed values.
			.meta({ enum: [...values] })
	);
}

const LIMIT_ERROR = `limit must be an integer from 1 to ${MAX_LIMIT}`;
const LANGUAGE_ERROR =
	"language must be a language name of at most 50 letters, digits, spaces and + # ' . _ / * ( ) - (e.g. Python, C++)";

export const LeaderboardQuery = z.object({
	category: oneOf("category", CATEGORIES, "trending").describe(
		"trending: stars gained in the timeframe; popular: stars; quality: quality score",
	),
	timeframe: oneOf("timeframe", TIMEFRAMES, "week").describe(
		"UTC days ending today: day = today, week = 7, month = 30, year = 365",
	),
	// "" (e.g. an "all languages" form option) means no filter.
	language: z
		.string({ error: LANGUAGE_ERROR })
		.trim()
		.refine((v) => v === "" || LANGUAGE_RE.test(v), LANGUAGE_ERROR)
		.transform((v) => v || undefined)
		.optional()
		.describe("a language, case-insensitive (python = Python); empty or absent = all languages"),
	limit: z
		.string({ error: LIMIT_ERROR })
		.trim()
		.regex(/^\d{1,3}$/, LIMIT_ERROR)
		.transform(Number)
		.pipe(z.number().int().min(1, LIMIT_ERROR).max(MAX_LIMIT, LIMIT_ERROR))
		.default(DEFAULT_LIMIT)
		.describe(`entries, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT})`),
});
export type LeaderboardQuery = z.output<typeof LeaderboardQuery>;

export const LeaderboardEntry = z.object({
	rank: z.number().int().describe("1-based"),
	id: z.string(),
	name: z.string(),
	full_name: z.string(),
	language: z.string().nullable(),
	stars: z.number().int(),
	forks: z.number().int(),
	score: z.number().describe("the ranking value: star growth, stars or quality score (0-100)"),
	growth: z
		.object({ stars: z.number().int(), forks: z.number().int() })
		.describe("stars and forks gained within the timeframe"),
});
export type LeaderboardEntry = z.infer<typeof LeaderboardEntry>;

export const LeaderboardResponse = z.object({
	category: z.enum(CATEGORIES),
	timeframe: z.enum(TIMEFRAMES),
	language: z
		.string()
		.nullable()
		.describe("the stored spelling of the requested language; null for all languages"),
	generated_at: z.string().describe("RFC 3339, UTC: when this ranking was computed"),
	entries: z.array(LeaderboardEntry),
});
export type LeaderboardResponse = z.infer<typeof LeaderboardResponse>;

// Request and response shapes of GET /api/v1/fast/search (also the OpenAPI source). The query
// schema validates each parameter (a violation is a 400 naming it and the allowed values), then
// merges q's qualifiers with the explicit parameters into one normalised SearchRequest.
import { z } from "zod";
import { MAX_Q_LENGTH, MAX_STARS, normaliseQ, QueryError, resolveSearch } from "./search.qualifiers";

export const SEARCH_SORTS = ["relevance", "stars", "forks", "updated"] as const;
export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;
/** Deep-paging cap: offset + limit must not exceed this (like GitHub's 1,000-result cap, but 10×). */
export const MAX_WINDOW = 10_000;

const wholeNumber = (name: string, min: number, max: number) => {
	const message = `${name} must be a whole number from ${min} to ${max}`;
	return z
		.string({ error: message })
		.regex(/^\d{1,10}$/, message)
		.refine((s) => Number(s) >= min && Number(s) <= max, message);
};

/** The query parameters as they arrive (also what OpenAPI documents). */
export const SearchQueryParams = z.object({
	q: z
		.string({ error: "q is required: the search words and qualifiers" })
		.trim()
		.min(1, "q is required: the search words and qualifiers")
		.refine((q) => [...q].length <= MAX_Q_LENGTH, `q must be at most ${MAX_Q_LENGTH} characters`)
		// Normalisation can grow q (U+FDFA becomes 18 characters): the bound holds after it too,
		// so a short q cannot become a long tsquery.
		.refine(
			(q) => [...normaliseQ(q)].length <= MAX_Q_LENGTH,
			`q must be at most ${MAX_Q_LENGTH} characters after Unicode NFKC normalisation`,
		)
		.describe(
			'Words (all must match; names/topics verbatim, descriptions stemmed), "phrases", -exclusions and qualifiers: language:go, topic:cli (repeatable), stars:>100 / >=N / <N / <=N / N..M / N..* / *..M, fork:true|false|only. 1-256 characters.',
		),
	language: z
		.string()
		.trim()
		.regex(
			/^[\p{L}\p{N} +#.'*_/-]{1,64}$/u,
			"language must be a language name of at most 64 letters, digits, spaces or + # . ' * _ / -, e.g. Go, C++, C#, Jupyter Notebook",
		)
		.optional()
		.describe(
			"Language filter, case-insensitive, aliases accepted (golang, cpp, csharp, js…); same as language: in q",
		),
	min_stars: wholeNumber("min_stars", 0, MAX_STARS)
		.optional()
		.describe("Minimum stars; intersects a stars: qualifier"),
	sort: z
		.enum(SEARCH_SORTS, { error: `sort must be one of ${SEARCH_SORTS.join(", ")}` })
		.optional()
		.describe("relevance (default), stars, forks or updated; all descending, ties broken by id"),
	limit: wholeNumber("limit", 1, MAX_LIMIT)
		.optional()
		.describe(`Page size, 1-${MAX_LIMIT}, default ${DEFAULT_LIMIT}`),
	offset: wholeNumber("offset", 0, MAX_WINDOW - 1)
		.optional()
		.describe(`Page start, default 0; offset + limit must be at most ${MAX_WINDOW} (the deep-paging cap)`),
});

/** Validated and normalised: the SearchRequest that the SQL and the cache key are built from. */
export const SearchQuery = SearchQueryParams.transform((p, ctx) => {
	const limit = p.limit === undefined ? DEFAULT_LIMIT : Number(p.limit);
	const offset = p.offset === undefined ? 0 : Number(p.offset);
	if (offset + limit > MAX_WINDOW) {
		ctx.addIssue({
			code: "custom",
			path: ["offset"],
			message: `offset + limit must be at most ${MAX_WINDOW} (the deep-paging cap); narrow the query instead`,
		});
		return z.NEVER;
	}
	try {
		return resolveSearch({
			q: p.q,
			language: p.language,
			min_stars: p.min_stars === undefined ? undefined : Number(p.min_stars),
			sort: p.sort ?? "relevance",
			limit,
			offset,
		});
	} catch (err) {
		if (!(err instanceof QueryError)) throw err;
		ctx.addIssue({ code: "custom", path: [err.parameter], message: err.message });
		return z.NEVER;
	}
});

export const StarRange = z.enum(["0-10", "11-100", "101-1000", "1000+"]);
export type StarRange = z.infer<typeof StarRange>;

export const SearchRepository = z.object({
	id: z.string(),
	name: z.string(),
	full_name: z.string(),
	description: z.string(),
	language: z.string().nullable(),
	stars: z.number().int(),
	forks: z.number().int(),
	trending_score: z.number(),
});

export const SearchResponse = z.object({
	total: z.number().int().describe("matches of the whole query (all filters)"),
	total_is_estimate: z
		.literal(true)
		.optional()
		.describe("present when the match set is too large to count per request: total is a sampled estimate"),
	facets_are_estimates: z
		.literal(true)
		.optional()
		.describe("present when some facet counts are sampled estimates (their base set is large)"),
	repositories: z.array(SearchRepository),
	facets: z.object({
		languages: z
			.record(z.string(), z.number().int())
			.describe(
				"matches per language, ignoring the language filter; largest first; no-language repositories omitted",
			),
		star_ranges: z
			.object({
				"0-10": z.number().int(),
				"11-100": z.number().int(),
				"101-1000": z.number().int(),
				"1000+": z.number().int().describe("more than 1000 stars"),
			})
			.describe("matches per star range, ignoring the stars filters (min_stars, stars:)"),
	}),
});
export type SearchResponse = z.infer<typeof SearchResponse>;

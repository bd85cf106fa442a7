// Faceted full-text search over repositories: ONE SQL statement (one Neon HTTP round trip) that
// returns the page, the total and both facets. Everything user-supplied is a bound parameter.
// (Longer than the house ~200 lines: the statement's branches only make sense side by side.)
//
// Matching: each word w becomes (plainto_tsquery('simple', w) || plainto_tsquery('english', w)),
// phrases the same with phraseto_tsquery, all AND-ed: identifiers match the 'simple' name/owner/
// topic lexemes and English words match the stemmed description. The stored `search` column and
// its GIN index answer it. Exclusions are a NOT filter on the rows found; topic: checks `topics`
// exactly (through its own GIN index, or after the words' tsquery, which then also carries the
// topic's lexeme); language, stars and fork are plain column predicates.
//
// Sets: B = text + topic + fork (the facet base), P = B ∧ language ∧ stars (the result set).
// Facets ignore their own filter: languages count B ∧ stars, star ranges count B ∧ language.
//
// Bounded cost. The statement first scans a fixed-size block sample of the table (TABLESAMPLE
// SYSTEM, REPEATABLE so it is the same hot blocks every time, ~sampleRows rows whatever the table
// size), which estimates |B|, |P| and every facet count. Then:
//   mode "b"      B is estimated ≤ exactLimit (or the sample is the whole table): B is scanned
//                 once (≤ exactHardLimit rows) and the total, both facets and the page come
//                 exactly from those rows;
//   mode "p"      B is large but P is estimated ≤ exactLimit: P is scanned exactly (total and page
//                 exact; a facet is exact when its base is P, i.e. its own filter is absent);
//   mode "sample" both are large: total and facets are the sample's counts scaled to the table
//                 (flagged total_is_estimate / facets_are_estimates); the page comes from the
//                 indexes: the sort's covering b-tree walked in order up to the page (partial over
//                 the head of the stars and forks orders, whole-table for updated_at), so deep
//                 pages need no heap visit per skipped row.
// Only the branch a request needs is executed: each lives in a scalar subquery of a CASE, which
// Postgres evaluates lazily.
//
// Sorts (all with a final tie-break on id): stars, forks, updated_at (descending, in index order),
// and relevance = ts_rank_cd (weights: name A 1.0, owner/topics B 0.4, description C 0.2)
// + 0.1 * trigram similarity of the name to the words + 0.01 * log10(1 + stars), then stars, id.
// Relevance ranks every match when P is estimated ≤ rankLimit (modes b and p, whose exact scan
// fetches those rows anyway). Otherwise it ranks a window: the
// relevanceWindow most-starred matches among those with ≥ 100 stars (a partial GIN index keeps
// that cheap for mid-frequency words; the stars index for common ones), then continues with the
// remaining matches by stars — still one fixed total order, so pages never overlap.
import { type SQL, sql } from "drizzle-orm";
import { boundedRead, type Db } from "../db/client";
import type { SearchRequest, SearchSort } from "./search.qualifiers";
import type { SearchResponse, StarRange } from "./search.schemas";

export interface SearchTuning {
	/** Rows the block sample aims at; a table up to this size is sampled whole (exact). */
	sampleRows: number;
	/** Sets estimated at most this large are counted exactly. */
	exactLimit: number;
	/** Result sets estimated at most this large are ranked exactly (relevance). */
	rankLimit: number;
	/** An exact scan stops here (guards against a sampling fluke); the counts are then estimates. */
	exactHardLimit: number;
	/** How many of the most-starred matches relevance re-ranks when the match set is large. */
	relevanceWindow: number;
}

/** Measured on the 1M-repository benchmark (scripts/bench/search.ts). */
export const DEFAULT_TUNING: SearchTuning = {
	sampleRows: 3_000,
	exactLimit: 3_000,
	rankLimit: 1_500,
	exactHardLimit: 20_000,
	relevanceWindow: 500,
};

/** Must equal the predicate of repositories_search_popular_idx (a literal, so the planner can use it). */
const POPULAR = sql.raw("100");

/**
 * Each sort order has a covering b-tree (repositories_{stars,forks,updated}_cover_idx: the sort
 * key, id, search, language, is_fork). For stars and forks it is partial over the head of the
 * order (stars >= 10 / forks >= 2, about a tenth of the table); updated_at has no head that stays
 * put as time passes, so its index covers every row (min: null, no tail). A deep page walks the
 * head index-only (no heap visit per candidate row), merged with the head's rare oversize rows (a
 * tsvector too big for a b-tree entry: repositories_*_oversize_idx), then, if the head runs out,
 * the rest of the order. The literals must equal the indexes' predicates.
 */
const COVERED: Record<"stars" | "forks" | "updated", { column: SQL; min: SQL | null }> = {
	stars: { column: sql.raw("r.stars"), min: sql.raw("10") },
	forks: { column: sql.raw("r.forks"), min: sql.raw("2") },
	updated: { column: sql.raw("r.updated_at"), min: null },
};
const FITS = sql.raw("octet_length(r.search::text) <= 1600");
const OVERSIZE = sql.raw("octet_length(r.search::text) > 1600");
type CoveredSort = keyof typeof COVERED;

const STAR_RANGES: readonly StarRange[] = ["0-10", "11-100", "101-1000", "1000+"];

type Mode = "b" | "p" | "sample";
/** [language, star bucket 0-3, matches the language filter, matches the stars filter, count] */
type CubeRow = [string | null, number, boolean, boolean, number];

interface SearchRow {
	mode: Mode;
	/** Table rows (estimate) and sampled rows. */
	table_rows: number | null;
	seen: number;
	sample: CubeRow[] | null;
	exact: CubeRow[] | null;
	repositories: SearchResponse["repositories"] | null;
}

const and = (parts: SQL[]): SQL => (parts.length ? sql.join(parts, sql` AND `) : sql`TRUE`);

function wordQuery(fn: "plainto_tsquery" | "phraseto_tsquery", text: string): SQL {
	const f = sql.raw(fn);
	return sql`(${f}('simple', ${text}::text) || ${f}('english', ${text}::text))`;
}

/** The tsquery of the positive words and phrases (what relevance ranks), or null. */
function rankQuery(req: SearchRequest): SQL | null {
	const items = [
		...req.text.terms.map((t) => wordQuery("plainto_tsquery", t)),
		...req.text.phrases.map((p) => wordQuery("phraseto_tsquery", p)),
	];
	return items.length ? sql`(${sql.join(items, sql` && `)})` : null;
}

/**
 * The tsquery the GIN index answers, or null: the words and phrases, plus — when there are words —
 * each topic's lexeme (topics are in `search` with the 'simple' configuration), so one GIN scan
 * intersects them instead of AND-ing two large bitmaps.
 */
function matchQuery(req: SearchRequest): SQL | null {
	const rank = rankQuery(req);
	if (!rank) return null;
	const topics = req.topics.map((t) => sql`phraseto_tsquery('simple', ${t}::text)`);
	return topics.length ? sql`(${rank} && ${sql.join(topics, sql` && `)})` : rank;
}

/**
 * B: the text, topic and fork conditions (everything but language and stars). Exclusions are a
 * separate NOT (…) filter: inside the indexed tsquery, GIN would read the excluded word's whole
 * posting list. `indexable: false` writes the match as ts_match_vq(…), the function behind @@ that
 * no index answers: where a selective b-tree filter exists, the planner then walks that index
 * instead of intersecting it with a large GIN bitmap (which it costs far too low).
 */
function baseWhere(req: SearchRequest, indexable = true): SQL {
	const parts: SQL[] = [];
	const match = matchQuery(req);
	if (match) parts.push(indexable ? sql`r.search @@ ${match}` : sql`ts_match_vq(r.search, ${match})`);
	if (req.text.excluded.length) {
		const excluded = req.text.excluded.map((x) =>
			wordQuery(x.includes(" ") ? "phraseto_tsquery" : "plainto_tsquery", x),
		);
		parts.push(sql`NOT ts_match_vq(r.search, ${sql.join(excluded, sql` || `)})`);
	}
	if (req.topics.length) {
		const topics = sql`ARRAY[${sql.join(
			req.topics.map((t) => sql`${t}::text`),
			sql`, `,
		)}]`;
		// Alone, topics use their own GIN index; with words the tsquery narrows already and the
		// exact check is the function form (no second bitmap, no double-counted selectivity).
		parts.push(match ? sql`arraycontains(r.topics, ${topics})` : sql`r.topics @> ${topics}`);
	}
	if (req.fork === "exclude") parts.push(sql`NOT r.is_fork`);
	if (req.fork === "only") parts.push(sql`r.is_fork`);
	return and(parts);
}

function languageWhere(req: SearchRequest): SQL | null {
	if (!req.language) return null;
	return req.language.known
		? sql`r.language = ${req.language.name}::text`
		: sql`lower(r.language) = ${req.language.name}::text`;
}

function starsWhere(req: SearchRequest): SQL | null {
	const parts: SQL[] = [];
	if (req.stars.min !== null) parts.push(sql`r.stars >= ${req.stars.min}::int`);
	if (req.stars.max !== null) parts.push(sql`r.stars <= ${req.stars.max}::int`);
	return parts.length ? and(parts) : null;
}

const BUCKET = sql`CASE WHEN r.stars <= 10 THEN 0 WHEN r.stars <= 100 THEN 1 WHEN r.stars <= 1000 THEN 2 ELSE 3 END`;

/** Relevance of a row of `alias` (which must have search, name and stars). */
function scoreExpr(req: SearchRequest, alias = "r"): SQL {
	const a = sql.raw(alias);
	const rank = rankQuery(req);
	const popularity = sql`0.01 * log(1 + ${a}.stars::float8)`;
	if (!rank) return popularity;
	const words = [...req.text.terms, ...req.text.phrases].join(" ");
	return sql`(ts_rank_cd(${a}.search, ${rank}) + 0.1 * similarity(${a}.name, ${words}::text) + ${popularity})`;
}

/** Sort key columns (of `r` or a CTE row) and their ORDER BY, id last. */
function sortKey(sort: SearchSort): { column: SQL; order: SQL } {
	switch (sort) {
		case "stars":
			return { column: sql`r.stars`, order: sql`k DESC NULLS LAST, id` };
		case "forks":
			return { column: sql`r.forks`, order: sql`k DESC NULLS LAST, id` };
		case "updated":
			return { column: sql`r.updated_at`, order: sql`k DESC NULLS LAST, id` };
		case "relevance":
			return { column: sql`NULL::float8`, order: sql`k DESC, stars DESC, id` };
	}
}

/** The one statement. Exported so the benchmark runs exactly what the Worker runs. */
export function searchSql(req: SearchRequest, tuning: SearchTuning = DEFAULT_TUNING): SQL {
	const B = baseWhere(req);
	const L = languageWhere(req);
	const S = starsWhere(req);
	const P = and([B, ...(L ? [L] : []), ...(S ? [S] : [])]);
	// P with the match hidden from GIN (see baseWhere): for scans that have a selective b-tree.
	const pWalk = and([baseWhere(req, false), ...(L ? [L] : []), ...(S ? [S] : [])]);
	const lOk = L ?? sql`TRUE`;
	const sOk = S ?? sql`TRUE`;
	const limit = sql`${req.limit}::int`;
	const offset = sql`${req.offset}::int`;
	const H = sql`${tuning.exactHardLimit}::int`;
	// Relevance without words is popularity, i.e. the stars order: use its index.
	const sort: SearchSort = req.sort === "relevance" && !rankQuery(req) ? "stars" : req.sort;
	const relevance = sort === "relevance";
	const score = scoreExpr(req);
	const { column, order } = sortKey(sort);
	// Ordinals: position within the page, so the final aggregate keeps the order.
	const ord = sql`row_number() OVER (ORDER BY ${order})`;
	// Mode "p" needs a cheap way to P when B is large (finding P through B's GIN bitmap would
	// cost as much as B): a selective b-tree filter (a known language, a stars range) walked with
	// the match hidden from GIN, or stars >= 100, where the popular partial GIN index answers.
	const popularOnly = (req.stars.min ?? 0) >= 100;
	const narrow: SQL[] = [];
	if (L && req.language?.known) narrow.push(sql`l_all`);
	if (S) narrow.push(popularOnly ? sql`0` : sql`s_all`);
	const hasP = narrow.length > 0;

	// rows_b / rows_p: the exact scans (at most one runs, only when the mode asks for it). For
	// relevance, the score is computed only for rows of P and only when ranking exactly.
	const exactRows = (where: SQL, l: SQL, s: SQL) => sql`
		SELECT r.id, r.language, r.stars, ${BUCKET} AS bucket, (${l}) AS l, (${s}) AS s,
			${relevance ? sql`CASE WHEN (SELECT rank_exact FROM m) AND (${l}) AND (${s}) THEN ${score} END` : column} AS k
		FROM repositories r WHERE ${where} LIMIT ${H} + 1`;
	const cubeOf = (cte: string) => sql`(SELECT json_agg(json_build_array(language, bucket, l, s, n))
		FROM (SELECT language, bucket, l, s, count(*)::int AS n FROM ${sql.raw(cte)} GROUP BY 1, 2, 3, 4) c)`;
	const render = (page: SQL) => sql`(SELECT json_agg(json_build_object(
			'id', r.id, 'name', r.name, 'full_name', r.full_name, 'description', r.description,
			'language', r.language, 'stars', r.stars, 'forks', r.forks,
			'trending_score', round(r.trending_score::numeric, 2)::float8) ORDER BY pg.ord)
		FROM (SELECT * FROM (${page}) p0 LIMIT ${limit}) pg JOIN repositories r ON r.id = pg.id)`;
	const fromRows = (cte: string) =>
		render(sql`SELECT id, ${ord} AS ord FROM (SELECT id, stars, k FROM ${sql.raw(cte)} WHERE l AND s
			ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}) x`);
	const fits = (cte: string) => sql`(SELECT count(*) FROM ${sql.raw(cte)}) <= ${H}`;

	const ctes: SQL[] = [];
	// Positions [from, end) of P in a covered order: the head (index-only) then the tail.
	const covered = (name: string, sortName: CoveredSort, from: SQL, end: SQL, ordBase: number) => {
		const { column, min } = COVERED[sortName];
		const head = sql.raw(name);
		const headCount = sql`(SELECT count(*) FROM ${head})`;
		const inHead = min ? sql` AND ${column} >= ${min}` : sql``;
		const part = (size: SQL) => sql`(SELECT r.id, ${column} AS k FROM repositories r
		WHERE ${P}${inHead} AND ${size} ORDER BY ${column} DESC NULLS LAST, r.id LIMIT ${end})`;
		ctes.push(sql`${head} AS MATERIALIZED (
	SELECT id, k FROM (${part(FITS)} UNION ALL ${part(OVERSIZE)}) u ORDER BY k DESC NULLS LAST, id LIMIT ${end}
)`);
		const headPage = sql`
			SELECT id, ${ordBase} + row_number() OVER (ORDER BY k DESC NULLS LAST, id) AS ord FROM (
				SELECT id, k FROM ${head} ORDER BY k DESC NULLS LAST, id OFFSET ${from}) h`;
		if (!min) return headPage;
		return sql`${headPage}
			UNION ALL
			SELECT id, ${ordBase + 1_000_000} + row_number() OVER (ORDER BY k DESC NULLS LAST, id) FROM (
				SELECT r.id, ${column} AS k FROM repositories r WHERE ${P} AND ${column} < ${min}
				ORDER BY ${column} DESC NULLS LAST, r.id
				OFFSET greatest(0, ${from} - ${headCount})
				LIMIT greatest(0, ${end} - greatest(${from}, ${headCount}))) t`;
	};

	// The page straight from the indexes (modes "sample", or an exact scan that overflowed).
	let direct: SQL;
	if (relevance) {
		// The window's ranked rows first, then P in stars order from position |win| on. A page past
		// the window only needs its size: the one-time filter skips scoring it.
		const winCount = sql`(SELECT count(*) FROM win_ids)`;
		const from = sql`greatest(${offset}, ${winCount})`;
		direct = sql`
		SELECT id, ord FROM (
			SELECT id, ${ord} AS ord FROM (
				SELECT id, stars, k FROM win WHERE ${offset} < ${tuning.relevanceWindow}::int
				ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}) w
			UNION ALL
			${covered("tail_s", "stars", from, sql`${offset} + ${limit}`, 1_000_000)}
		) d`;
	} else if (sort === "updated") {
		// The updated_at cover spans the table, so its walk reads about (offset + limit) / share of
		// P entries. When P is estimated too small for that to pay (deep pages of a mid-frequency
		// word), the plain statement lets the planner fetch P by GIN and sort it, without the
		// per-row size check the covered form needs (~1 µs a row). Same order either way.
		const walk = covered("head_s", sort, offset, sql`${offset} + ${limit}`, 0);
		direct = sql`
		SELECT id, ord FROM (${walk}) d WHERE (SELECT walk FROM m)
		UNION ALL
		SELECT id, ${ord} AS ord FROM (
			SELECT r.id, ${column} AS k FROM repositories r WHERE ${P} AND NOT (SELECT walk FROM m)
			ORDER BY ${column} DESC NULLS LAST, r.id LIMIT ${limit} OFFSET ${offset}) p`;
	} else {
		direct = sql`SELECT id, ord FROM (${covered("head_s", sort, offset, sql`${offset} + ${limit}`, 0)}) d`;
	}

	ctes.unshift(
		sql`stats AS MATERIALIZED (
	SELECT rows, CASE WHEN rows IS NULL THEN 100 ELSE least(100, 100 * ${tuning.sampleRows}::int / greatest(rows, 1)) END AS pct
	FROM (SELECT CASE WHEN c.reltuples > 0 AND c.relpages > 0
		THEN c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::float8) END AS rows
		FROM pg_class c WHERE c.oid = 'repositories'::regclass) t
)`,
		sql`sample AS MATERIALIZED (
	SELECT language, bucket, l, s, count(*)::int AS seen, (count(*) FILTER (WHERE b))::int AS n
	FROM (SELECT r.language, ${BUCKET} AS bucket, (${lOk}) AS l, (${sOk}) AS s, (${B}) AS b
		FROM repositories r TABLESAMPLE SYSTEM ((SELECT pct FROM stats)::float4) REPEATABLE (7)
		OFFSET 0) x
	GROUP BY 1, 2, 3, 4
)`,
		// rank_exact: relevance ranks every match of P — only where an exact scan fetches them anyway.
		sql`m AS MATERIALIZED (
	SELECT rows, seen, mode, mode <> 'sample' AND (pct >= 100 OR p * scale <= ${tuning.rankLimit}::int) AS rank_exact,
		-- Walk a covering index in order rather than fetch P and sort it: entries walked ~ (offset +
		-- limit) * rows / |P|; rows fetched ~ |B| (GIN finds B; the language and stars filters come
		-- after), a fetch costing about 4 walked entries.
		4 * (b * scale) * (p * scale) >= (${offset} + ${limit})::float8 * coalesce(rows, seen) AS walk
	FROM (SELECT est.*, CASE
			WHEN pct >= 100 OR b * scale <= ${tuning.exactLimit}::int THEN 'b'
			${hasP ? sql`WHEN p * scale <= ${tuning.exactLimit}::int AND least(${sql.join(narrow, sql`, `)}) * scale <= ${tuning.exactLimit}::int THEN 'p'` : sql``}
			ELSE 'sample' END AS mode
	FROM (SELECT st.rows, st.pct, e.*,
			CASE WHEN e.seen > 0 AND st.rows IS NOT NULL THEN st.rows / e.seen ELSE 1 END AS scale
		FROM stats st, (SELECT coalesce(sum(seen), 0)::int AS seen, coalesce(sum(n), 0)::int AS b,
			coalesce(sum(n) FILTER (WHERE l AND s), 0)::int AS p,
			coalesce(sum(seen) FILTER (WHERE l), 0)::int AS l_all,
			coalesce(sum(seen) FILTER (WHERE s), 0)::int AS s_all FROM sample) e) est) modes
)`,
		sql`rows_b AS MATERIALIZED (${exactRows(B, lOk, sOk)})`,
	);
	if (hasP)
		ctes.push(sql`rows_p AS MATERIALIZED (${exactRows(popularOnly ? P : pWalk, sql`TRUE`, sql`TRUE`)})`);
	if (relevance) {
		// Ids first (index-only on the covered stars order, or the popular partial GIN), then the
		// score of just those rows.
		ctes.push(sql`win_ids AS MATERIALIZED (
	SELECT r.id FROM repositories r
	WHERE ${req.language?.known ? pWalk : P} AND r.stars >= ${POPULAR}
	ORDER BY r.stars DESC NULLS LAST, r.id LIMIT ${tuning.relevanceWindow}::int
), win AS MATERIALIZED (
	SELECT r.id, r.stars, ${score} AS k FROM win_ids w JOIN repositories r ON r.id = w.id
)`);
	}
	const exactCube = hasP
		? sql`CASE m.mode WHEN 'b' THEN ${cubeOf("rows_b")} WHEN 'p' THEN ${cubeOf("rows_p")} END`
		: sql`CASE m.mode WHEN 'b' THEN ${cubeOf("rows_b")} END`;
	const fromP = hasP ? sql`WHEN m.mode = 'p' AND ${fits("rows_p")} THEN ${fromRows("rows_p")}` : sql``;
	const page = relevance
		? sql`CASE
		WHEN m.rank_exact AND m.mode = 'b' AND ${fits("rows_b")} THEN ${fromRows("rows_b")}
		${hasP ? sql`WHEN m.rank_exact AND m.mode = 'p' AND ${fits("rows_p")} THEN ${fromRows("rows_p")}` : sql``}
		ELSE ${render(direct)} END`
		: sql`CASE
		WHEN m.mode = 'b' AND ${fits("rows_b")} THEN ${fromRows("rows_b")}
		${fromP}
		ELSE ${render(direct)} END`;

	return sql`
WITH ${sql.join(ctes, sql`, `)}
SELECT m.mode, m.rows AS table_rows, m.seen,
	(SELECT json_agg(json_build_array(language, bucket, l, s, n)) FROM sample WHERE n > 0) AS sample,
	${exactCube} AS exact,
	${page} AS repositories
FROM m`;
}

interface Counts {
	total: number;
	languages: Map<string, number>;
	ranges: number[];
}

/** Total and facets from a cube whose rows carry the language/stars filter flags. */
function countsOf(cube: CubeRow[], scale: number): Counts {
	const counts: Counts = { total: 0, languages: new Map(), ranges: [0, 0, 0, 0] };
	for (const [language, bucket, l, s, n] of cube) {
		if (l && s) counts.total += n;
		if (s && language !== null) counts.languages.set(language, (counts.languages.get(language) ?? 0) + n);
		if (l) counts.ranges[bucket] = (counts.ranges[bucket] ?? 0) + n;
	}
	const round = (x: number) => Math.round(x * scale);
	counts.total = round(counts.total);
	for (const [k, v] of counts.languages) counts.languages.set(k, round(v));
	counts.ranges = counts.ranges.map(round);
	return counts;
}

function facetsOf(languages: Map<string, number>, ranges: number[]): SearchResponse["facets"] {
	const sorted = [...languages.entries()]
		.filter(([, n]) => n > 0)
		.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
	return {
		languages: Object.fromEntries(sorted),
		star_ranges: {
			"0-10": ranges[0] ?? 0,
			"11-100": ranges[1] ?? 0,
			"101-1000": ranges[2] ?? 0,
			"1000+": ranges[3] ?? 0,
		},
	};
}

/** Turns the statement's row into the response (see the header for the modes). */
export function assembleResponse(
	req: SearchRequest,
	row: SearchRow,
	tuning: SearchTuning = DEFAULT_TUNING,
): SearchResponse {
	const repositories = row.repositories ?? [];
	const sample = row.sample ?? [];
	const exactCube = row.exact ?? [];
	const exactRows = exactCube.reduce((sum, c) => sum + c[4], 0);
	const exactOk = (row.mode === "b" || row.mode === "p") && exactRows <= tuning.exactHardLimit;
	const scale = row.table_rows !== null && row.seen > 0 ? row.table_rows / row.seen : 1;
	const estimated = countsOf(sample, scale);

	let counts: Counts;
	let totalEstimated = false;
	let facetsEstimated = false;
	if (row.mode === "b" && exactOk) {
		counts = countsOf(exactCube, 1);
	} else if (row.mode === "p" && exactOk) {
		// Exact P: the total; a facet too when its base is P (its own filter is absent).
		const exact = countsOf(exactCube, 1);
		const languagesExact = !req.language;
		const rangesExact = req.stars.min === null && req.stars.max === null;
		counts = {
			total: exact.total,
			languages: languagesExact ? exact.languages : estimated.languages,
			ranges: rangesExact ? exact.ranges : estimated.ranges,
		};
		facetsEstimated = !languagesExact || !rangesExact;
	} else {
		counts = estimated;
		totalEstimated = true;
		facetsEstimated = true;
	}
	// An estimate never contradicts the page it comes with.
	const total = totalEstimated ? Math.max(counts.total, req.offset + repositories.length) : counts.total;
	return {
		total,
		...(totalEstimated ? { total_is_estimate: true } : {}),
		...(facetsEstimated ? { facets_are_estimates: true } : {}),
		repositories,
		facets: facetsOf(counts.languages, counts.ranges),
	};
}

export async function searchRepositories(
	db: Db,
	req: SearchRequest,
	statementTimeoutMs: number,
	tuning: SearchTuning = DEFAULT_TUNING,
): Promise<SearchResponse> {
	const result = await boundedRead(db, searchSql(req, tuning), statementTimeoutMs);
	const row = result.rows[0] as unknown as SearchRow | undefined;
	if (!row) throw new Error("search statement returned no row");
	return assembleResponse(req, row, tuning);
}

export { STAR_RANGES };

// GET /api/v1/fast/search through the real Worker against the seeded repositories: the payload,
// total and facets against independent SQL counts, facets ignoring their own filter, every sort,
// paging, qualifiers = parameters, canonical cache keys, every bad input; and the statement's
// large-set modes (exact scan of B or P, sampled estimates, the relevance window) by running
// searchRepositories directly with small tuning thresholds.
import { env } from "cloudflare:workers";
import { type SQL, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import { resolveSearch } from "../src/search/search.qualifiers";
import { DEFAULT_TUNING, type SearchTuning, searchRepositories } from "../src/search/search.queries";
import type { SearchResponse } from "../src/search/search.schemas";
import { call, errorBody } from "./helpers";

const BASE = "/api/v1/fast/search";
const db = createDb(env);
const NO_CACHE = { "cache-control": "no-cache" };

/** The seed's words: a common one, one matching a few dozen repositories, and the busiest language. */
let common: string;
let few: string;
let topLanguage: string;
let starsCut: number;

const match = (w: string) =>
	sql`search @@ (plainto_tsquery('simple', ${w}::text) || plainto_tsquery('english', ${w}::text))`;

async function rows<T>(q: SQL): Promise<T[]> {
	return (await db.execute<Record<string, unknown>>(q)).rows as T[];
}

interface Truth {
	total: number;
	languages: Record<string, number>;
	star_ranges: Record<string, number>;
}

/** Total of P, languages over `langBase`, star ranges over `starBase`: plain COUNT / GROUP BY. */
async function truth(p: SQL, langBase: SQL, starBase: SQL): Promise<Truth> {
	const [total] = await rows<{ n: number }>(sql`SELECT count(*)::int AS n FROM repositories WHERE ${p}`);
	const langs = await rows<{ language: string; n: number }>(
		sql`SELECT language, count(*)::int AS n FROM repositories WHERE ${langBase} AND language IS NOT NULL GROUP BY 1`,
	);
	const ranges = await rows<{ r: string; n: number }>(sql`
		SELECT CASE WHEN stars <= 10 THEN '0-10' WHEN stars <= 100 THEN '11-100'
			WHEN stars <= 1000 THEN '101-1000' ELSE '1000+' END AS r, count(*)::int AS n
		FROM repositories WHERE ${starBase} GROUP BY 1`);
	const star_ranges: Record<string, number> = { "0-10": 0, "11-100": 0, "101-1000": 0, "1000+": 0 };
	for (const r of ranges) star_ranges[r.r] = r.n;
	return {
		total: total?.n ?? 0,
		languages: Object.fromEntries(langs.map((l) => [l.language, l.n])),
		star_ranges,
	};
}

async function search(query: string, headers: Record<string, string> = {}) {
	const res = await call(`${BASE}?${query}`, { headers });
	return res;
}

async function body(query: string, headers: Record<string, string> = NO_CACHE): Promise<SearchResponse> {
	const res = await search(query, headers);
	expect(res.status, await res.clone().text()).toBe(200);
	return (await res.json()) as SearchResponse;
}

const qs = (params: Record<string, string | number>) =>
	new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();

beforeAll(async () => {
	const words = await rows<{ word: string; ndoc: number }>(sql`
		SELECT word, ndoc FROM ts_stat('SELECT search FROM repositories')
		WHERE word ~ '^[a-z]{4,}$' ORDER BY ndoc DESC, word`);
	// Plain words whose stem is themselves, so the app's query and the count agree by construction.
	const pick = (lo: number, hi: number) => {
		const w = words.find((x) => x.ndoc >= lo && x.ndoc <= hi);
		if (!w) throw new Error(`no seed word with ${lo}-${hi} repositories`);
		return w.word;
	};
	common = pick(60, 300);
	few = pick(15, 60);
	const [lang] = await rows<{ language: string }>(sql`
		SELECT language FROM repositories WHERE ${match(common)} AND language IS NOT NULL
		GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`);
	topLanguage = lang?.language ?? "JavaScript";
	const [cut] = await rows<{ s: number }>(sql`
		SELECT percentile_disc(0.7) WITHIN GROUP (ORDER BY stars) AS s FROM repositories WHERE ${match(common)}`);
	starsCut = Math.max(1, cut?.s ?? 1);
});

/** The word in the most repositories' search vectors (three letters or more). */
async function mostCommonWord(): Promise<string> {
	const [top] = await rows<{ word: string }>(sql`
		SELECT word FROM ts_stat('SELECT search FROM repositories') WHERE word ~ '^[a-z]{3,}$'
		ORDER BY ndoc DESC, word LIMIT 1`);
	return top?.word ?? common;
}
describe("search payload", () => {
	it("has the seed's shape", async () => {
		const b = await body(qs({ q: common, limit: 5 }));
		expect(Object.keys(b).sort()).toEqual(["facets", "repositories", "total"]);
		expect(b.repositories).toHaveLength(5);
		for (const r of b.repositories) {
			expect(Object.keys(r)).toEqual([
				"id",
				"name",
				"full_name",
				"description",
				"language",
				"stars",
				"forks",
				"trending_score",
			]);
			expect(r.full_name.endsWith(`/${r.name}`)).toBe(true);
			expect(Number.isInteger(r.stars) && Number.isInteger(r.forks)).toBe(true);
			expect(typeof r.trending_score).toBe("number");
		}
		expect(Object.keys(b.facets.star_ranges)).toEqual(["0-10", "11-100", "101-1000", "1000+"]);
		const counts = Object.values(b.facets.languages);
		expect(counts).toEqual([...counts].sort((x, y) => y - x));
	});

	it("counts total and facets over the whole match set, equal to plain SQL counts", async () => {
		const b = await body(qs({ q: common, limit: 3 }));
		const t = await truth(match(common), match(common), match(common));
		expect(t.total).toBeGreaterThan(3);
		expect(b.total).toBe(t.total);
		expect(b.facets.languages).toEqual(t.languages);
		expect(b.facets.star_ranges).toEqual(t.star_ranges);
	});

	it("makes each facet ignore its own filter (and only its own)", async () => {
		const L = sql`language = ${topLanguage}`;
		const S = sql`stars >= ${starsCut}`;
		const m = match(common);
		const both = await body(qs({ q: common, language: topLanguage, min_stars: starsCut, limit: 1 }));
		const t = await truth(sql`${m} AND ${L} AND ${S}`, sql`${m} AND ${S}`, sql`${m} AND ${L}`);
		expect(both.total).toBe(t.total);
		expect(both.facets).toEqual({ languages: t.languages, star_ranges: t.star_ranges });
		// The language facet offers the other languages; the stars facet the other ranges.
		expect(Object.keys(both.facets.languages).length).toBeGreaterThan(1);
		const unfiltered = await body(qs({ q: common, limit: 1 }));
		expect(both.facets.star_ranges["0-10"]).toBeLessThanOrEqual(unfiltered.facets.star_ranges["0-10"]);
		const langOnly = await body(qs({ q: common, language: topLanguage, limit: 1 }));
		expect(langOnly.facets.languages).toEqual(unfiltered.facets.languages);
		const starsOnly = await body(qs({ q: common, min_stars: starsCut, limit: 1 }));
		expect(starsOnly.facets.star_ranges).toEqual(unfiltered.facets.star_ranges);
	});

	it("answers a query that matches nothing with total 0 and empty facets", async () => {
		const b = await body(qs({ q: "zzqxjv-nothing-matches-this" }));
		expect(b).toEqual({
			total: 0,
			repositories: [],
			facets: { languages: {}, star_ranges: { "0-10": 0, "11-100": 0, "101-1000": 0, "1000+": 0 } },
		});
	});
});

describe("search sorts and paging", () => {
	async function ids(query: SQL): Promise<string[]> {
		return (await rows<{ id: string }>(query)).map((r) => r.id);
	}

	it.each([
		["stars", sql`stars DESC, id`],
		["forks", sql`forks DESC, id`],
		["updated", sql`updated_at DESC, id`],
	])("sort=%s orders by it, descending, ties by id", async (sort, order) => {
		const b = await body(qs({ q: common, sort, limit: 100 }));
		const expected = await ids(
			sql`SELECT id FROM repositories WHERE ${match(common)} ORDER BY ${order} LIMIT 100`,
		);
		expect(b.repositories.map((r) => r.id)).toEqual(expected);
	});

	it("sort=relevance (the default) orders by text rank, name similarity and popularity, then stars and id", async () => {
		const b = await body(qs({ q: common, limit: 100 }));
		const expected = await ids(sql`
			SELECT id FROM repositories WHERE ${match(common)}
			ORDER BY ts_rank_cd(search, plainto_tsquery('simple', ${common}::text) || plainto_tsquery('english', ${common}::text))
				+ 0.1 * similarity(name, ${common}::text) + 0.01 * log(1 + stars::float8) DESC, stars DESC, id
			LIMIT 100`);
		expect(b.repositories.map((r) => r.id)).toEqual(expected);
	});

	it.each(["relevance", "stars"])(
		"pages with limit/offset without overlap or gaps, stably (sort=%s)",
		async (sort) => {
			const all = await body(qs({ q: few, sort, limit: 100 }));
			expect(all.total).toBe(all.repositories.length);
			const pages: string[] = [];
			for (let offset = 0; offset < all.total; offset += 7) {
				const page = await body(qs({ q: few, sort, limit: 7, offset }));
				expect(page.total).toBe(all.total);
				pages.push(...page.repositories.map((r) => r.id));
			}
			expect(pages).toEqual(all.repositories.map((r) => r.id));
			expect(new Set(pages).size).toBe(pages.length);
			const again = await body(qs({ q: few, sort, limit: 7, offset: 7 }));
			expect(again.repositories.map((r) => r.id)).toEqual(pages.slice(7, 14));
			expect((await body(qs({ q: few, sort, offset: all.total }))).repositories).toEqual([]);
		},
	);
});

describe("search qualifiers", () => {
	it("equal the explicit parameters (same body, both from the origin)", async () => {
		const cases: [string, Record<string, string | number>][] = [
			[
				`${common} language:${topLanguage.toLowerCase().replaceAll(" ", "-")}`,
				{ q: common, language: topLanguage },
			],
			[`${common} stars:>=${starsCut}`, { q: common, min_stars: starsCut }],
			[`stars:>${starsCut - 1} ${common}`, { q: common, min_stars: starsCut }],
		];
		for (const [q, params] of cases) {
			const viaQualifier = await body(qs({ q }));
			const viaParams = await body(qs(params));
			expect(viaQualifier).toEqual(viaParams);
			expect(viaQualifier.total).toBeGreaterThan(0);
		}
	});

	it("filter by topic (all of them), stars ranges and forks", async () => {
		const [topic] = await rows<{ t: string }>(sql`
			SELECT t FROM repositories, unnest(topics) t WHERE t ~ '^[a-z0-9-]+$' GROUP BY t ORDER BY count(*) DESC, t LIMIT 1`);
		const t = topic?.t ?? "cli";
		const check = async (q: string, where: SQL) => {
			const b = await body(qs({ q, limit: 100, sort: "stars" }));
			const expected = await truth(where, where, where);
			expect(b.total, q).toBe(expected.total);
			const got = await rows<{ id: string }>(
				sql`SELECT id FROM repositories WHERE ${where} ORDER BY stars DESC, id LIMIT 100`,
			);
			expect(b.repositories.map((r) => r.id)).toEqual(got.map((r) => r.id));
			return b;
		};
		expect((await check(`topic:${t}`, sql`topics @> ARRAY[${t}::text]`)).total).toBeGreaterThan(0);
		await check(`topic:${t} stars:10..500`, sql`topics @> ARRAY[${t}::text] AND stars BETWEEN 10 AND 500`);
		await check(`${common} fork:only`, sql`${match(common)} AND is_fork`);
		await check(`${common} fork:false stars:<5`, sql`${match(common)} AND NOT is_fork AND stars < 5`);
		await check(`${common} -${few}`, sql`${match(common)} AND NOT ${match(few)}`);
		await check(`language:${topLanguage.replaceAll(" ", "-")}`, sql`language = ${topLanguage}`);
		await check(`${common} ${few}`, sql`${match(common)} AND ${match(few)}`);
		await check(`${common} topic:${t}`, sql`${match(common)} AND topics @> ARRAY[${t}::text]`);
		await check(
			`${few} -${common} topic:${t}`,
			sql`${match(few)} AND NOT ${match(common)} AND ${t} = ANY(topics)`,
		);
		// A phrase: two adjacent words of a real description.
		const [d] = await rows<{ p: string }>(sql`
			SELECT lower(split_part(description, ' ', 1) || ' ' || split_part(description, ' ', 2)) AS p
			FROM repositories WHERE description ~ '^[A-Za-z]{4,} [A-Za-z]{4,} ' ORDER BY id LIMIT 1`);
		const phrase = d?.p ?? "open source";
		const phraseMatch = sql`search @@ (phraseto_tsquery('simple', ${phrase}::text) || phraseto_tsquery('english', ${phrase}::text))`;
		expect((await check(`"${phrase}"`, phraseMatch)).total).toBeGreaterThan(0);
	});

	it("accepts language aliases and encoded symbols", async () => {
		const a = await body(qs({ q: `${common} language:cpp` }));
		const b = await body(`q=${common}&language=C%2B%2B`);
		expect(a).toEqual(b);
		const c = await body(qs({ q: `${common} language:csharp` }));
		expect(c).toEqual(await body(`q=${common}&language=c%23`));
	});
});

describe("search cache", () => {
	it("misses, then hits, with public Cache-Control, ETag and 304", async () => {
		const query = qs({ q: `${few} ${common}` });
		const first = await search(query);
		expect(first.status).toBe(200);
		expect(first.headers.get("x-cache")).toBe("MISS");
		expect(first.headers.get("cache-control")).toBe(
			"public, max-age=120, stale-while-revalidate=60, stale-if-error=1800",
		);
		const second = await search(query);
		expect(second.headers.get("x-cache")).toBe("HIT");
		expect(await second.text()).toBe(await first.text());
		const etag = first.headers.get("etag") ?? "";
		expect((await search(query, { "if-none-match": etag })).status).toBe(304);
	});

	it("shares one entry between equivalent requests (order, case, spacing, aliases, defaults)", async () => {
		const first = await search(`q=${few}%20language:GO&min_stars=2`);
		expect(first.headers.get("x-cache")).toBe("MISS");
		for (const equivalent of [
			`min_stars=2&language=golang&q=%20%20${few.toUpperCase()}%20&sort=relevance&limit=20&offset=0`,
			`q=${few}+stars:%3E%3D2+language:go&limit=20`,
			`offset=0&q=language:Go%20${few}%20fork:true&min_stars=2`,
		]) {
			const res = await search(equivalent);
			expect(res.status).toBe(200);
			expect(res.headers.get("x-cache"), equivalent).toBe("HIT");
		}
		const different = await search(`q=${few}%20language:GO&min_stars=3`);
		expect(different.headers.get("x-cache")).toBe("MISS");
	});

	it("stores long queries under a hashed key and still hits", async () => {
		const long = Array.from({ length: 14 }, (_, i) => `${common}${"x".repeat(i)}`).join(" ");
		expect((await search(qs({ q: long }))).headers.get("x-cache")).toBe("MISS");
		expect((await search(qs({ q: long.toUpperCase() }))).headers.get("x-cache")).toBe("HIT");
	});
});

describe("search bad input", () => {
	it.each([
		["missing q", "", "q"],
		["empty q", "q=", "q"],
		["blank q", "q=%20%20%20", "q"],
		["q too long", `q=${"a".repeat(257)}`, "q"],
		["q of only exclusions", "q=-vue", "q"],
		["q of only control characters", "q=%00%01", "q"],
		["too many words", `q=${Array.from({ length: 17 }, (_, i) => `w${i}`).join("+")}`, "q"],
		["a bad stars qualifier", "q=api+stars:lots", "q"],
		["two languages in q", "q=api+language:go+language:rust", "q"],
		["a bad topic", "q=topic:Bad_Topic!", "q"],
		["a bad fork value", "q=api+fork:maybe", "q"],
		["conflicting language", "q=api+language:go&language=rust", "language"],
		["an odd language", "language=go;drop&q=api", "language"],
		["an empty language", "language=&q=api", "language"],
		["limit 0", "q=api&limit=0", "limit"],
		["limit 101", "q=api&limit=101", "limit"],
		["limit abc", "q=api&limit=abc", "limit"],
		["limit -1", "q=api&limit=-1", "limit"],
		["limit 1.5", "q=api&limit=1.5", "limit"],
		["limit empty", "q=api&limit=", "limit"],
		["negative offset", "q=api&offset=-1", "offset"],
		["offset beyond the cap", "q=api&offset=10000", "offset"],
		["offset + limit beyond the cap", "q=api&offset=9990&limit=20", "offset"],
		["a huge offset", "q=api&offset=99999999999999", "offset"],
		["negative min_stars", "q=api&min_stars=-5", "min_stars"],
		["non-numeric min_stars", "q=api&min_stars=lots", "min_stars"],
		["min_stars beyond int", "q=api&min_stars=2147483648", "min_stars"],
		["unknown sort", "q=api&sort=popularity", "sort"],
		["upper-case sort", "q=api&sort=STARS", "sort"],
	])("answers 400 naming the parameter for %s", async (_name, query, parameter) => {
		const res = await search(query);
		expect(res.status).toBe(400);
		const err = await errorBody(res);
		expect(err.code).toBe("invalid_parameter");
		expect(err.details?.map((d) => d.parameter)).toContain(parameter);
		expect(err.message).toContain(parameter);
		expect(res.headers.get("x-cache")).toBeNull();
	});

	it("names the allowed values", async () => {
		const detail = async (query: string) =>
			(await errorBody(await search(query))).details?.[0]?.message ?? "";
		expect(await detail("q=api&limit=0")).toContain("1 to 100");
		expect(await detail("q=api&sort=x")).toContain("relevance, stars, forks, updated");
		expect(await detail("q=api&offset=9990&limit=20")).toContain("10000");
		expect(await detail("q=api&min_stars=x")).toContain("0 to 2147483647");
		expect(await detail("q=api+stars:x")).toContain("N..M");
	});

	it.each([
		"日本語",
		"😀🚀",
		"naïve café",
		"'; DROP TABLE repositories; --",
		"1' OR '1'='1",
		"a:b:c",
		"\\",
		"%",
		"_",
		"*",
		"&|!():*<->",
		"'quoted' \"unterminated",
		"$1 $2",
		"null",
		"\u0007bell\u202Eevil",
		"ﬀ ＡＰＩ",
		"é".repeat(256),
		"a".repeat(256),
		"-- -x a",
		"stars:1..0 api",
	])("never answers 5xx for q=%s", async (q) => {
		const res = await search(qs({ q }), NO_CACHE);
		expect(res.status).toBeLessThan(500);
		if (res.status === 200) {
			const b = (await res.json()) as SearchResponse;
			expect(b.total).toBeGreaterThanOrEqual(b.repositories.length);
		}
	});

	it("handles a NUL byte inside q", async () => {
		const res = await search("q=api%00web", NO_CACHE);
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual(await body("q=api%20web"));
	});
});

describe("search at scale: the statement's modes", () => {
	const run = (q: string, extra: Record<string, unknown>, tuning: Partial<SearchTuning>) =>
		searchRepositories(db, resolveSearch({ q, sort: "relevance", limit: 100, offset: 0, ...extra }), 3000, {
			...DEFAULT_TUNING,
			...tuning,
		});

	it("counts B exactly when it is estimated small (mode b), with the same page", async () => {
		const small = { sampleRows: 100, exactLimit: 1000 };
		const t = await truth(match(common), match(common), match(common));
		for (const sort of ["relevance", "stars", "updated"]) {
			const b = await run(common, { sort }, small);
			const full = await run(common, { sort }, {});
			expect(b).toEqual(full);
			expect(b.total).toBe(t.total);
		}
	});

	it("counts P exactly when B is large but P small (mode p): exact total, the other facet estimated", async () => {
		const r = await run(
			`language:${topLanguage.replaceAll(" ", "-")}`,
			{ sort: "stars" },
			{
				sampleRows: 100,
				exactLimit: 150,
			},
		);
		const L = sql`language = ${topLanguage}`;
		const t = await truth(L, sql`TRUE`, L);
		expect(r.total).toBe(t.total);
		expect(r.total_is_estimate).toBeUndefined();
		expect(r.facets_are_estimates).toBe(true);
		expect(r.facets.star_ranges).toEqual(t.star_ranges);
		const expected = await rows<{ id: string }>(
			sql`SELECT id FROM repositories WHERE ${L} ORDER BY stars DESC, id LIMIT 100`,
		);
		expect(r.repositories.map((x) => x.id)).toEqual(expected.map((x) => x.id));
	});

	it("counts P exactly through the popular index for stars >= 100 (mode p)", async () => {
		const word = await mostCommonWord();
		const P = sql`${match(word)} AND stars >= 100`;
		const t = await truth(P, P, match(word));
		const r = await run(`${word} stars:>=100`, { sort: "stars" }, { sampleRows: 200, exactLimit: 40 });
		expect(t.total).toBeGreaterThan(0);
		expect(r.total).toBe(t.total);
		expect(r.total_is_estimate).toBeUndefined();
		expect(r.facets.languages).toEqual(t.languages);
		const expected = await rows<{ id: string }>(
			sql`SELECT id FROM repositories WHERE ${P} ORDER BY stars DESC, id LIMIT 100`,
		);
		expect(r.repositories.map((x) => x.id)).toEqual(expected.map((x) => x.id));
	});

	it("estimates from the sample above the cap, flagged, and never below the page", async () => {
		const word = await mostCommonWord();
		const r = await run(word, { sort: "stars" }, { sampleRows: 200, exactLimit: 10 });
		const t = await truth(match(word), match(word), match(word));
		expect(r.total_is_estimate).toBe(true);
		expect(r.facets_are_estimates).toBe(true);
		expect(r.total).toBeGreaterThanOrEqual(r.repositories.length);
		expect(r.total).toBeGreaterThan(t.total / 3);
		expect(r.total).toBeLessThan(t.total * 3);
		const ranges = Object.values(r.facets.star_ranges).reduce((a, b) => a + b, 0);
		expect(ranges).toBeGreaterThan(0);
		const expected = await rows<{ id: string }>(
			sql`SELECT id FROM repositories WHERE ${match(word)} ORDER BY stars DESC, id LIMIT 100`,
		);
		expect(r.repositories.map((x) => x.id)).toEqual(expected.map((x) => x.id));
	});

	it("pages the stars and forks orders across the covered head and the rest, exactly", async () => {
		const word = await mostCommonWord();
		for (const [sort, column, min] of [
			["stars", sql`stars`, 10],
			["forks", sql`forks`, 2],
		] as const) {
			const [head] = await rows<{ n: number }>(
				sql`SELECT count(*)::int AS n FROM repositories WHERE ${match(word)} AND ${column} >= ${min}`,
			);
			const n = head?.n ?? 0;
			expect(n).toBeGreaterThan(5);
			// Pages inside the head, across its end, and past it.
			for (const offset of [0, Math.max(0, n - 7), n + 3]) {
				const r = await run(word, { sort, limit: 15, offset }, { sampleRows: 200, exactLimit: 10 });
				expect(r.total_is_estimate).toBe(true);
				const expected = await rows<{ id: string }>(sql`
					SELECT id FROM repositories WHERE ${match(word)} ORDER BY ${column} DESC, id OFFSET ${offset} LIMIT 15`);
				expect(
					r.repositories.map((x) => x.id),
					`${sort} offset ${offset}`,
				).toEqual(expected.map((x) => x.id));
			}
		}
	});

	it("pages the updated order exactly, walking its covering index or sorting the matches", async () => {
		const word = await mostCommonWord();
		// A word in ~4% of rows: too few matches for deep pages to walk the index (the plain form).
		const [mid] = await rows<{ word: string }>(sql`
			SELECT word FROM ts_stat('SELECT search FROM repositories') WHERE word ~ '^[a-z]{3,}$' AND ndoc > 30
			ORDER BY abs(ndoc - 0.04 * (SELECT count(*) FROM repositories)), word LIMIT 1`);
		const rarer = mid?.word ?? common;
		for (const [q, where] of [
			[word, match(word)],
			[`${word} fork:false`, sql`${match(word)} AND NOT is_fork`],
			[rarer, match(rarer)],
		] as const) {
			const [all] = await rows<{ n: number }>(
				sql`SELECT count(*)::int AS n FROM repositories WHERE ${where}`,
			);
			const n = all?.n ?? 0;
			expect(n).toBeGreaterThan(20);
			for (const offset of [0, Math.floor(n / 2), n - 7]) {
				const r = await run(q, { sort: "updated", limit: 15, offset }, { sampleRows: 200, exactLimit: 10 });
				expect(r.total_is_estimate).toBe(true);
				const expected = await rows<{ id: string }>(sql`
					SELECT id FROM repositories WHERE ${where} ORDER BY updated_at DESC, id OFFSET ${offset} LIMIT 15`);
				expect(
					r.repositories.map((x) => x.id),
					`${q} offset ${offset}`,
				).toEqual(expected.map((x) => x.id));
			}
		}
	});

	it("ranks a window of the most-starred popular matches, then continues by stars (a total order)", async () => {
		const word = await mostCommonWord();
		const tuning = { sampleRows: 200, exactLimit: 10, rankLimit: 10, relevanceWindow: 4 };
		const score = sql`ts_rank_cd(search, plainto_tsquery('simple', ${word}::text) || plainto_tsquery('english', ${word}::text))
			+ 0.1 * similarity(name, ${word}::text) + 0.01 * log(1 + stars::float8)`;
		const win = await rows<{ id: string }>(sql`
			SELECT id FROM (SELECT id, stars, search, name FROM repositories WHERE ${match(word)} AND stars >= 100
				ORDER BY stars DESC, id LIMIT 4) w ORDER BY ${score} DESC, stars DESC, id`);
		expect(win.length).toBeGreaterThan(1);
		const tail = await rows<{ id: string }>(sql`
			SELECT id FROM repositories WHERE ${match(word)} ORDER BY stars DESC, id OFFSET ${win.length} LIMIT 30`);
		const expected = [...win, ...tail].map((x) => x.id);
		const page = await run(word, { limit: 20 }, tuning);
		expect(page.repositories.map((x) => x.id)).toEqual(expected.slice(0, 20));
		const across = await run(word, { limit: 5, offset: 2 }, tuning);
		expect(across.repositories.map((x) => x.id)).toEqual(expected.slice(2, 7));
		const beyond = await run(word, { limit: 5, offset: 6 }, tuning);
		expect(beyond.repositories.map((x) => x.id)).toEqual(expected.slice(6, 11));
	});
});

// Unit tests of the pure search-request layer: q's qualifiers, normalisation, merging with the
// explicit parameters, and the canonical key.
import { describe, expect, it } from "vitest";
import {
	canonicalLanguage,
	type ExplicitParams,
	intersectStars,
	normaliseQ,
	parseQ,
	parseStars,
	QueryError,
	resolveSearch,
	searchKey,
	tokenize,
} from "../src/search/search.qualifiers";

const base: ExplicitParams = { q: "", sort: "relevance", limit: 20, offset: 0 };
const resolve = (q: string, extra: Partial<ExplicitParams> = {}) => resolveSearch({ ...base, q, ...extra });
const key = (q: string, extra: Partial<ExplicitParams> = {}) => searchKey(resolve(q, extra));

function queryError(f: () => unknown): QueryError {
	try {
		f();
	} catch (err) {
		if (err instanceof QueryError) return err;
		throw err;
	}
	throw new Error("expected a QueryError");
}

describe("canonicalLanguage", () => {
	it.each([
		["go", "Go"],
		["GOLANG", "Go"],
		["c++", "C++"],
		["cpp", "C++"],
		["c#", "C#"],
		["CSharp", "C#"],
		["js", "JavaScript"],
		["javascript", "JavaScript"],
		["ts", "TypeScript"],
		["py", "Python"],
		["jupyter-notebook", "Jupyter Notebook"],
		["Jupyter  Notebook", "Jupyter Notebook"],
		["objective-c", "Objective-C"],
		["objc", "Objective-C"],
		["vim-script", "Vim Script"],
		["terraform", "HCL"],
		["r", "R"],
		["c", "C"],
	])("%s → %s", (input, expected) => {
		expect(canonicalLanguage(input)).toBe(expected);
	});

	it("keeps an unknown language, lower-cased", () => {
		expect(canonicalLanguage("Klingon")).toBe("klingon");
	});
});

describe("tokenize", () => {
	it('splits on spaces outside quotes and reads negations and key:"…"', () => {
		expect(tokenize('a "b c" -d -"e f" language:"jupyter notebook" -')).toEqual([
			{ value: "a", negated: false, quoted: false },
			{ value: "b c", negated: false, quoted: true },
			{ value: "d", negated: true, quoted: false },
			{ value: "e f", negated: true, quoted: true },
			{ value: "jupyter notebook", negated: false, quoted: false, key: "language" },
			{ value: "-", negated: false, quoted: false },
		]);
	});

	it("runs an unterminated quote to the end", () => {
		expect(tokenize('x "y z')).toEqual([
			{ value: "x", negated: false, quoted: false },
			{ value: "y z", negated: false, quoted: true },
		]);
	});
});

describe("parseStars", () => {
	it.each([
		["100", { min: 100, max: 100 }],
		[">100", { min: 101, max: null }],
		[">=100", { min: 100, max: null }],
		["<50", { min: null, max: 49 }],
		["<=50", { min: null, max: 50 }],
		["10..50", { min: 10, max: 50 }],
		["10..*", { min: 10, max: null }],
		["*..50", { min: null, max: 50 }],
		["*..*", { min: null, max: null }],
	])("stars:%s", (value, expected) => {
		expect(parseStars(value)).toEqual(expected);
	});

	it.each(["abc", ">", "1..", "..5", "-5", "1.5", "99999999999", "2147483648", ">=x", "1...5"])(
		"rejects stars:%s naming the forms",
		(value) => {
			const err = queryError(() => parseStars(value));
			expect(err.parameter).toBe("q");
			expect(err.message).toContain("N..M");
		},
	);

	it("intersects ranges: the stricter bound wins", () => {
		expect(intersectStars({ min: 10, max: 500 }, { min: 100, max: null })).toEqual({ min: 100, max: 500 });
		expect(intersectStars({ min: null, max: 50 }, { min: null, max: 20 })).toEqual({ min: null, max: 20 });
	});
});

describe("parseQ", () => {
	it("separates words, phrases, exclusions and qualifiers", () => {
		const p = parseQ(
			normaliseQ('React  "state management" -vue language:JS topic:CLI topic:web stars:>=10 fork:false'),
		);
		expect(p.text).toEqual({ terms: ["react"], phrases: ["state management"], excluded: ["vue"] });
		expect(p.languages).toEqual(["JavaScript"]);
		expect(p.topics).toEqual(["cli", "web"]);
		expect(p.stars).toEqual({ min: 10, max: null });
		expect(p.fork).toBe("exclude");
	});

	it("keeps unknown key:value as a plain word and qualifier keys are case-insensitive", () => {
		const p = parseQ("foo:bar Language:Go");
		expect(p.text.terms).toEqual(["foo:bar"]);
		expect(p.languages).toEqual(["Go"]);
	});

	it("de-duplicates words and repeated identical qualifiers; topics must all match (sorted)", () => {
		const p = parseQ("api API topic:web topic:cli topic:web language:go language:golang");
		expect(p.text.terms).toEqual(["api"]);
		expect(p.topics).toEqual(["cli", "web"]);
		expect(p.languages).toEqual(["Go"]);
	});

	it("intersects repeated stars qualifiers", () => {
		expect(parseQ("stars:>10 stars:<100").stars).toEqual({ min: 11, max: 99 });
	});

	it.each([
		["two languages", "language:go language:rust", "only one language"],
		["an empty language", "language:", "language:"],
		["a bad topic", "topic:Not_A_Topic!", "topic:"],
		["a bad fork value", "fork:maybe", "fork:"],
		["conflicting forks", "fork:true fork:only", "fork:"],
		["a negated qualifier", "-language:go", "negated"],
		["a bad stars value", "stars:lots", "stars:"],
		["too many words", Array.from({ length: 17 }, (_, i) => `w${i}`).join(" "), "at most 16"],
		["too many topics", Array.from({ length: 9 }, (_, i) => `topic:t${i}`).join(" "), "at most 8"],
	])("rejects %s", (_name, q, message) => {
		const err = queryError(() => parseQ(normaliseQ(q)));
		expect(err.parameter).toBe("q");
		expect(err.message).toContain(message);
	});
});

describe("normaliseQ", () => {
	it("collapses whitespace, turns control/format characters into spaces and applies NFKC", () => {
		expect(normaliseQ("  a\t\tb\u0000c\u200bd\n")).toBe("a b c d");
		expect(normaliseQ("ＡＰＩ ﬁle")).toBe("API file");
	});

	it("replaces unpaired surrogates", () => {
		expect(normaliseQ("a\ud800b")).toBe("a b");
		expect(normaliseQ("😀")).toBe("😀");
	});
});

describe("resolveSearch", () => {
	it("qualifiers equal the explicit parameters", () => {
		expect(resolve("api language:go")).toEqual(resolve("api", { language: "Go" }));
		expect(resolve("api stars:>=50")).toEqual(resolve("api", { min_stars: 50 }));
		expect(resolve("api language:GO stars:>=50")).toEqual(
			resolve("API", { language: "golang", min_stars: 50 }),
		);
	});

	it("intersects min_stars with a stars qualifier, and drops a zero lower bound", () => {
		expect(resolve("api stars:10..500", { min_stars: 100 }).stars).toEqual({ min: 100, max: 500 });
		expect(resolve("api stars:10..500", { min_stars: 5 }).stars).toEqual({ min: 10, max: 500 });
		expect(resolve("api", { min_stars: 0 }).stars).toEqual({ min: null, max: null });
	});

	it("answers 400 (on language) when the parameter and the qualifier disagree; agreeing is fine", () => {
		expect(queryError(() => resolve("api language:rust", { language: "Go" })).parameter).toBe("language");
		expect(resolve("api language:golang", { language: "go" }).language).toEqual({ name: "Go", known: true });
	});

	it("marks an unknown language for case-insensitive matching", () => {
		expect(resolve("api", { language: "Klingon" }).language).toEqual({ name: "klingon", known: false });
	});

	it("needs a positive term or qualifier", () => {
		expect(queryError(() => resolve("-vue")).message).toContain("besides exclusions");
		expect(queryError(() => resolve("\u0000\u0001")).parameter).toBe("q");
		expect(resolve("-vue language:go").text.excluded).toEqual(["vue"]);
		expect(resolve("topic:cli").topics).toEqual(["cli"]);
		expect(resolve("fork:only").fork).toBe("only");
	});
});

describe("searchKey", () => {
	it("is the same for equivalent requests", () => {
		const k = key("api language:go");
		expect(key("  API   Language:GOLANG ")).toBe(k);
		expect(key("api", { language: "Go" })).toBe(k);
		expect(key("api language:go fork:true")).toBe(k);
		expect(key("topic:b topic:a x")).toBe(key("x topic:a topic:b"));
		expect(key("x stars:>=10", { min_stars: 0 })).toBe(key("x", { min_stars: 10 }));
	});

	it("differs for different requests", () => {
		const k = key("api");
		for (const other of [
			key("api", { sort: "stars" }),
			key("api", { limit: 21 }),
			key("api", { offset: 1 }),
			key("api language:go"),
			key("api fork:false"),
			key("api -web"),
			key('"api"x'),
			key("api topic:cli"),
			key("api stars:1..*"),
			key("apis"),
		]) {
			expect(other).not.toBe(k);
		}
	});

	it("encodes user text so it cannot imitate a separator", () => {
		expect(key("a&t=b")).not.toBe(key("a b"));
		expect(key("x")).toMatch(
			/^t=x&p=&x=&lang=&topic=&stars=\*\.\.\*&fork=include&sort=relevance&limit=20&offset=0$/,
		);
		expect(key("a&t=b")).toMatch(/^[\x21-\x7e]+$/);
	});
});

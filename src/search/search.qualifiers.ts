// The search request as the service understands it: q's GitHub-style qualifiers parsed out,
// merged with the explicit query parameters, and normalised so that equivalent requests become
// the same value — from which both the SQL and the cache key are built (so a shared cache entry
// can never serve a different query's answer). Pure functions, no I/O: also imported by the
// Node benchmark (relative imports here must stay type-only).
//
// q syntax (case-insensitive keys and values):
//   word            must match (names and topics verbatim, the description stemmed as English)
//   "two words"     phrase: the words adjacent, in order
//   -word, -"a b"   must not match (needs at least one positive term or qualifier besides)
//   language:go     one language; aliases and GitHub's hyphen form (jupyter-notebook) accepted
//   topic:cli       repeatable: every listed topic must be present
//   stars:N  stars:>N  stars:>=N  stars:<N  stars:<=N  stars:N..M  stars:N..*  stars:*..M
//   fork:true (forks included: the default) | fork:false (no forks) | fork:only (only forks)
//   anything else, foo:bar included, is a plain search word.
// Qualifiers equal the explicit parameters. Combining both: stars ranges and min_stars intersect
// (the stricter bound wins; an empty range simply matches nothing); a `language` parameter and a
// language: qualifier must name the same language, otherwise 400.

export type SearchSort = "relevance" | "stars" | "forks" | "updated";
export type ForkFilter = "include" | "exclude" | "only";

export interface TextQuery {
	/** Positive words, lower-cased, de-duplicated, in order of appearance. */
	terms: string[];
	/** Positive phrases (two words or more), lower-cased, whitespace-collapsed. */
	phrases: string[];
	/** Excluded words and phrases. */
	excluded: string[];
}

export interface SearchRequest {
	text: TextQuery;
	/**
	 * The language filter, or null for any language: its canonical name (see canonicalLanguage) and
	 * whether that is a known stored spelling (matched exactly) or not (matched case-insensitively).
	 */
	language: { name: string; known: boolean } | null;
	/** Required topics, lower-cased, sorted, unique. */
	topics: string[];
	/** Inclusive bounds on stars; null = unbounded. */
	stars: { min: number | null; max: number | null };
	fork: ForkFilter;
	sort: SearchSort;
	limit: number;
	offset: number;
}

/** A request problem, with the parameter it is about; the schema layer turns it into a 400. */
export class QueryError extends Error {
	override name = "QueryError";
	readonly parameter: string;
	constructor(parameter: string, message: string) {
		super(message);
		this.parameter = parameter;
	}
}

export const MAX_Q_LENGTH = 256;
export const MAX_TEXT_ITEMS = 16;
export const MAX_TOPICS = 8;
export const MAX_STARS = 2_147_483_647; // the stars column is a Postgres integer

// Languages as GitHub Linguist names them (the stored spelling), the popular ones: every language
// of the seed and what GitHub's language filter offers at the top. A value not in this list is
// still accepted and matched case-insensitively (see isKnownLanguage).
const LANGUAGES: readonly string[] = (
	"ABAP|Ada|Agda|Apex|Assembly|Astro|AutoHotkey|Awk|Batchfile|Bicep|C|C#|C++|Clojure|CMake|COBOL|" +
	"CoffeeScript|Common Lisp|Coq|Crystal|CSS|Cuda|Cython|D|Dart|Dhall|Dockerfile|Elixir|Elm|" +
	"Emacs Lisp|Erlang|F#|Fennel|Fortran|GDScript|Gleam|GLSL|Go|Groovy|Hack|Haskell|Haxe|HCL|HTML|" +
	"Idris|Java|JavaScript|Jsonnet|Julia|Jupyter Notebook|Kotlin|Lean|Less|Lua|Makefile|Markdown|" +
	"MATLAB|MDX|Meson|Mojo|Move|Nim|Nix|Nushell|Objective-C|Objective-C++|OCaml|Odin|OpenSCAD|Pascal|" +
	"Perl|PHP|PLpgSQL|PowerShell|Prolog|PureScript|Python|QML|R|Racket|Raku|ReScript|Roff|Ruby|Rust|" +
	"Sass|Scala|Scheme|SCSS|Shell|Smalltalk|Solidity|SQL|Starlark|Svelte|Swift|SystemVerilog|Tcl|TeX|" +
	"TypeScript|V|Vala|Verilog|VHDL|Vim Script|Visual Basic .NET|Vue|WebAssembly|Zig"
).split("|");

// Common short names and spellings → the canonical name.
const ALIASES: ReadonlyArray<readonly [alias: string, language: string]> = (
	"asm=Assembly|bash=Shell|cplusplus=C++|cpp=C++|cs=C#|csharp=C#|docker=Dockerfile|" +
	"elisp=Emacs Lisp|fsharp=F#|golang=Go|hs=Haskell|ipynb=Jupyter Notebook|js=JavaScript|" +
	"jupyter=Jupyter Notebook|kt=Kotlin|latex=TeX|make=Makefile|md=Markdown|node=JavaScript|" +
	"nodejs=JavaScript|objc=Objective-C|obj c=Objective-C|objectivec=Objective-C|ocaml=OCaml|pl=Perl|" +
	"pwsh=PowerShell|py=Python|python3=Python|rb=Ruby|rs=Rust|sh=Shell|sol=Solidity|terraform=HCL|" +
	"tf=HCL|ts=TypeScript|vb=Visual Basic .NET|vb.net=Visual Basic .NET|vbnet=Visual Basic .NET|" +
	"vim=Vim Script|viml=Vim Script|vimscript=Vim Script|zsh=Shell"
)
	.split("|")
	.map((pair) => pair.split("=") as [string, string]);

/** GitHub writes spaces as hyphens in qualifiers (language:jupyter-notebook). */
const lookupKey = (name: string) =>
	name
		.toLowerCase()
		.replace(/[\s-]+/g, " ")
		.trim();

const CANONICAL = new Map<string, string>([
	...LANGUAGES.map((l) => [lookupKey(l), l] as const),
	...ALIASES.map(([alias, l]) => [lookupKey(alias), l] as const),
]);
const KNOWN = new Set<string>(LANGUAGES);

/**
 * The stored spelling of a language: "go", "GOLANG" → "Go"; "c++", "cpp" → "C++"; "c#", "csharp"
 * → "C#"; "jupyter-notebook" → "Jupyter Notebook". An unknown language comes back lower-cased
 * (it is then matched case-insensitively).
 */
export function canonicalLanguage(name: string): string {
	const trimmed = name.trim();
	return CANONICAL.get(lookupKey(trimmed)) ?? trimmed.toLowerCase();
}

/** Whether `name` (a canonicalLanguage result) is stored with exactly this spelling. */
export function isKnownLanguage(name: string): boolean {
	return KNOWN.has(name);
}

/**
 * q as the service reads it: Unicode NFKC (full-width letters become ASCII), control and format
 * characters and unpaired surrogates become spaces, whitespace collapsed, trimmed.
 */
export function normaliseQ(q: string): string {
	return q
		.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, " ")
		.normalize("NFKC")
		.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ")
		.replace(/\s+/g, " ")
		.trim();
}

/** What q says, before merging with the explicit parameters. */
export interface ParsedQ {
	text: TextQuery;
	/** Canonical names of every language: qualifier (0 or 1 distinct, or a conflict). */
	languages: string[];
	topics: string[];
	stars: { min: number | null; max: number | null };
	fork: ForkFilter | null;
}

interface Token {
	value: string;
	negated: boolean;
	/** The value was quoted ("…"): a phrase, never a qualifier. */
	quoted: boolean;
	/** key:"quoted value" form. */
	key?: string;
}

/** Splits q on whitespace outside double quotes; an unterminated quote runs to the end. */
export function tokenize(q: string): Token[] {
	const tokens: Token[] = [];
	let i = 0;
	while (i < q.length) {
		if (q[i] === " ") {
			i++;
			continue;
		}
		let negated = false;
		if (q[i] === "-" && i + 1 < q.length && q[i + 1] !== " ") {
			negated = true;
			i++;
		}
		if (q[i] === '"') {
			const end = q.indexOf('"', i + 1);
			const stop = end === -1 ? q.length : end;
			tokens.push({ value: q.slice(i + 1, stop), negated, quoted: true });
			i = stop + 1;
			continue;
		}
		let j = i;
		while (j < q.length && q[j] !== " " && q[j] !== '"') j++;
		const word = q.slice(i, j);
		// key:"quoted value"
		if (q[j] === '"' && /^[a-z]+:$/i.test(word)) {
			const end = q.indexOf('"', j + 1);
			const stop = end === -1 ? q.length : end;
			tokens.push({ value: q.slice(j + 1, stop), negated, quoted: false, key: word.slice(0, -1) });
			i = stop + 1;
			continue;
		}
		tokens.push({ value: word, negated, quoted: false });
		i = j;
	}
	return tokens;
}

const STARS_HELP = "stars: takes N, >N, >=N, <N, <=N, N..M, N..* or *..M with whole numbers 0-2147483647";

function starsNumber(s: string): number {
	if (!/^\d{1,10}$/.test(s) || Number(s) > MAX_STARS) throw new QueryError("q", STARS_HELP);
	return Number(s);
}

/** `stars:` values → inclusive bounds. */
export function parseStars(value: string): { min: number | null; max: number | null } {
	const range = /^(\d+|\*)\.\.(\d+|\*)$/.exec(value);
	if (range) {
		const [, lo = "*", hi = "*"] = range;
		return { min: lo === "*" ? null : starsNumber(lo), max: hi === "*" ? null : starsNumber(hi) };
	}
	const cmp = /^(>=|<=|>|<)?(\d+)$/.exec(value);
	if (!cmp) throw new QueryError("q", STARS_HELP);
	const n = starsNumber(cmp[2] ?? "");
	switch (cmp[1]) {
		case ">":
			// The bound after ">" must itself fit the column: nothing has more than MAX_STARS.
			if (n >= MAX_STARS) throw new QueryError("q", `stars:> takes a value below ${MAX_STARS}`);
			return { min: n + 1, max: null };
		case ">=":
			return { min: n, max: null };
		case "<":
			return { min: null, max: n - 1 };
		case "<=":
			return { min: null, max: n };
		default:
			return { min: n, max: n };
	}
}

/** Both ranges at once (the stricter bound on each side). */
export function intersectStars(
	a: { min: number | null; max: number | null },
	b: { min: number | null; max: number | null },
): { min: number | null; max: number | null } {
	const pick = (x: number | null, y: number | null, f: (p: number, q: number) => number) =>
		x === null ? y : y === null ? x : f(x, y);
	return { min: pick(a.min, b.min, Math.max), max: pick(a.max, b.max, Math.min) };
}

const TOPIC = /^[a-z0-9][a-z0-9-]{0,49}$/;
const FORK_VALUES: Record<string, ForkFilter> = { true: "include", false: "exclude", only: "only" };
const QUALIFIERS = new Set(["language", "topic", "stars", "fork"]);

function pushUnique(list: string[], value: string): void {
	if (value && !list.includes(value)) list.push(value);
}

/** Parses q (already normalised with normaliseQ) into text items and qualifiers. */
export function parseQ(q: string): ParsedQ {
	const parsed: ParsedQ = {
		text: { terms: [], phrases: [], excluded: [] },
		languages: [],
		topics: [],
		stars: { min: null, max: null },
		fork: null,
	};
	for (const token of tokenize(q)) {
		let key = token.key?.toLowerCase();
		let value = token.value;
		if (key === undefined && !token.quoted) {
			const m = /^([a-z]+):(.*)$/i.exec(token.value);
			if (m && QUALIFIERS.has((m[1] ?? "").toLowerCase())) {
				key = (m[1] ?? "").toLowerCase();
				value = m[2] ?? "";
			}
		}
		if (key !== undefined && QUALIFIERS.has(key)) {
			if (token.negated) throw new QueryError("q", `negated qualifiers (-${key}:) are not supported`);
			applyQualifier(parsed, key, value.trim());
			continue;
		}
		// A plain word or phrase; key:"x y" with an unknown key is the phrase `key x y`.
		const text = (key === undefined ? value : `${key}:${value}`).toLowerCase().replace(/\s+/g, " ").trim();
		if (!text) continue;
		const isPhrase = text.includes(" ");
		if (token.negated) pushUnique(parsed.text.excluded, text);
		else pushUnique(isPhrase ? parsed.text.phrases : parsed.text.terms, text);
	}
	const { terms, phrases, excluded } = parsed.text;
	if (terms.length + phrases.length + excluded.length > MAX_TEXT_ITEMS) {
		throw new QueryError("q", `q may contain at most ${MAX_TEXT_ITEMS} words, phrases and exclusions`);
	}
	if (parsed.topics.length > MAX_TOPICS) {
		throw new QueryError("q", `q may contain at most ${MAX_TOPICS} topic: qualifiers`);
	}
	parsed.topics.sort();
	return parsed;
}

function applyQualifier(parsed: ParsedQ, key: string, value: string): void {
	switch (key) {
		case "language": {
			if (!value) throw new QueryError("q", "language: needs a language name, e.g. language:go");
			pushUnique(parsed.languages, canonicalLanguage(value));
			if (parsed.languages.length > 1) {
				throw new QueryError(
					"q",
					`only one language: qualifier is allowed (got ${parsed.languages.join(", ")})`,
				);
			}
			return;
		}
		case "topic": {
			const topic = value.toLowerCase();
			if (!TOPIC.test(topic)) {
				throw new QueryError(
					"q",
					"topic: takes a GitHub topic: lower-case letters, digits and hyphens, at most 50 characters",
				);
			}
			pushUnique(parsed.topics, topic);
			return;
		}
		case "stars":
			parsed.stars = intersectStars(parsed.stars, parseStars(value));
			return;
		case "fork": {
			const fork = FORK_VALUES[value.toLowerCase()];
			if (!fork) throw new QueryError("q", "fork: takes true, false or only");
			if (parsed.fork !== null && parsed.fork !== fork) {
				throw new QueryError("q", "conflicting fork: qualifiers");
			}
			parsed.fork = fork;
			return;
		}
		default:
			throw new Error(`unhandled qualifier ${key}`);
	}
}

/** The explicit query parameters, already type-checked by the schema. */
export interface ExplicitParams {
	q: string;
	language?: string | undefined;
	min_stars?: number | undefined;
	sort: SearchSort;
	limit: number;
	offset: number;
}

/** q and the explicit parameters → one normalised request. Throws QueryError. */
export function resolveSearch(params: ExplicitParams): SearchRequest {
	const q = normaliseQ(params.q);
	if (!q) throw new QueryError("q", "q must contain a search term or qualifier");
	const parsed = parseQ(q);
	const { terms, phrases } = parsed.text;
	const explicitLanguage = params.language === undefined ? null : canonicalLanguage(params.language);
	const qualifierLanguage = parsed.languages[0] ?? null;
	if (explicitLanguage && qualifierLanguage && explicitLanguage !== qualifierLanguage) {
		throw new QueryError(
			"language",
			`language=${explicitLanguage} conflicts with language:${qualifierLanguage} in q; give one language`,
		);
	}
	const language = explicitLanguage ?? qualifierLanguage;
	const positive =
		terms.length + phrases.length + parsed.topics.length > 0 ||
		language !== null ||
		parsed.stars.min !== null ||
		parsed.stars.max !== null ||
		params.min_stars !== undefined ||
		(parsed.fork !== null && parsed.fork !== "include");
	if (!positive) {
		throw new QueryError("q", "q must contain a search term or qualifier besides exclusions");
	}
	const stars = intersectStars(parsed.stars, { min: params.min_stars ?? null, max: null });
	// Stars are never negative: a lower bound of 0 is no bound (so min_stars=0 shares the entry).
	if (stars.min !== null && stars.min <= 0) stars.min = null;
	return {
		text: parsed.text,
		language: language === null ? null : { name: language, known: isKnownLanguage(language) },
		topics: parsed.topics,
		stars,
		fork: parsed.fork ?? "include",
		sort: params.sort,
		limit: params.limit,
		offset: params.offset,
	};
}

/**
 * The canonical cache key of a request: every component in a fixed order, user text
 * percent-encoded (so no value can imitate a separator), defaults included.
 */
export function searchKey(req: SearchRequest): string {
	const enc = (xs: string[]) => xs.map(encodeURIComponent).join(",");
	const bound = (n: number | null) => (n === null ? "*" : String(n));
	return [
		`t=${enc(req.text.terms)}`,
		`p=${enc(req.text.phrases)}`,
		`x=${enc(req.text.excluded)}`,
		`lang=${req.language === null ? "" : encodeURIComponent(req.language.name)}`,
		`topic=${enc(req.topics)}`,
		`stars=${bound(req.stars.min)}..${bound(req.stars.max)}`,
		`fork=${req.fork}`,
		`sort=${req.sort}`,
		`limit=${req.limit}`,
		`offset=${req.offset}`,
	].join("&");
}

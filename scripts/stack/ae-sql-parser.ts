// Tokenizer and recursive-descent parser for the Workers Analytics Engine SQL dialect (the
// documented ClickHouse subset, /work/shared/research/protocols.md §3.2), producing an AST that
// ae-sql.ts type-checks and translates to Postgres. Nothing here talks to a database; anything
// outside the grammar is an AeSqlError, which the stand-in answers with 422 "Input was invalid".
// Past 400 lines: the tokenizer and the precedence levels below are one unit, read together.
//
// Grammar (keywords case-insensitive):
//   statement := (select | SHOW TABLES | SHOW TIMEZONE | SHOW TIMEZONES) [FORMAT name] [';'] EOF
//   select    := SELECT item {',' item} [FROM (name | '(' select ')') [[AS] alias]] [WHERE expr]
//                [GROUP BY expr {',' expr}] [HAVING expr] [ORDER BY expr [ASC|DESC] {, …}]
//                [LIMIT (n | ALL | n ',' n)] [OFFSET n]
//   item      := '*' | expr [[AS] alias]
//   expr      := or;  or := and {OR and};  and := not {AND not};  not := NOT not | cmp
//   cmp       := add [(= == != <> < > <= >=) add | [NOT] IN '(' expr {, expr} ')'
//                     | [NOT] BETWEEN add AND add | [NOT] (LIKE|ILIKE) add]
//   add       := mul {(+|-) mul};  mul := unary {(*|/|%) unary};  unary := (-|+) unary | primary
//   primary   := number | 'string' | TRUE | FALSE | INTERVAL ('n'|n) unit | CASE … END
//              | EXTRACT '(' unit FROM expr ')' | name '(' [DISTINCT] args ')' ['(' args ')']
//              | name ['.' name] | '(' expr ')'

export class AeSqlError extends Error {}

type TokenKind = "ident" | "qident" | "num" | "str" | "op" | "eof";
export interface Token {
	kind: TokenKind;
	value: string;
	pos: number;
	end: number;
}

const MAX_TOKENS = 50_000;
const MAX_DEPTH = 200;

const isIdentStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdentChar = (c: string) => /[A-Za-z0-9_]/.test(c);
const isDigit = (c: string) => c >= "0" && c <= "9";

const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", b: "\b", f: "\f" };

/** Reads a quoted run starting at `i` (the opening quote); `''`-doubling and backslash escapes. */
function readQuoted(sql: string, i: number, quote: string): [string, number] {
	let out = "";
	let j = i + 1;
	while (j < sql.length) {
		const c = sql.charAt(j);
		if (c === "\\") {
			const next = sql.charAt(j + 1);
			if (next === "") break;
			out += ESCAPES[next] ?? next;
			j += 2;
		} else if (c === quote) {
			if (sql.charAt(j + 1) === quote) {
				out += quote;
				j += 2;
			} else {
				return [out, j + 1];
			}
		} else {
			out += c;
			j++;
		}
	}
	throw new AeSqlError(
		`unterminated ${quote === "'" ? "string literal" : "quoted identifier"} at position ${i}`,
	);
}

export function tokenize(sql: string): Token[] {
	const tokens: Token[] = [];
	let i = 0;
	while (i < sql.length) {
		if (tokens.length > MAX_TOKENS) throw new AeSqlError("query too long");
		const c = sql.charAt(i);
		if (/\s/.test(c)) {
			i++;
			continue;
		}
		if (c === "-" && sql.charAt(i + 1) === "-") {
			const nl = sql.indexOf("\n", i);
			i = nl < 0 ? sql.length : nl + 1;
			continue;
		}
		if (c === "/" && sql.charAt(i + 1) === "*") {
			const close = sql.indexOf("*/", i + 2);
			if (close < 0) throw new AeSqlError(`unterminated comment at position ${i}`);
			i = close + 2;
			continue;
		}
		const start = i;
		if (isIdentStart(c)) {
			while (i < sql.length && isIdentChar(sql.charAt(i))) i++;
			tokens.push({ kind: "ident", value: sql.slice(start, i), pos: start, end: i });
			continue;
		}
		if (c === '"' || c === "`") {
			const [value, end] = readQuoted(sql, i, c);
			if (value === "") throw new AeSqlError(`empty quoted identifier at position ${i}`);
			tokens.push({ kind: "qident", value, pos: start, end });
			i = end;
			continue;
		}
		if (c === "'") {
			const [value, end] = readQuoted(sql, i, c);
			tokens.push({ kind: "str", value, pos: start, end });
			i = end;
			continue;
		}
		if (isDigit(c) || (c === "." && isDigit(sql.charAt(i + 1)))) {
			const m = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(sql.slice(i));
			const text = m?.[0] ?? c;
			i += text.length;
			if (i < sql.length && isIdentChar(sql.charAt(i))) {
				throw new AeSqlError(`malformed number at position ${start}`);
			}
			tokens.push({ kind: "num", value: text, pos: start, end: i });
			continue;
		}
		const two = sql.slice(i, i + 2);
		if (["<=", ">=", "<>", "!=", "=="].includes(two)) {
			tokens.push({ kind: "op", value: two, pos: start, end: i + 2 });
			i += 2;
			continue;
		}
		if ("(),.*+-/%=<>;".includes(c)) {
			tokens.push({ kind: "op", value: c, pos: start, end: i + 1 });
			i++;
			continue;
		}
		throw new AeSqlError(`unexpected character ${JSON.stringify(c)} at position ${i}`);
	}
	tokens.push({ kind: "eof", value: "", pos: sql.length, end: sql.length });
	return tokens;
}

export const INTERVAL_UNITS = [
	"SECOND",
	"MINUTE",
	"HOUR",
	"DAY",
	"WEEK",
	"MONTH",
	"QUARTER",
	"YEAR",
] as const;
export type IntervalUnit = (typeof INTERVAL_UNITS)[number];

interface Span {
	pos: number;
	end: number;
}
export type Expr = Span &
	(
		| { k: "num"; text: string }
		| { k: "str"; value: string }
		| { k: "bool"; value: boolean }
		| { k: "interval"; n: number; unit: IntervalUnit }
		| { k: "ident"; name: string; qualifier?: string }
		| { k: "star" }
		| { k: "neg"; arg: Expr }
		| { k: "not"; arg: Expr }
		| { k: "binary"; op: string; left: Expr; right: Expr }
		| { k: "in"; not: boolean; arg: Expr; list: Expr[] }
		| { k: "between"; not: boolean; arg: Expr; lo: Expr; hi: Expr }
		| { k: "like"; not: boolean; ci: boolean; arg: Expr; pattern: Expr }
		| { k: "call"; name: string; params: Expr[] | null; args: Expr[]; distinct: boolean }
		| { k: "case"; whens: [Expr, Expr][]; otherwise: Expr | null }
	);

export interface SelectItem {
	expr: Expr;
	alias?: string;
}
export interface OrderItem {
	expr: Expr;
	desc: boolean;
}
export interface Select {
	items: SelectItem[];
	from?: { table: string; alias?: string } | { sub: Select; alias?: string };
	where?: Expr;
	groupBy: Expr[];
	having?: Expr;
	orderBy: OrderItem[];
	limit?: number;
	offset?: number;
}
export type Format = "JSON" | "JSONEachRow" | "TabSeparated";
export type Statement =
	| { kind: "select"; select: Select; format: Format }
	| { kind: "show"; what: "tables" | "timezone" | "timezones"; format: Format };

const FORMATS: Record<string, Format> = {
	json: "JSON",
	jsoneachrow: "JSONEachRow",
	tabseparated: "TabSeparated",
	tsv: "TabSeparated",
};

// Words that end an expression: never taken as an implicit alias (`SELECT blob1 x` is fine).
const RESERVED = new Set(
	(
		"select from where group by having order limit offset format and or not as asc desc in between like " +
		"ilike is null case when then else end interval distinct all union join inner left right full cross " +
		"on using with settings sample array prewhere window qualify into"
	).split(" "),
);

class Parser {
	readonly #sql: string;
	readonly #tokens: Token[];
	#i = 0;
	#depth = 0;

	constructor(sql: string) {
		this.#sql = sql;
		this.#tokens = tokenize(sql);
	}

	get #tok(): Token {
		return this.#tokens[this.#i] ?? (this.#tokens[this.#tokens.length - 1] as Token);
	}

	#peek(offset = 1): Token {
		return this.#tokens[this.#i + offset] ?? (this.#tokens[this.#tokens.length - 1] as Token);
	}

	#next(): Token {
		const t = this.#tok;
		if (t.kind !== "eof") this.#i++;
		return t;
	}

	#isWord(word: string, t: Token = this.#tok): boolean {
		return t.kind === "ident" && t.value.toLowerCase() === word;
	}

	#acceptWord(word: string): boolean {
		if (!this.#isWord(word)) return false;
		this.#i++;
		return true;
	}

	#expectWord(word: string): void {
		if (!this.#acceptWord(word)) this.#fail(`expected ${word.toUpperCase()}`);
	}

	#isOp(op: string, t: Token = this.#tok): boolean {
		return t.kind === "op" && t.value === op;
	}

	#acceptOp(op: string): boolean {
		if (!this.#isOp(op)) return false;
		this.#i++;
		return true;
	}

	#expectOp(op: string): void {
		if (!this.#acceptOp(op)) this.#fail(`expected '${op}'`);
	}

	#fail(what: string): never {
		const t = this.#tok;
		const near = t.kind === "eof" ? "end of query" : JSON.stringify(this.#sql.slice(t.pos, t.pos + 30));
		throw new AeSqlError(`syntax error: ${what} at position ${t.pos} (near ${near})`);
	}

	/** A plain or quoted name (table, column or alias). */
	#name(what: string): string {
		const t = this.#tok;
		if (t.kind === "qident" || (t.kind === "ident" && !RESERVED.has(t.value.toLowerCase()))) {
			this.#i++;
			return t.value;
		}
		return this.#fail(`expected ${what}`);
	}

	#nonNegativeInt(what: string): number {
		const t = this.#tok;
		if (t.kind !== "num" || !/^\d+$/.test(t.value) || t.value.length > 15) this.#fail(`expected ${what}`);
		this.#i++;
		return Number(t.value);
	}

	statement(): Statement {
		let stmt: Statement;
		if (this.#acceptWord("show")) {
			let what: "tables" | "timezone" | "timezones";
			if (this.#acceptWord("tables")) what = "tables";
			else if (this.#acceptWord("timezones")) what = "timezones";
			else if (this.#acceptWord("timezone")) what = "timezone";
			else return this.#fail("expected TABLES, TIMEZONE or TIMEZONES");
			stmt = { kind: "show", what, format: "JSON" };
		} else if (this.#isWord("select")) {
			stmt = { kind: "select", select: this.#select(), format: "JSON" };
		} else {
			return this.#fail(
				"expected SELECT or SHOW (only SELECT, SHOW TABLES and SHOW TIMEZONE(S) are supported)",
			);
		}
		if (this.#acceptWord("format")) {
			const t = this.#next();
			const format = t.kind === "ident" ? FORMATS[t.value.toLowerCase()] : undefined;
			if (!format) {
				throw new AeSqlError(
					`unsupported FORMAT ${JSON.stringify(t.value)} (supported: JSON, JSONEachRow, TabSeparated)`,
				);
			}
			stmt.format = format;
		}
		this.#acceptOp(";");
		if (this.#tok.kind !== "eof") {
			if (this.#isWord("union")) throw new AeSqlError("UNION is not supported");
			this.#fail(
				this.#sql.slice(0, this.#tok.pos).trimEnd().endsWith(";") ? "one statement only" : "unexpected input",
			);
		}
		return stmt;
	}

	#select(): Select {
		this.#expectWord("select");
		if (this.#isWord("distinct")) throw new AeSqlError("SELECT DISTINCT is not supported");
		const items: SelectItem[] = [];
		do items.push(this.#item());
		while (this.#acceptOp(","));
		const sel: Select = { items, groupBy: [], orderBy: [] };
		if (this.#acceptWord("from")) {
			if (this.#acceptOp("(")) {
				if (!this.#isWord("select")) this.#fail("expected a subquery");
				const sub = this.#nested(() => this.#select());
				this.#expectOp(")");
				sel.from = { sub };
			} else {
				sel.from = { table: this.#name("a table name") };
				if (this.#acceptOp(".")) throw new AeSqlError("qualified table names are not supported");
			}
			if (this.#acceptWord("as")) sel.from.alias = this.#name("an alias");
			else if (
				this.#tok.kind === "qident" ||
				(this.#tok.kind === "ident" && !RESERVED.has(this.#tok.value.toLowerCase()))
			)
				sel.from.alias = this.#name("an alias");
			const joins = ["join", "inner", "left", "right", "full", "cross", "array"];
			if (this.#isOp(",") || joins.some((w) => this.#isWord(w))) {
				throw new AeSqlError("JOIN is not supported: one table only");
			}
		}
		if (this.#acceptWord("where")) sel.where = this.#expr();
		if (this.#acceptWord("group")) {
			this.#expectWord("by");
			do sel.groupBy.push(this.#expr());
			while (this.#acceptOp(","));
		}
		if (this.#acceptWord("having")) sel.having = this.#expr();
		if (this.#acceptWord("order")) {
			this.#expectWord("by");
			do {
				const expr = this.#expr();
				const desc = this.#acceptWord("desc");
				if (!desc) this.#acceptWord("asc");
				sel.orderBy.push({ expr, desc });
			} while (this.#acceptOp(","));
		}
		if (this.#acceptWord("limit")) {
			if (!this.#acceptWord("all")) {
				const first = this.#nonNegativeInt("a row count");
				if (this.#acceptOp(",")) {
					sel.offset = first;
					sel.limit = this.#nonNegativeInt("a row count");
				} else {
					sel.limit = first;
				}
			}
		}
		if (this.#acceptWord("offset")) {
			if (sel.offset !== undefined) this.#fail("OFFSET given twice");
			sel.offset = this.#nonNegativeInt("a row count");
		}
		return sel;
	}

	#item(): SelectItem {
		if (this.#isOp("*")) {
			const t = this.#next();
			return { expr: { k: "star", pos: t.pos, end: t.end } };
		}
		const expr = this.#expr();
		if (this.#acceptWord("as")) return { expr, alias: this.#name("an alias") };
		const t = this.#tok;
		if (t.kind === "qident" || (t.kind === "ident" && !RESERVED.has(t.value.toLowerCase()))) {
			return { expr, alias: this.#name("an alias") };
		}
		return { expr };
	}

	#nested<T>(fn: () => T): T {
		if (++this.#depth > MAX_DEPTH) throw new AeSqlError("query nested too deeply");
		try {
			return fn();
		} finally {
			this.#depth--;
		}
	}

	#expr(): Expr {
		return this.#nested(() => this.#or());
	}

	#span(pos: number): Span {
		const prev = this.#tokens[this.#i - 1];
		return { pos, end: prev ? prev.end : pos };
	}

	#or(): Expr {
		let left = this.#and();
		while (this.#acceptWord("or")) {
			const right = this.#and();
			left = { k: "binary", op: "OR", left, right, ...this.#span(left.pos) };
		}
		return left;
	}

	#and(): Expr {
		let left = this.#not();
		while (this.#acceptWord("and")) {
			const right = this.#not();
			left = { k: "binary", op: "AND", left, right, ...this.#span(left.pos) };
		}
		return left;
	}

	#not(): Expr {
		const pos = this.#tok.pos;
		if (this.#acceptWord("not")) {
			const arg = this.#nested(() => this.#not());
			return { k: "not", arg, ...this.#span(pos) };
		}
		return this.#cmp();
	}

	#cmp(): Expr {
		const left = this.#add();
		const t = this.#tok;
		if (t.kind === "op" && ["=", "==", "!=", "<>", "<", ">", "<=", ">="].includes(t.value)) {
			this.#i++;
			const op = t.value === "==" ? "=" : t.value === "!=" ? "<>" : t.value;
			const right = this.#add();
			return { k: "binary", op, left, right, ...this.#span(left.pos) };
		}
		const not =
			this.#isWord("not") && ["in", "between", "like", "ilike"].some((w) => this.#isWord(w, this.#peek()));
		if (not) this.#i++;
		if (this.#acceptWord("in")) {
			this.#expectOp("(");
			if (this.#isWord("select")) throw new AeSqlError("IN (subquery) is not supported");
			const list: Expr[] = [];
			do list.push(this.#expr());
			while (this.#acceptOp(","));
			this.#expectOp(")");
			return { k: "in", not, arg: left, list, ...this.#span(left.pos) };
		}
		if (this.#acceptWord("between")) {
			const lo = this.#add();
			this.#expectWord("and");
			const hi = this.#add();
			return { k: "between", not, arg: left, lo, hi, ...this.#span(left.pos) };
		}
		const like = this.#acceptWord("like");
		if (like || this.#acceptWord("ilike")) {
			const pattern = this.#add();
			return { k: "like", not, ci: !like, arg: left, pattern, ...this.#span(left.pos) };
		}
		if (this.#isWord("is"))
			throw new AeSqlError("IS [NOT] NULL is not supported (Analytics Engine has no NULLs)");
		return left;
	}

	#add(): Expr {
		let left = this.#mul();
		while (this.#isOp("+") || this.#isOp("-")) {
			const op = this.#next().value;
			const right = this.#mul();
			left = { k: "binary", op, left, right, ...this.#span(left.pos) };
		}
		return left;
	}

	#mul(): Expr {
		let left = this.#unary();
		while (this.#isOp("*") || this.#isOp("/") || this.#isOp("%")) {
			const op = this.#next().value;
			const right = this.#unary();
			left = { k: "binary", op, left, right, ...this.#span(left.pos) };
		}
		return left;
	}

	#unary(): Expr {
		const pos = this.#tok.pos;
		if (this.#acceptOp("-")) {
			const arg = this.#nested(() => this.#unary());
			return { k: "neg", arg, ...this.#span(pos) };
		}
		if (this.#acceptOp("+")) return this.#nested(() => this.#unary());
		return this.#primary();
	}

	#args(): Expr[] {
		const args: Expr[] = [];
		if (this.#acceptOp(")")) return args;
		do {
			if (this.#isOp("*") && (this.#isOp(")", this.#peek()) || this.#isOp(",", this.#peek()))) {
				const t = this.#next();
				args.push({ k: "star", pos: t.pos, end: t.end });
			} else {
				args.push(this.#expr());
			}
		} while (this.#acceptOp(","));
		this.#expectOp(")");
		return args;
	}

	#primary(): Expr {
		const t = this.#tok;
		const pos = t.pos;
		if (t.kind === "num") {
			this.#i++;
			return { k: "num", text: t.value, pos, end: t.end };
		}
		if (t.kind === "str") {
			this.#i++;
			return { k: "str", value: t.value, pos, end: t.end };
		}
		if (this.#acceptOp("(")) {
			if (this.#isWord("select")) throw new AeSqlError("scalar subqueries are not supported");
			const inner = this.#expr();
			if (this.#isOp(",")) throw new AeSqlError("tuples are not supported");
			this.#expectOp(")");
			return { ...inner, ...this.#span(pos) };
		}
		if (t.kind === "qident") {
			this.#i++;
			return this.#qualified(t.value, pos);
		}
		if (t.kind !== "ident") return this.#fail("expected an expression");
		const word = t.value.toLowerCase();
		if (word === "true" || word === "false") {
			this.#i++;
			return { k: "bool", value: word === "true", pos, end: t.end };
		}
		if (word === "null") throw new AeSqlError("NULL is not supported (Analytics Engine has no NULLs)");
		if (word === "interval") return this.#interval();
		if (word === "case") return this.#case();
		if (word === "extract" && this.#isOp("(", this.#peek())) return this.#extract();
		if (RESERVED.has(word)) this.#fail("expected an expression");
		this.#i++;
		if (this.#acceptOp("(")) {
			const distinct = this.#acceptWord("distinct");
			let args = this.#args();
			let params: Expr[] | null = null;
			if (this.#acceptOp("(")) {
				// Parametric aggregate: quantileExactWeighted(0.5)(col, weight).
				if (distinct) this.#fail("DISTINCT in parameters");
				params = args;
				args = this.#args();
			}
			return { k: "call", name: t.value, params, args, distinct, ...this.#span(pos) };
		}
		return this.#qualified(t.value, pos);
	}

	#qualified(first: string, pos: number): Expr {
		if (this.#acceptOp(".")) {
			const name = this.#name("a column name");
			return { k: "ident", name, qualifier: first, ...this.#span(pos) };
		}
		return { k: "ident", name: first, ...this.#span(pos) };
	}

	#unit(): IntervalUnit {
		const t = this.#next();
		const unit = t.kind === "ident" ? t.value.toUpperCase() : "";
		const found = INTERVAL_UNITS.find((u) => u === unit || `${u}S` === unit);
		if (!found)
			throw new AeSqlError(`expected an interval unit (${INTERVAL_UNITS.join(", ")}) at position ${t.pos}`);
		return found;
	}

	#interval(): Expr {
		const pos = this.#tok.pos;
		this.#i++;
		const t = this.#next();
		const text = t.kind === "str" || t.kind === "num" ? t.value.trim() : "";
		if (!/^\d{1,9}$/.test(text)) {
			throw new AeSqlError(`INTERVAL needs a whole number, as in INTERVAL '1' DAY (position ${t.pos})`);
		}
		const unit = this.#unit();
		return { k: "interval", n: Number(text), unit, ...this.#span(pos) };
	}

	#case(): Expr {
		const pos = this.#tok.pos;
		this.#i++;
		if (!this.#isWord("when")) throw new AeSqlError("only the searched CASE WHEN … form is supported");
		const whens: [Expr, Expr][] = [];
		while (this.#acceptWord("when")) {
			const cond = this.#expr();
			this.#expectWord("then");
			whens.push([cond, this.#expr()]);
		}
		const otherwise = this.#acceptWord("else") ? this.#expr() : null;
		this.#expectWord("end");
		return { k: "case", whens, otherwise, ...this.#span(pos) };
	}

	#extract(): Expr {
		const pos = this.#tok.pos;
		this.#i += 2;
		const unit = this.#unit();
		this.#expectWord("from");
		const arg = this.#expr();
		this.#expectOp(")");
		const fn = `to${unit.charAt(0)}${unit.slice(1).toLowerCase()}`;
		if (unit === "WEEK" || unit === "QUARTER") throw new AeSqlError(`EXTRACT(${unit} …) is not supported`);
		return {
			k: "call",
			name: unit === "DAY" ? "toDayOfMonth" : fn,
			params: null,
			args: [arg],
			distinct: false,
			...this.#span(pos),
		};
	}
}

export function parseStatement(sql: string): Statement {
	return new Parser(sql).statement();
}

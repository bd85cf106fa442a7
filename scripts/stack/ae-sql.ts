// Type-checks an Analytics Engine SQL AST (ae-sql-parser.ts) and translates it to one Postgres
// statement over the stand-in's table. Past 400 lines because the function table is one unit:
// each entry states the ClickHouse result type and its Postgres form side by side.
//
// Safety: no text of the query reaches Postgres. String literals become bind parameters ($n,
// de-duplicated so equal expressions print equal SQL, as GROUP BY matching needs); numbers are
// re-printed from their parsed value; columns, functions and operators come from fixed tables.
//
// Types follow ClickHouse as far as the output shows them (64-bit integers are quoted in JSON):
// count() and sums of integers are UInt64 (Int64 when signed); literals take the smallest
// fitting type; + and * widen to the next size (UInt8 + UInt8 is UInt16), - to the next signed
// size; comparisons are UInt8 ("Bool" here: a Postgres boolean until a number is needed); `/` is
// always Float64. Every integer is an int8 in Postgres (unsigned wrap-around is not emulated).
import {
	AeSqlError,
	type Expr,
	type Format,
	type IntervalUnit,
	parseStatement,
	type Select,
	type SelectItem,
} from "./ae-sql-parser.ts";

export { AeSqlError } from "./ae-sql-parser.ts";

export type ChType =
	| "UInt8"
	| "UInt16"
	| "UInt32"
	| "UInt64"
	| "Int8"
	| "Int16"
	| "Int32"
	| "Int64"
	| "Float64"
	| "String"
	| "DateTime"
	| "Date"
	| "Bool"
	| "Interval";

export const SCHEMA = "analytics_engine";
export const TABLE = `${SCHEMA}.data_points`;
export const BLOB_COLUMNS = 20;
export const DOUBLE_COLUMNS = 20;

/** AE's columns in `SELECT *` order, with their types. */
export const AE_COLUMNS: readonly (readonly [string, ChType])[] = [
	["dataset", "String"],
	["timestamp", "DateTime"],
	["_sample_interval", "UInt64"],
	["index1", "String"],
	...Array.from({ length: BLOB_COLUMNS }, (_, i) => [`blob${i + 1}`, "String"] as const),
	...Array.from({ length: DOUBLE_COLUMNS }, (_, i) => [`double${i + 1}`, "Float64"] as const),
];

export interface OutputColumn {
	name: string;
	type: ChType;
}

export interface Translation {
	sql: string;
	params: string[];
	columns: OutputColumn[];
	format: Format;
	/** The statement carries LIMIT/OFFSET; its last column is then the row count before them. */
	counted: boolean;
	/** With LIMIT/OFFSET: counts the rows before them (for when the page itself is empty). */
	countSql?: string;
}

interface Compiled {
	sql: string;
	type: ChType;
	agg: boolean;
	interval?: { n: number; unit: IntervalUnit };
	/** The value of a numeric literal (for arguments that must be constants). */
	literal?: number;
}

interface Column {
	sql: string;
	type: ChType;
}

interface Scope {
	columns: Map<string, Column[]>;
	qualifiers: Set<string>;
	/** FROM is the dataset itself (its rows have a write order for argMax/argMin ties). */
	base: boolean;
}

interface AliasEntry {
	expr: Expr;
	compiled?: Compiled;
	resolving: boolean;
}

interface Ctx {
	scope: Scope;
	aliases: Map<string, AliasEntry>;
	params: Params;
	allowAgg: boolean;
	inAgg: boolean;
	clause: string;
}

class Params {
	readonly values: string[] = [];
	readonly #index = new Map<string, number>();

	text(value: string): string {
		let n = this.#index.get(value);
		if (n === undefined) {
			this.values.push(value);
			n = this.values.length;
			this.#index.set(value, n);
		}
		return `($${n}::text COLLATE "C")`;
	}
}

const fail = (message: string): never => {
	throw new AeSqlError(message);
};

const WIDTH: Partial<Record<ChType, number>> = {
	Bool: 8,
	UInt8: 8,
	UInt16: 16,
	UInt32: 32,
	UInt64: 64,
	Int8: 8,
	Int16: 16,
	Int32: 32,
	Int64: 64,
};
const INT_TYPES = Object.keys(WIDTH) as ChType[];
const isSigned = (t: ChType) => t.startsWith("Int");
const widthOf = (t: ChType): number => WIDTH[t] ?? 64;
/** The integer type of a sign and a width (capped at 64 bits). */
const intType = (signed: boolean, bits: number): ChType =>
	`${signed ? "Int" : "UInt"}${Math.min(64, Math.max(8, bits))}` as ChType;
const isInt = (t: ChType) => INT_TYPES.includes(t);
const isNumeric = (t: ChType) => isInt(t) || t === "Float64";
const isTime = (t: ChType) => t === "DateTime" || t === "Date";

/** Integer (Bool as 0/1) as int8. Every integer expression here is int8 already. */
function i8(c: Compiled): string {
	if (c.type === "Bool") return `(${c.sql})::int4::int8`;
	if (!isInt(c.type)) fail(`expected an integer, got ${c.type}`);
	return c.sql;
}

function f8(c: Compiled): string {
	if (c.type === "Float64") return c.sql;
	if (!isInt(c.type)) fail(`expected a number, got ${c.type}`);
	return `(${i8(c)})::float8`;
}

/** A number in its own type: Bool becomes 0/1, floats and integers stay. */
function num(c: Compiled): string {
	return c.type === "Float64" ? c.sql : i8(c);
}

/** A condition: booleans as they are, numbers compared with 0 (ClickHouse filters on UInt8). */
function cond(c: Compiled): string {
	if (c.type === "Bool") return c.sql;
	if (isNumeric(c.type)) return `(${num(c)} <> 0)`;
	return fail(`illegal type ${c.type} of a condition (expected a number or a comparison)`);
}

function timestamp(c: Compiled): string {
	switch (c.type) {
		case "DateTime":
			return c.sql;
		case "Date":
			return `(${c.sql})::timestamptz`;
		case "String":
			return `${SCHEMA}.to_datetime(${c.sql})`;
		default:
			if (isNumeric(c.type)) return `to_timestamp(floor(${f8(c)}))`;
			return fail(`expected a DateTime, got ${c.type}`);
	}
}

function intervalSql(n: number, unit: IntervalUnit): string {
	const field = {
		SECOND: "secs",
		MINUTE: "mins",
		HOUR: "hours",
		DAY: "days",
		WEEK: "weeks",
		MONTH: "months",
		QUARTER: "months",
		YEAR: "years",
	}[unit];
	return `make_interval(${field} => ${unit === "QUARTER" ? n * 3 : n})`;
}

/** The common type of branches (if, CASE) and their SQL in that type. */
function unify(parts: Compiled[]): { type: ChType; sqls: string[] } {
	const types = parts.map((p) => p.type);
	if (types.every((t) => t === "Bool")) return { type: "Bool", sqls: parts.map((p) => p.sql) };
	if (types.every(isNumeric)) {
		if (types.includes("Float64")) return { type: "Float64", sqls: parts.map(f8) };
		const type = intType(types.some(isSigned), Math.max(...types.map(widthOf)));
		return { type, sqls: parts.map(i8) };
	}
	if (types.every((t) => t === "String")) return { type: "String", sqls: parts.map((p) => p.sql) };
	if (types.every((t) => t === "Date")) return { type: "Date", sqls: parts.map((p) => p.sql) };
	if (types.every(isTime)) return { type: "DateTime", sqls: parts.map(timestamp) };
	return fail(`no common type for ${[...new Set(types)].join(", ")}`);
}

/** Both sides of a comparison, in a form Postgres compares the way ClickHouse does. */
function comparable(a: Compiled, b: Compiled): [string, string] {
	if (isNumeric(a.type) && isNumeric(b.type)) {
		return a.type === "Float64" || b.type === "Float64" ? [f8(a), f8(b)] : [i8(a), i8(b)];
	}
	if (a.type === "String" && b.type === "String") return [a.sql, b.sql];
	if (isTime(a.type) && isTime(b.type)) return [a.sql, b.sql];
	// A string or a number against a DateTime is read as a DateTime ('2024-01-01 00:00:00', unix seconds).
	if (isTime(a.type) && (b.type === "String" || isNumeric(b.type))) return [a.sql, timestamp(b)];
	if (isTime(b.type) && (a.type === "String" || isNumeric(a.type))) return [timestamp(a), b.sql];
	return fail(`cannot compare ${a.type} with ${b.type}`);
}

const DEFAULTS: Partial<Record<ChType, string>> = {
	String: `(''::text COLLATE "C")`,
	Float64: "0::float8",
	DateTime: "to_timestamp(0)",
	Date: "'1970-01-01'::date",
};
const defaultOf = (t: ChType): string => DEFAULTS[t] ?? "0::int8";

/** ClickHouse's "time zone" arguments: only UTC exists here (AE's default is Etc/UTC too). */
function utcOnly(e: Expr | undefined): void {
	if (!e) return;
	if (e.k !== "str" || !["UTC", "Etc/UTC", "GMT", "Etc/GMT"].includes(e.value)) {
		fail("only the UTC time zone is supported by the local stand-in");
	}
}

type Fn = (call: Expr & { k: "call" }, ctx: Ctx) => Compiled;

function arity(call: Expr & { k: "call" }, min: number, max = min): void {
	if (call.params) fail(`${call.name} takes no parameters`);
	if (call.distinct) fail(`DISTINCT is not allowed in ${call.name}`);
	if (call.args.length < min || call.args.length > max) {
		fail(`${call.name} takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${call.args.length}`);
	}
}

function constInt(c: Compiled, what: string): number {
	if (c.literal === undefined || !Number.isInteger(c.literal)) fail(`${what} must be an integer constant`);
	return c.literal as number;
}

/** Scalar function: compiles its arguments in the caller's context. */
function scalar(
	min: number,
	max: number,
	body: (args: Compiled[], call: Expr & { k: "call" }) => Compiled,
): Fn {
	return (call, ctx) => {
		arity(call, min, max);
		const args = call.args.map((a) => compile(a, ctx));
		return { ...body(args, call), agg: args.some((a) => a.agg) };
	};
}

const str = (c: Compiled): string => (c.type === "String" ? c.sql : fail(`expected a String, got ${c.type}`));
const at = (args: Compiled[], i: number): Compiled => args[i] as Compiled;

function dateTimeFn(sqlOf: (ts: string) => string, type: ChType = "DateTime"): Fn {
	return scalar(1, 2, (args, call) => {
		utcOnly(call.args[1]);
		return { sql: sqlOf(timestamp(at(args, 0))), type, agg: false };
	});
}

const extractFn = (field: string, type: ChType) =>
	dateTimeFn((ts) => `(extract(${field} FROM ${ts}))::int8`, type);

const binned = (minutes: number) =>
	dateTimeFn(
		(ts) => `date_bin(make_interval(mins => ${minutes}), ${ts}, timestamptz '1970-01-01 00:00:00+00')`,
	);
const truncated = (field: string) => dateTimeFn((ts) => `date_trunc('${field}', ${ts}, 'UTC')`);

function toInt(type: ChType): Fn {
	return scalar(1, 1, ([a]) => {
		const c = a as Compiled;
		if (isInt(c.type)) return { sql: i8(c), type, agg: false };
		if (c.type === "Float64") return { sql: `trunc(${c.sql})::int8`, type, agg: false };
		if (c.type === "String") return { sql: `(${c.sql})::int8`, type, agg: false };
		if (isTime(c.type)) return { sql: `floor(extract(epoch FROM ${timestamp(c)}))::int8`, type, agg: false };
		return fail(`cannot convert ${c.type} to ${type}`);
	});
}

function rounding(pgFn: "round" | "floor" | "ceil"): Fn {
	return scalar(1, 2, (args) => {
		const x = at(args, 0);
		const digits = args[1] ? constInt(at(args, 1), "the number of digits") : 0;
		if (isInt(x.type)) {
			const type = x.type === "Bool" ? "UInt8" : x.type;
			if (digits >= 0) return { sql: i8(x), type, agg: false };
			const p = `1e${-digits}`;
			return { sql: `(${pgFn}((${i8(x)})::numeric / ${p}) * ${p})::int8`, type, agg: false };
		}
		const v = f8(x);
		if (digits === 0) return { sql: `${pgFn}(${v})`, type: "Float64", agg: false };
		const p = `1e${Math.abs(digits)}::float8`;
		return {
			sql: digits > 0 ? `(${pgFn}(${v} * ${p}) / ${p})` : `(${pgFn}(${v} / ${p}) * ${p})`,
			type: "Float64",
			agg: false,
		};
	});
}

const float1 = (pg: (x: string) => string): Fn =>
	scalar(1, 1, ([x]) => ({ sql: pg(f8(x as Compiled)), type: "Float64", agg: false }));
const string1 = (pg: string): Fn =>
	scalar(1, 1, ([x]) => ({ sql: `${pg}(${str(x as Compiled)})`, type: "String", agg: false }));

/** Aggregate: arguments are compiled inside it (nested aggregates and WHERE use are refused). */
function aggregate(
	min: number,
	max: number,
	body: (args: Compiled[], call: Expr & { k: "call" }, ctx: Ctx) => Omit<Compiled, "agg">,
	opts: { distinct?: boolean; params?: boolean } = {},
): Fn {
	return (call, ctx) => {
		if (ctx.inAgg) fail(`aggregate function ${call.name} is found inside another aggregate function`);
		if (!ctx.allowAgg) fail(`aggregate function ${call.name} is found in ${ctx.clause}`);
		if (call.distinct && !opts.distinct) fail(`DISTINCT is not allowed in ${call.name}`);
		if (call.params && !opts.params) fail(`${call.name} takes no parameters`);
		if (!call.params && opts.params) fail(`${call.name} needs a parameter, as in ${call.name}(0.5)(…)`);
		if (call.args.length < min || call.args.length > max) {
			fail(
				`${call.name} takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${call.args.length}`,
			);
		}
		const inner: Ctx = { ...ctx, inAgg: true };
		const args = call.args.map((a) => compile(a, inner));
		return { ...body(args, call, inner), agg: true };
	};
}

const distinctSql = (call: Expr & { k: "call" }) => (call.distinct ? "DISTINCT " : "");

function sumOf(x: Compiled, call: Expr & { k: "call" }, filter = ""): Omit<Compiled, "agg"> {
	if (!isNumeric(x.type)) fail(`illegal type ${x.type} of argument of ${call.name}`);
	const type: ChType = x.type === "Float64" ? "Float64" : isSigned(x.type) ? "Int64" : "UInt64";
	return { sql: `coalesce(sum(${distinctSql(call)}${num(x)})${filter}, ${defaultOf(type)})`, type };
}

function avgOf(x: Compiled, call: Expr & { k: "call" }, filter = ""): Omit<Compiled, "agg"> {
	if (!isNumeric(x.type)) fail(`illegal type ${x.type} of argument of ${call.name}`);
	return { sql: `coalesce(avg(${distinctSql(call)}${f8(x)})${filter}, 'NaN'::float8)`, type: "Float64" };
}

function minMax(pgFn: "min" | "max"): Fn {
	return aggregate(1, 1, ([x], call) => {
		const c = x as Compiled;
		if (c.type === "Interval") fail(`illegal type Interval of argument of ${call.name}`);
		const type = c.type === "Bool" ? "UInt8" : c.type;
		return { sql: `coalesce(${pgFn}(${c.type === "Bool" ? i8(c) : c.sql}), ${defaultOf(type)})`, type };
	});
}

function argExtreme(desc: boolean): Fn {
	return aggregate(2, 2, ([a, v], _call, ctx) => {
		const arg = a as Compiled;
		const by = v as Compiled;
		if (arg.type === "Interval" || by.type === "Interval") fail("Interval values cannot be aggregated");
		const type = arg.type === "Bool" ? "UInt8" : arg.type;
		const argSql = arg.type === "Bool" ? i8(arg) : arg.sql;
		const bySql = by.type === "Bool" ? i8(by) : by.sql;
		// Ties are broken by write order (the latest written row wins) when reading the dataset.
		const tie = ctx.scope.base ? `, t."_seq" DESC` : "";
		const order = `${bySql} ${desc ? "DESC" : "ASC"}${tie}`;
		return { sql: `coalesce((array_agg(${argSql} ORDER BY ${order}))[1], ${defaultOf(type)})`, type };
	});
}

function quantileLevel(c: Compiled | undefined): number {
	const q = c?.literal;
	if (q === undefined || q < 0 || q > 1) fail("the quantile level must be a constant between 0 and 1");
	return q as number;
}

function weightedQuantile(level: number, x: Compiled, w: Compiled): Omit<Compiled, "agg"> {
	if (!isNumeric(x.type) || !isNumeric(w.type)) fail("quantileExactWeighted takes numeric arguments");
	return {
		sql: `${SCHEMA}.quantile_exact_weighted(${level}::float8, array_agg(${f8(x)}), array_agg(${f8(w)}))`,
		type: "Float64",
	};
}

const countAgg = aggregate(
	0,
	1,
	([x], call) => {
		if (!x) {
			if (call.distinct) fail("count(DISTINCT …) needs an argument");
			return { sql: "count(*)", type: "UInt64" };
		}
		return { sql: `count(${distinctSql(call)}${x.type === "Bool" ? i8(x) : x.sql})`, type: "UInt64" };
	},
	{ distinct: true },
);

const FUNCTIONS: Record<string, Fn> = {
	// Aggregates.
	count: (call, ctx) => {
		// count(*) is count(): the star is not an expression of its own.
		const star = call.args.length === 1 && call.args[0]?.k === "star";
		return countAgg(star ? { ...call, args: [] } : call, ctx);
	},
	uniq: aggregate(1, 1, ([x]) => ({ sql: `count(DISTINCT ${(x as Compiled).sql})`, type: "UInt64" })),
	uniqexact: aggregate(1, 1, ([x]) => ({ sql: `count(DISTINCT ${(x as Compiled).sql})`, type: "UInt64" })),
	countif: aggregate(1, 1, ([c]) => ({
		sql: `count(*) FILTER (WHERE ${cond(c as Compiled)})`,
		type: "UInt64",
	})),
	sum: aggregate(1, 1, ([x], call) => sumOf(x as Compiled, call), { distinct: true }),
	sumif: aggregate(2, 2, ([x, c], call) =>
		sumOf(x as Compiled, call, ` FILTER (WHERE ${cond(c as Compiled)})`),
	),
	avg: aggregate(1, 1, ([x], call) => avgOf(x as Compiled, call), { distinct: true }),
	avgif: aggregate(2, 2, ([x, c], call) =>
		avgOf(x as Compiled, call, ` FILTER (WHERE ${cond(c as Compiled)})`),
	),
	min: minMax("min"),
	max: minMax("max"),
	argmax: argExtreme(true),
	argmin: argExtreme(false),
	quantileexactweighted: aggregate(
		2,
		2,
		([x, w], call, ctx) => {
			const params = (call.params ?? []).map((p) => compile(p, ctx));
			if (params.length !== 1) fail("quantileExactWeighted takes one parameter: the level");
			return weightedQuantile(quantileLevel(params[0]), x as Compiled, w as Compiled);
		},
		{ params: true },
	),
	// Legacy form quantileWeighted(level, col, weight), computed exactly.
	quantileweighted: aggregate(3, 3, ([q, x, w]) =>
		weightedQuantile(quantileLevel(q), x as Compiled, w as Compiled),
	),

	// Conditionals.
	if: scalar(3, 3, ([c, a, b]) => {
		const { type, sqls } = unify([a as Compiled, b as Compiled]);
		return {
			sql: `(CASE WHEN ${cond(c as Compiled)} THEN ${sqls[0]} ELSE ${sqls[1]} END)`,
			type,
			agg: false,
		};
	}),
	multiif: scalar(3, 99, (args) => {
		if (args.length % 2 === 0) fail("multiIf takes condition/value pairs and a final else value");
		const values = args.filter((_, i) => i % 2 === 1 || i === args.length - 1);
		const { type, sqls } = unify(values);
		const whens = [];
		for (let i = 0; i + 1 < args.length; i += 2) whens.push(`WHEN ${cond(at(args, i))} THEN ${sqls[i / 2]}`);
		return { sql: `(CASE ${whens.join(" ")} ELSE ${sqls[sqls.length - 1]} END)`, type, agg: false };
	}),

	// Date and time.
	now: scalar(0, 0, () => ({ sql: "date_trunc('second', now())", type: "DateTime", agg: false })),
	today: scalar(0, 0, () => ({ sql: "(now() AT TIME ZONE 'UTC')::date", type: "Date", agg: false })),
	todatetime: dateTimeFn((ts) => ts),
	todate: dateTimeFn((ts) => `(${ts} AT TIME ZONE 'UTC')::date`, "Date"),
	tounixtimestamp: dateTimeFn((ts) => `floor(extract(epoch FROM ${ts}))::int8`, "UInt32"),
	tostartofinterval: scalar(2, 3, (args, call) => {
		utcOnly(call.args[2]);
		const iv = at(args, 1).interval ?? fail("toStartOfInterval needs an INTERVAL as its second argument");
		const ts = timestamp(at(args, 0));
		if (iv.n < 1) fail("the interval must be positive");
		if (iv.unit === "MONTH" || iv.unit === "QUARTER" || iv.unit === "YEAR") {
			const months = iv.n * (iv.unit === "YEAR" ? 12 : iv.unit === "QUARTER" ? 3 : 1);
			return { sql: `${SCHEMA}.start_of_months(${ts}, ${months})`, type: "DateTime", agg: false };
		}
		// Weeks start on Monday (1969-12-29 is the Monday before the epoch); the rest count from the epoch.
		const origin = iv.unit === "WEEK" ? "1969-12-29 00:00:00+00" : "1970-01-01 00:00:00+00";
		return {
			sql: `date_bin(${intervalSql(iv.n, iv.unit)}, ${ts}, timestamptz '${origin}')`,
			type: "DateTime",
			agg: false,
		};
	}),
	tostartofminute: truncated("minute"),
	tostartoffiveminutes: binned(5),
	tostartoffiveminute: binned(5),
	tostartoftenminutes: binned(10),
	tostartoffifteenminutes: binned(15),
	tostartofhour: truncated("hour"),
	tostartofday: truncated("day"),
	tostartofweek: truncated("week"),
	tostartofmonth: truncated("month"),
	tostartofyear: truncated("year"),
	toyear: extractFn("year", "UInt16"),
	tomonth: extractFn("month", "UInt8"),
	todayofmonth: extractFn("day", "UInt8"),
	todayofweek: extractFn("isodow", "UInt8"),
	tohour: extractFn("hour", "UInt8"),
	tominute: extractFn("minute", "UInt8"),
	tosecond: dateTimeFn((ts) => `floor(extract(second FROM ${ts}))::int8`, "UInt8"),
	toyyyymm: dateTimeFn(
		(ts) => `(extract(year FROM ${ts}) * 100 + extract(month FROM ${ts}))::int8`,
		"UInt32",
	),

	// Type conversion.
	touint8: toInt("UInt8"),
	touint16: toInt("UInt16"),
	touint32: toInt("UInt32"),
	touint64: toInt("UInt64"),
	toint64: toInt("Int64"),
	tofloat64: scalar(1, 1, ([a]) => {
		const c = a as Compiled;
		if (c.type === "String") return { sql: `(${c.sql})::float8`, type: "Float64", agg: false };
		return { sql: f8(c), type: "Float64", agg: false };
	}),
	tostring: scalar(1, 1, ([a]) => {
		const c = a as Compiled;
		const sql =
			c.type === "String"
				? c.sql
				: c.type === "DateTime"
					? `to_char(${c.sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')`
					: c.type === "Date"
						? `to_char(${c.sql}, 'YYYY-MM-DD')`
						: `(${num(c)})::text`;
		return { sql: `(${sql} COLLATE "C")`, type: "String", agg: false };
	}),

	// Mathematics.
	intdiv: scalar(2, 2, ([a, b]) => {
		const x = a as Compiled;
		const y = b as Compiled;
		if (!isNumeric(x.type) || !isNumeric(y.type)) fail("intDiv takes numeric arguments");
		const unsigned = isInt(x.type) && !isSigned(x.type) && isInt(y.type) && !isSigned(y.type);
		const type: ChType = unsigned ? intType(false, widthOf(x.type)) : "Int64";
		return { sql: `trunc((${num(x)})::numeric / (${num(y)})::numeric)::int8`, type, agg: false };
	}),
	round: rounding("round"),
	floor: rounding("floor"),
	ceil: rounding("ceil"),
	abs: scalar(1, 1, ([a]) => {
		const c = a as Compiled;
		if (!isNumeric(c.type)) fail(`illegal type ${c.type} of argument of abs`);
		const type = c.type === "Float64" ? "Float64" : intType(false, widthOf(c.type));
		return { sql: `abs(${num(c)})`, type, agg: false };
	}),
	sqrt: float1((x) => `sqrt(${x})`),
	exp: float1((x) => `exp(${x})`),
	log: float1((x) => `ln(${x})`),
	ln: float1((x) => `ln(${x})`),
	log2: float1((x) => `log(2::float8, ${x})`),
	log10: float1((x) => `log(${x})`),
	pow: scalar(2, 2, ([a, b]) => ({
		sql: `power(${f8(a as Compiled)}, ${f8(b as Compiled)})`,
		type: "Float64",
		agg: false,
	})),

	// Strings.
	lower: string1("lower"),
	upper: string1("upper"),
	lowerutf8: string1("lower"),
	upperutf8: string1("upper"),
	tolower: string1("lower"),
	toupper: string1("upper"),
	length: scalar(1, 1, ([s]) => ({
		sql: `char_length(${str(s as Compiled)})::int8`,
		type: "UInt64",
		agg: false,
	})),
	lengthutf8: scalar(1, 1, ([s]) => ({
		sql: `char_length(${str(s as Compiled)})::int8`,
		type: "UInt64",
		agg: false,
	})),
	empty: scalar(1, 1, ([s]) => ({ sql: `(${str(s as Compiled)} = '')`, type: "Bool", agg: false })),
	notempty: scalar(1, 1, ([s]) => ({ sql: `(${str(s as Compiled)} <> '')`, type: "Bool", agg: false })),
	startswith: scalar(2, 2, ([s, p]) => ({
		sql: `starts_with(${str(s as Compiled)}, ${str(p as Compiled)})`,
		type: "Bool",
		agg: false,
	})),
	endswith: scalar(2, 2, ([s, p]) => {
		const pat = str(p as Compiled);
		return { sql: `(right(${str(s as Compiled)}, char_length(${pat})) = ${pat})`, type: "Bool", agg: false };
	}),
	position: scalar(2, 2, ([h, n]) => ({
		sql: `strpos(${str(h as Compiled)}, ${str(n as Compiled)})::int8`,
		type: "UInt64",
		agg: false,
	})),
	substring: scalar(2, 3, (args) => {
		const len = args[2] ? `, (${i8(at(args, 2))})::int4` : "";
		return {
			sql: `substr(${str(at(args, 0))}, (${i8(at(args, 1))})::int4${len})`,
			type: "String",
			agg: false,
		};
	}),
	concat: scalar(1, 99, (args) => ({ sql: `(${args.map(str).join(" || ")})`, type: "String", agg: false })),
};
FUNCTIONS.power = FUNCTIONS.pow as Fn;
FUNCTIONS.substr = FUNCTIONS.substring as Fn;
FUNCTIONS.ceiling = FUNCTIONS.ceil as Fn;

const INT64_MAX = 2n ** 63n - 1n;

function numberLiteral(text: string): Compiled {
	if (/^\d+$/.test(text)) {
		const v = BigInt(text);
		if (v > INT64_MAX) fail(`integer literal ${text} is out of range`);
		const type: ChType =
			v <= 255n ? "UInt8" : v <= 65535n ? "UInt16" : v <= 4294967295n ? "UInt32" : "UInt64";
		return { sql: `(${v.toString()}::int8)`, type, agg: false, literal: Number(v) };
	}
	const v = Number(text);
	if (!Number.isFinite(v)) fail(`number literal ${text} is out of range`);
	return { sql: `(${String(v)}::float8)`, type: "Float64", agg: false, literal: v };
}

function useAlias(name: string, entry: AliasEntry, ctx: Ctx): Compiled {
	if (!entry.compiled) {
		entry.resolving = true;
		try {
			entry.compiled = compile(entry.expr, { ...ctx, allowAgg: true, inAgg: false, clause: "SELECT" });
		} finally {
			entry.resolving = false;
		}
	}
	const c = entry.compiled;
	if (c.agg && ctx.inAgg) fail(`alias ${name} is an aggregate, used inside another aggregate function`);
	if (c.agg && !ctx.allowAgg) fail(`alias ${name} is an aggregate, which is not allowed in ${ctx.clause}`);
	return c;
}

function identifier(e: Expr & { k: "ident" }, ctx: Ctx): Compiled {
	if (e.qualifier !== undefined) {
		if (!ctx.scope.qualifiers.has(e.qualifier))
			fail(`unknown table ${e.qualifier} in ${e.qualifier}.${e.name}`);
	} else {
		const alias = ctx.aliases.get(e.name);
		if (alias && !alias.resolving) return useAlias(e.name, alias, ctx);
	}
	const cols = ctx.scope.columns.get(e.name);
	if (!cols) {
		return fail(
			ctx.scope.base
				? `unknown column ${e.name} (columns: dataset, timestamp, _sample_interval, index1, blob1..blob20, double1..double20)`
				: `unknown identifier ${e.name}`,
		);
	}
	if (cols.length > 1) fail(`ambiguous column name ${e.name}`);
	const col = cols[0] as Column;
	return { sql: col.sql, type: col.type, agg: false };
}

function arithmetic(op: string, a: Compiled, b: Compiled): Omit<Compiled, "agg"> {
	if (op === "+" || op === "-") {
		// Date and time arithmetic: ± INTERVAL, ± seconds (days for a Date), and differences.
		const [t, other] = isTime(a.type) ? [a, b] : [b, a];
		if (isTime(t.type) && (op === "+" || t === a)) {
			const sign = op;
			if (other.type === "Interval" && other.interval) {
				const iv = other.sql;
				const dayish = !["SECOND", "MINUTE", "HOUR"].includes(other.interval.unit);
				if (t.type === "Date" && dayish) return { sql: `((${t.sql} ${sign} ${iv}))::date`, type: "Date" };
				return { sql: `(${timestamp(t)} ${sign} ${iv})`, type: "DateTime" };
			}
			if (isInt(other.type)) {
				if (t.type === "Date") return { sql: `(${t.sql} ${sign} (${i8(other)})::int4)`, type: "Date" };
				return { sql: `(${t.sql} ${sign} (${i8(other)}) * interval '1 second')`, type: "DateTime" };
			}
			if (op === "-" && isTime(other.type)) {
				if (t.type === "Date" && other.type === "Date")
					return { sql: `((${a.sql} - ${b.sql}))::int8`, type: "Int64" };
				return {
					sql: `floor(extract(epoch FROM ${timestamp(a)}) - extract(epoch FROM ${timestamp(b)}))::int8`,
					type: "Int64",
				};
			}
		}
	}
	if (!isNumeric(a.type) || !isNumeric(b.type))
		fail(`illegal types ${a.type} and ${b.type} of operator ${op}`);
	if (op === "/") return { sql: `${SCHEMA}.fdiv(${f8(a)}, ${f8(b)})`, type: "Float64" };
	const float = a.type === "Float64" || b.type === "Float64";
	const signed = isSigned(a.type) || isSigned(b.type);
	if (op === "%") {
		if (float) return { sql: `(mod((${f8(a)})::numeric, (${f8(b)})::numeric))::float8`, type: "Float64" };
		// ClickHouse: the remainder of unsigned integers takes the divisor's type.
		return { sql: `(${i8(a)} % ${i8(b)})`, type: signed ? "Int64" : intType(false, widthOf(b.type)) };
	}
	if (float) return { sql: `(${f8(a)} ${op} ${f8(b)})`, type: "Float64" };
	// ClickHouse widens + and * to the next size, and - to the next signed size.
	const bits = 2 * Math.max(widthOf(a.type), widthOf(b.type));
	return { sql: `(${i8(a)} ${op} ${i8(b)})`, type: intType(signed || op === "-", bits) };
}

function compile(e: Expr, ctx: Ctx): Compiled {
	switch (e.k) {
		case "num":
			return numberLiteral(e.text);
		case "str":
			return { sql: ctx.params.text(e.value), type: "String", agg: false };
		case "bool":
			return { sql: e.value ? "true" : "false", type: "Bool", agg: false };
		case "interval":
			return {
				sql: intervalSql(e.n, e.unit),
				type: "Interval",
				agg: false,
				interval: { n: e.n, unit: e.unit },
			};
		case "ident":
			return identifier(e, ctx);
		case "star":
			return fail("* is only allowed as a SELECT item or in count(*)");
		case "neg": {
			const a = compile(e.arg, ctx);
			if (!isNumeric(a.type)) fail(`illegal type ${a.type} of unary minus`);
			const literal = a.literal === undefined ? undefined : -a.literal;
			let type: ChType = "Float64";
			if (a.type !== "Float64") {
				// A negative literal takes the smallest signed type; -x widens an unsigned x.
				const bits = (v: number) => (v >= -128 ? 8 : v >= -32768 ? 16 : v >= -(2 ** 31) ? 32 : 64);
				if (literal !== undefined && e.arg.k === "num") type = intType(true, bits(literal));
				else type = isSigned(a.type) ? a.type : intType(true, 2 * widthOf(a.type));
			}
			return { sql: `(-${num(a)})`, type, agg: a.agg, literal };
		}
		case "not": {
			const a = compile(e.arg, ctx);
			return { sql: `(NOT ${cond(a)})`, type: "Bool", agg: a.agg };
		}
		case "binary": {
			const a = compile(e.left, ctx);
			const b = compile(e.right, ctx);
			const agg = a.agg || b.agg;
			if (e.op === "AND" || e.op === "OR")
				return { sql: `(${cond(a)} ${e.op} ${cond(b)})`, type: "Bool", agg };
			if (["=", "<>", "<", ">", "<=", ">="].includes(e.op)) {
				const [x, y] = comparable(a, b);
				return { sql: `(${x} ${e.op} ${y})`, type: "Bool", agg };
			}
			return { ...arithmetic(e.op, a, b), agg };
		}
		case "in": {
			const a = compile(e.arg, ctx);
			const items = e.list.map((x) => compile(x, ctx));
			const eqs = items.map((item) => comparable(a, item).join(" = "));
			const sql = `(${eqs.join(" OR ")})`;
			return { sql: e.not ? `(NOT ${sql})` : sql, type: "Bool", agg: a.agg || items.some((i) => i.agg) };
		}
		case "between": {
			const a = compile(e.arg, ctx);
			const lo = compile(e.lo, ctx);
			const hi = compile(e.hi, ctx);
			const sql = `(${comparable(a, lo).join(" >= ")} AND ${comparable(a, hi).join(" <= ")})`;
			return { sql: e.not ? `(NOT ${sql})` : sql, type: "Bool", agg: a.agg || lo.agg || hi.agg };
		}
		case "like": {
			const a = compile(e.arg, ctx);
			const p = compile(e.pattern, ctx);
			const op = `${e.not ? "NOT " : ""}${e.ci ? "ILIKE" : "LIKE"}`;
			return { sql: `(${str(a)} ${op} ${str(p)})`, type: "Bool", agg: a.agg || p.agg };
		}
		case "case": {
			if (!e.otherwise) fail("CASE needs an ELSE branch (Analytics Engine has no NULLs)");
			const conds = e.whens.map(([c]) => compile(c, ctx));
			const values = [...e.whens.map(([, v]) => compile(v, ctx)), compile(e.otherwise as Expr, ctx)];
			const { type, sqls } = unify(values);
			const whens = conds.map((c, i) => `WHEN ${cond(c)} THEN ${sqls[i]}`).join(" ");
			const agg = conds.some((c) => c.agg) || values.some((v) => v.agg);
			return { sql: `(CASE ${whens} ELSE ${sqls[sqls.length - 1]} END)`, type, agg };
		}
		case "call": {
			const fn = Object.hasOwn(FUNCTIONS, e.name.toLowerCase()) ? FUNCTIONS[e.name.toLowerCase()] : undefined;
			if (!fn) return fail(`unknown or unsupported function ${e.name}`);
			return fn(e, ctx);
		}
	}
}

interface CompiledSelect {
	sql: string;
	/** The same statement without LIMIT and OFFSET. */
	unlimited: string;
	columns: (OutputColumn & { sql: string })[];
}

function baseScope(table: string, alias: string | undefined): Scope {
	const columns = new Map<string, Column[]>();
	for (const [name, type] of AE_COLUMNS) columns.set(name, [{ sql: `t."${name}"`, type }]);
	return { columns, qualifiers: new Set(alias ? [alias] : [table]), base: true };
}

/** The name ClickHouse would give an unaliased column: here, the expression's text. */
function nameOf(item: SelectItem, sql: string): string {
	if (item.alias !== undefined) return item.alias;
	if (item.expr.k === "ident") return item.expr.name;
	return sql.slice(item.expr.pos, item.expr.end).replace(/\s+/g, " ").trim();
}

function positional(e: Expr, outputs: CompiledSelect["columns"], clause: string): string | undefined {
	if (e.k !== "num" || !/^\d+$/.test(e.text)) return undefined;
	const n = Number(e.text);
	const col = outputs[n - 1];
	if (!col) return fail(`${clause} position ${n} is out of range (1..${outputs.length})`);
	return col.sql;
}

function compileSelect(
	sel: Select,
	source: string,
	params: Params,
	depth: number,
	top: boolean,
): CompiledSelect {
	let scope: Scope = { columns: new Map(), qualifiers: new Set(), base: false };
	let from = "";
	let datasetFilter = "";
	if (sel.from && "table" in sel.from) {
		scope = baseScope(sel.from.table, sel.from.alias);
		from = ` FROM ${TABLE} AS t`;
		datasetFilter = `t."dataset" = ${params.text(sel.from.table)}`;
	} else if (sel.from) {
		const inner = compileSelect(sel.from.sub, source, params, depth + 1, false);
		const alias = `s${depth}`;
		const columns = new Map<string, Column[]>();
		inner.columns.forEach((c, i) => {
			const list = columns.get(c.name) ?? [];
			list.push({ sql: `${alias}."c${i}"`, type: c.type });
			columns.set(c.name, list);
		});
		scope = { columns, qualifiers: new Set(sel.from.alias ? [sel.from.alias] : []), base: false };
		from = ` FROM (${inner.sql}) AS ${alias}`;
	}

	const aliases = new Map<string, AliasEntry>();
	for (const item of sel.items) {
		if (item.alias === undefined) continue;
		if (aliases.has(item.alias)) fail(`multiple expressions for the alias ${item.alias}`);
		aliases.set(item.alias, { expr: item.expr, resolving: false });
	}
	const ctx = (clause: string, allowAgg: boolean): Ctx => ({
		scope,
		aliases,
		params,
		allowAgg,
		inAgg: false,
		clause,
	});

	const outputs: CompiledSelect["columns"] = [];
	for (const item of sel.items) {
		if (item.expr.k === "star") {
			if (scope.columns.size === 0) fail("SELECT * needs a FROM clause");
			for (const [name, cols] of scope.columns)
				for (const c of cols) outputs.push({ name, type: c.type, sql: c.sql });
			continue;
		}
		const c =
			item.alias !== undefined
				? useAlias(item.alias, aliases.get(item.alias) as AliasEntry, ctx("SELECT", true))
				: compile(item.expr, ctx("SELECT", true));
		if (c.type === "Interval") fail("an INTERVAL cannot be selected");
		outputs.push({ name: nameOf(item, source), type: c.type, sql: c.sql });
	}

	const parts = [`SELECT ${outputs.map((o, i) => `${o.sql} AS "c${i}"`).join(", ")}`];
	const counted = top && (sel.limit !== undefined || sel.offset !== undefined);
	if (counted) parts[0] += `, count(*) OVER () AS "rows_before_limit"`;
	parts.push(from);
	const where = sel.where ? cond(compile(sel.where, ctx("WHERE", false))) : "";
	const filters = [datasetFilter, where].filter(Boolean);
	if (filters.length > 0) parts.push(` WHERE ${filters.join(" AND ")}`);
	if (sel.groupBy.length > 0) {
		const keys = sel.groupBy.map((g) => {
			const pos = positional(g, outputs, "GROUP BY");
			if (pos !== undefined) return pos;
			const c = compile(g, ctx("GROUP BY", false));
			if (c.type === "Interval") fail("cannot group by an INTERVAL");
			return c.sql;
		});
		parts.push(` GROUP BY ${keys.join(", ")}`);
	}
	if (sel.having) parts.push(` HAVING ${cond(compile(sel.having, ctx("HAVING", true)))}`);
	if (sel.orderBy.length > 0) {
		const keys = sel.orderBy.map((o) => {
			let sql = positional(o.expr, outputs, "ORDER BY");
			if (sql === undefined) {
				const c = compile(o.expr, ctx("ORDER BY", true));
				if (c.type === "Interval") fail("cannot order by an INTERVAL");
				sql = c.sql;
			}
			return `${sql} ${o.desc ? "DESC" : "ASC"}`;
		});
		parts.push(` ORDER BY ${keys.join(", ")}`);
	}
	const unlimited = parts.join("");
	if (sel.limit !== undefined) parts.push(` LIMIT ${sel.limit}`);
	if (sel.offset !== undefined) parts.push(` OFFSET ${sel.offset}`);
	return { sql: parts.join(""), unlimited, columns: outputs };
}

// SHOW TABLES: the distinct datasets by a loose index scan over (dataset, timestamp).
const SHOW_TABLES = `WITH RECURSIVE d AS (
  (SELECT dataset FROM ${TABLE} ORDER BY dataset LIMIT 1)
  UNION ALL
  SELECT (SELECT dataset FROM ${TABLE} WHERE dataset > d.dataset ORDER BY dataset LIMIT 1) FROM d WHERE d.dataset IS NOT NULL
) SELECT dataset AS "c0" FROM d WHERE dataset IS NOT NULL`;

/** Parses, checks and translates one AE SQL statement; AeSqlError for anything outside the subset. */
export function translate(sql: string): Translation {
	const stmt = parseStatement(sql);
	if (stmt.kind === "show") {
		if (stmt.what === "tables") {
			return {
				sql: SHOW_TABLES,
				params: [],
				columns: [{ name: "dataset", type: "String" }],
				format: stmt.format,
				counted: false,
			};
		}
		const tz =
			stmt.what === "timezone"
				? `SELECT 'Etc/UTC'::text AS "c0"`
				: `SELECT name AS "c0" FROM pg_timezone_names ORDER BY name COLLATE "C"`;
		return {
			sql: tz,
			params: [],
			columns: [{ name: "timezone", type: "String" }],
			format: stmt.format,
			counted: false,
		};
	}
	const params = new Params();
	const compiled = compileSelect(stmt.select, sql, params, 1, true);
	const counted = stmt.select.limit !== undefined || stmt.select.offset !== undefined;
	return {
		sql: compiled.sql,
		params: params.values,
		columns: compiled.columns.map(({ name, type }) => ({ name, type })),
		format: stmt.format,
		counted,
		countSql: counted ? `SELECT count(*) FROM (${compiled.unlimited}) AS q` : undefined,
	};
}

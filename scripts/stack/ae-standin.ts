// Local stand-in for Workers Analytics Engine, over a real Postgres. AE has no local storage (the
// workerd binding is a no-op), so the Worker copies its datapoints to a sink (AE_SINK_URL) and
// reads them back through AE's SQL API (AE_SQL_URL). One HTTP port serves both:
//   POST /ingest                                             the sink: a SinkBatch (src/lib/metrics.ts)
//   POST /client/v4/accounts/<any>/analytics_engine/sql      the SQL API: raw SQL body, bearer token
//   GET  /__sql-count/<account>                              SQL API calls made for that account id (tests)
// Rows live in analytics_engine.data_points (created idempotently). Queries are parsed and
// translated by ae-sql-parser.ts / ae-sql.ts: the documented AE dialect subset only; anything
// else is 422 "Input was invalid: …", and no query text ever reaches Postgres.
// Past 400 lines: schema, sink validation, AE's output formats and the server only make sense
// together; the SQL dialect itself lives in ae-sql-parser.ts and ae-sql.ts.
// Wire facts: /work/shared/research/protocols.md §3 and §5.
//
// Decisions where AE's behaviour is undocumented or unverifiable locally:
// - JSON and JSONEachRow quote 64-bit integers (count(), sums of integers: "UInt64"), as
//   ClickHouse does by default; narrower integers and Float64 are JSON numbers, nan/inf are null
//   (TabSeparated: nan, inf); DateTime is 'YYYY-MM-DD hh:mm:ss' in UTC, Date 'YYYY-MM-DD'.
// - timestamp is stored to the whole second (AE's DateTime); now() is truncated likewise.
// - argMax/argMin ties (same timestamp) go to the latest written row (the hidden _seq column).
// - Every name is a table: a dataset never written reads as empty. SHOW TABLES answers one
//   column "dataset"; SHOW TIMEZONE is Etc/UTC, and only UTC is accepted as a time zone argument.
// - An unaliased column is named by its expression's text (ClickHouse would print e.g. plus(1, 2)).
// - The sink accepts `sampleInterval` per point (default 1): a stand-in extension for tests,
//   since AE sets _sample_interval itself when it samples. The Worker never sends it.
// - Errors: 401 in the Cloudflare v4 envelope; 422 text/plain "Input was invalid: …" for any
//   query problem (Postgres' rejections of a translated query included); 400 text for a bad
//   batch; 503 text when Postgres itself fails.
// CLI: node scripts/stack/ae-standin.ts --port 8788 --database postgresql://… --token T
import { createHash, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import pg from "pg";
import { AeSqlError, BLOB_COLUMNS, type ChType, DOUBLE_COLUMNS, SCHEMA, TABLE, translate } from "./ae-sql.ts";

export interface AeStandIn {
	port: number;
	/** AE_SINK_URL: where the Worker posts its datapoints. */
	sinkUrl: string;
	/** AE_SQL_URL: the SQL API, account id "local". */
	sqlUrl: string;
	close(): Promise<void>;
}

const MAX_SQL_BYTES = 1024 * 1024;
const MAX_INGEST_BYTES = 16 * 1024 * 1024;
const MAX_POINTS = 10_000;
const QUERY_TIMEOUT_MS = 15_000;
// AE's write limits (limits.mdx): one index of ≤ 96 bytes, 20 blobs of ≤ 16 KB in all, 20 doubles.
const MAX_INDEX_BYTES = 96;
const MAX_BLOB_BYTES = 16 * 1024;
const DATASET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_TIMESTAMP_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

const blobCols = Array.from({ length: BLOB_COLUMNS }, (_, i) => `blob${i + 1}`);
const doubleCols = Array.from({ length: DOUBLE_COLUMNS }, (_, i) => `double${i + 1}`);

// Idempotent, serialised by an advisory lock so concurrent starts on one database do not race.
// Timestamps are DateTime in AE (whole seconds); _seq is the stand-in's own write order, used only
// to break argMax/argMin ties. Text columns use the C collation: ClickHouse compares bytes.
const SCHEMA_DDL = [
	`SELECT pg_advisory_xact_lock(hashtext('gitinsight analytics_engine stand-in'))`,
	`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`,
	`CREATE TABLE IF NOT EXISTS ${TABLE} (
		_seq bigint GENERATED ALWAYS AS IDENTITY,
		dataset text COLLATE "C" NOT NULL,
		"timestamp" timestamptz NOT NULL,
		_sample_interval bigint NOT NULL DEFAULT 1,
		index1 text COLLATE "C" NOT NULL DEFAULT '',
		${blobCols.map((c) => `${c} text COLLATE "C" NOT NULL DEFAULT ''`).join(",\n\t\t")},
		${doubleCols.map((c) => `${c} double precision NOT NULL DEFAULT 0`).join(",\n\t\t")}
	)`,
	`CREATE INDEX IF NOT EXISTS data_points_dataset_timestamp ON ${TABLE} (dataset, "timestamp")`,
	// ClickHouse's `/` on floats: x/0 is ±inf or nan, never an error.
	`CREATE OR REPLACE FUNCTION ${SCHEMA}.fdiv(a float8, b float8) RETURNS float8
		LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
		SELECT CASE WHEN b <> 0 THEN a / b WHEN a > 0 THEN 'Infinity'::float8
			WHEN a < 0 THEN '-Infinity'::float8 ELSE 'NaN'::float8 END $$`,
	// toDateTime(string): unix seconds or 'YYYY-MM-DD[ hh:mm:ss]' in UTC; anything else is an error.
	`CREATE OR REPLACE FUNCTION ${SCHEMA}.to_datetime(s text) RETURNS timestamptz
		LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
		BEGIN
			IF s ~ '^\\s*[0-9]{1,12}\\s*$' THEN RETURN to_timestamp(trim(s)::float8); END IF;
			IF s ~ '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?\\s*$' THEN
				RETURN trim(s)::timestamp AT TIME ZONE 'UTC';
			END IF;
			RAISE EXCEPTION 'cannot parse DateTime from %', quote_literal(s) USING ERRCODE = '22007';
		END $$`,
	// ClickHouse's QuantileExactWeighted::get: sort by value, the first value whose cumulative
	// weight reaches ceil(total × level), else the largest; nan when empty.
	`CREATE OR REPLACE FUNCTION ${SCHEMA}.quantile_exact_weighted(level float8, vals float8[], weights float8[])
		RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
		WITH g AS (SELECT v, sum(w) AS w FROM unnest(vals, weights) AS u(v, w) GROUP BY v),
			c AS (SELECT v, sum(w) OVER (ORDER BY v) AS acc, sum(w) OVER () AS total FROM g)
		SELECT coalesce((SELECT v FROM c WHERE acc >= ceil(total * level) ORDER BY v LIMIT 1),
			(SELECT max(v) FROM c), 'NaN'::float8) $$`,
	// toStartOfInterval for MONTH/QUARTER/YEAR: whole n-month steps counted from 1970-01.
	`CREATE OR REPLACE FUNCTION ${SCHEMA}.start_of_months(ts timestamptz, n int) RETURNS timestamptz
		LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
		SELECT (timestamp '1970-01-01' + make_interval(months => m - (((m % n) + n) % n))) AT TIME ZONE 'UTC'
		FROM (SELECT ((extract(year FROM ts AT TIME ZONE 'UTC')::int - 1970) * 12
			+ extract(month FROM ts AT TIME ZONE 'UTC')::int - 1) AS m) AS x $$`,
];

// One INSERT per batch: the points travel as one JSON array of [ms, interval, index, blobs…, doubles…].
const INSERT_SQL = `INSERT INTO ${TABLE} (dataset, "timestamp", _sample_interval, index1, ${[...blobCols, ...doubleCols].join(", ")})
SELECT $1::text, to_timestamp(floor((p->>0)::float8 / 1000)), (p->>1)::int8, p->>2, ${[
	...blobCols.map((_, i) => `p->>${3 + i}`),
	...doubleCols.map((_, i) => `(p->>${3 + BLOB_COLUMNS + i})::float8`),
].join(", ")}
FROM json_array_elements($2::json) AS p`;

class HttpError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

type Row = (string | number)[];

function isRecord(v: unknown): v is Record<string, unknown> {
	return typeof v === "object" && v !== null && !Array.isArray(v);
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

/** Validates a SinkBatch. `sampleInterval` (a whole number ≥ 1, default 1) is a stand-in extension. */
export function parseSinkBatch(body: unknown): { dataset: string; rows: Row[] } {
	const bad = (msg: string): never => {
		throw new HttpError(400, `invalid batch: ${msg}`);
	};
	if (!isRecord(body)) return bad("expected an object {dataset, points}");
	const { dataset, points } = body;
	if (typeof dataset !== "string" || !DATASET_NAME.test(dataset)) {
		bad("dataset must be an identifier ([A-Za-z_][A-Za-z0-9_]{0,63})");
	}
	if (!Array.isArray(points)) return bad("points must be an array");
	if (points.length > MAX_POINTS) bad(`at most ${MAX_POINTS} points per batch`);
	const allowed = new Set(["timestamp", "indexes", "blobs", "doubles", "sampleInterval"]);
	const rows = points.map((p: unknown, i): Row => {
		const at = `points[${i}]`;
		if (!isRecord(p)) return bad(`${at} must be an object`);
		const extra = Object.keys(p).find((k) => !allowed.has(k));
		if (extra) bad(`${at} has an unknown field ${JSON.stringify(extra)}`);
		const { timestamp, indexes = [], blobs = [], doubles = [], sampleInterval = 1 } = p;
		if (
			typeof timestamp !== "number" ||
			!Number.isFinite(timestamp) ||
			timestamp < 0 ||
			timestamp > MAX_TIMESTAMP_MS
		) {
			bad(`${at}.timestamp must be milliseconds since the epoch`);
		}
		if (!Number.isSafeInteger(sampleInterval) || (sampleInterval as number) < 1) {
			bad(`${at}.sampleInterval must be a whole number ≥ 1`);
		}
		if (!Array.isArray(indexes) || indexes.length > 1) bad(`${at}.indexes: AE takes at most one index`);
		const index = (indexes as unknown[])[0] ?? "";
		if (typeof index !== "string" || utf8Bytes(index) > MAX_INDEX_BYTES) {
			bad(`${at}.indexes[0] must be a string of at most ${MAX_INDEX_BYTES} bytes`);
		}
		if (!Array.isArray(blobs) || blobs.length > BLOB_COLUMNS) bad(`${at}.blobs: at most ${BLOB_COLUMNS}`);
		const blobValues = (blobs as unknown[]).map((b) => (b === null ? "" : b));
		if (!blobValues.every((b): b is string => typeof b === "string")) bad(`${at}.blobs must be strings`);
		if ((blobValues as string[]).reduce((n, b) => n + utf8Bytes(b), 0) > MAX_BLOB_BYTES) {
			bad(`${at}.blobs: at most ${MAX_BLOB_BYTES} bytes in all`);
		}
		if ([index, ...(blobValues as string[])].some((s) => (s as string).includes("\0"))) {
			bad(`${at}: NUL characters are not supported`);
		}
		if (!Array.isArray(doubles) || doubles.length > DOUBLE_COLUMNS)
			bad(`${at}.doubles: at most ${DOUBLE_COLUMNS}`);
		if (!(doubles as unknown[]).every((d) => typeof d === "number" && Number.isFinite(d))) {
			bad(`${at}.doubles must be finite numbers`);
		}
		const blobRow = Array.from({ length: BLOB_COLUMNS }, (_, j) => (blobValues as string[])[j] ?? "");
		const doubleRow = Array.from({ length: DOUBLE_COLUMNS }, (_, j) => (doubles as number[])[j] ?? 0);
		return [timestamp as number, sampleInterval as number, index as string, ...blobRow, ...doubleRow];
	});
	return { dataset: dataset as string, rows };
}

// ---- Query results, rendered as AE (ClickHouse) does ----

type Cell = string | number | null;

/** JSON value: 64-bit integers quoted (ClickHouse's output_format_json_quote_64bit_integers=1). */
function jsonCell(type: ChType, raw: string | null): Cell {
	if (raw === null) return null;
	switch (type) {
		case "UInt64":
		case "Int64":
		case "String":
		case "Date":
			return raw;
		case "Bool":
			return raw === "t" ? 1 : 0;
		case "UInt8":
		case "UInt16":
		case "UInt32":
		case "Int8":
		case "Int16":
		case "Int32":
			return Number(raw);
		case "Float64": {
			const v = Number(raw);
			return Number.isFinite(v) ? v : null; // nan/inf: null, as ClickHouse's JSON does
		}
		case "DateTime":
			// Postgres (DateStyle ISO, TimeZone UTC) prints "YYYY-MM-DD hh:mm:ss[.fff]+00".
			return raw.slice(0, 19);
		case "Interval":
			return raw;
	}
}

const TSV_ESCAPES: Record<string, string> = {
	"\\": "\\\\",
	"\t": "\\t",
	"\n": "\\n",
	"\r": "\\r",
	"\0": "\\0",
	"\b": "\\b",
	"\f": "\\f",
	"'": "\\'",
};

function tsvCell(type: ChType, raw: string | null): string {
	if (raw === null) return "\\N";
	if (type === "Float64") {
		const v = Number(raw);
		return Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : String(v);
	}
	const v = jsonCell(type, raw);
	return String(v).replace(/[\\\t\n\r\0\b\f']/g, (c) => TSV_ESCAPES[c] ?? c);
}

interface Rendered {
	contentType: string;
	body: string;
}

function render(
	format: "JSON" | "JSONEachRow" | "TabSeparated",
	columns: { name: string; type: ChType }[],
	rows: (string | null)[][],
	rowsBeforeLimit: number,
): Rendered {
	if (format === "TabSeparated") {
		const body = rows.map((r) => columns.map((c, i) => tsvCell(c.type, r[i] ?? null)).join("\t")).join("\n");
		return { contentType: "text/tab-separated-values; charset=UTF-8", body: rows.length ? `${body}\n` : "" };
	}
	const objects = rows.map((r) =>
		Object.fromEntries(columns.map((c, i) => [c.name, jsonCell(c.type, r[i] ?? null)])),
	);
	if (format === "JSONEachRow") {
		return {
			contentType: "application/x-ndjson; charset=UTF-8",
			body: objects.map((o) => `${JSON.stringify(o)}\n`).join(""),
		};
	}
	const meta = columns.map((c) => ({ name: c.name, type: c.type === "Bool" ? "UInt8" : c.type }));
	return {
		contentType: "application/json; charset=UTF-8",
		body: JSON.stringify({
			meta,
			data: objects,
			rows: rows.length,
			rows_before_limit_at_least: rowsBeforeLimit,
		}),
	};
}

// ---- Server ----

const AUTH_ERROR = JSON.stringify({
	success: false,
	errors: [{ code: 10000, message: "Authentication error" }],
	messages: [],
	result: null,
});
const SQL_PATH = /^\/client\/v4\/accounts\/[^/]+\/analytics_engine\/sql\/?$/;
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of req as AsyncIterable<Buffer>) {
		size += chunk.length;
		if (size > 4 * limit) req.destroy();
		else if (size <= limit) chunks.push(chunk);
	}
	if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
	return Buffer.concat(chunks);
}

/** Postgres failures that are the server's (connection, resources), not the query's. */
function serverSide(err: unknown): boolean {
	const code = (err as { code?: unknown }).code;
	if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
	return /^(08|28|3D|53|58|XX)/.test(code) || /^57P/.test(code);
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

export async function startAeStandIn(opts: {
	databaseUrl: string;
	token: string;
	port?: number;
	host?: string;
}): Promise<AeStandIn> {
	const host = opts.host ?? "127.0.0.1";
	const tokenDigest = digest(opts.token);
	const session = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1";
	const writer = new pg.Pool({ connectionString: opts.databaseUrl, max: 4, options: session });
	// Queries run read-only with a time limit: a second line of defence behind the translator.
	const reader = new pg.Pool({
		connectionString: opts.databaseUrl,
		max: 4,
		types: RAW_TEXT,
		options: `${session} -c default_transaction_read_only=on -c statement_timeout=${QUERY_TIMEOUT_MS}`,
	});
	const logIdle = (err: Error) => console.warn(`[ae-standin] postgres: ${err.message}`);
	writer.on("error", logIdle);
	reader.on("error", logIdle);

	try {
		const client = await writer.connect();
		try {
			await client.query("BEGIN");
			await client.query("SET LOCAL client_min_messages = warning");
			for (const ddl of SCHEMA_DDL) await client.query(ddl);
			await client.query("COMMIT");
		} catch (err) {
			await client.query("ROLLBACK").catch(() => undefined);
			throw err;
		} finally {
			client.release();
		}
	} catch (err) {
		await Promise.all([writer.end(), reader.end()]);
		throw err;
	}

	async function ingest(req: IncomingMessage): Promise<[number, string, string]> {
		let body: unknown;
		try {
			body = JSON.parse((await readBody(req, MAX_INGEST_BYTES)).toString("utf8"));
		} catch (err) {
			if (err instanceof HttpError) throw err;
			throw new HttpError(400, "invalid batch: body is not JSON");
		}
		const { dataset, rows } = parseSinkBatch(body);
		if (rows.length > 0) await writer.query(INSERT_SQL, [dataset, JSON.stringify(rows)]);
		return [204, "text/plain; charset=utf-8", ""];
	}

	async function sql(req: IncomingMessage): Promise<[number, string, string]> {
		const text = (await readBody(req, MAX_SQL_BYTES)).toString("utf8");
		let t: ReturnType<typeof translate>;
		try {
			t = translate(text);
		} catch (err) {
			// The translator only throws AeSqlError by design; anything else is still the input's doing.
			const message =
				err instanceof AeSqlError ? err.message : `could not translate the query (${String(err)})`;
			throw new HttpError(422, `Input was invalid: ${message}`);
		}
		try {
			const result = await reader.query<(string | null)[]>({
				text: t.sql,
				values: t.params,
				rowMode: "array",
			});
			let rows = result.rows;
			let before = rows.length;
			if (t.counted) {
				// The last column is count(*) OVER (): the row count before LIMIT/OFFSET.
				before = rows.length > 0 ? Number(rows[0]?.[t.columns.length]) : 0;
				if (rows.length === 0 && t.countSql) {
					const counted = await reader.query<string[]>({
						text: t.countSql,
						values: t.params,
						rowMode: "array",
					});
					before = Number(counted.rows[0]?.[0] ?? 0);
				}
				rows = rows.map((r) => r.slice(0, t.columns.length));
			}
			const out = render(t.format, t.columns, rows, before);
			return [200, out.contentType, out.body];
		} catch (err) {
			if (serverSide(err)) throw err;
			const message = err instanceof Error ? err.message : String(err);
			throw new HttpError(422, `Input was invalid: ${message}`);
		}
	}

	// SQL API calls per account id of the URL (tests pick their own: GET /__sql-count/<account>).
	const sqlCalls = new Map<string, number>();

	async function handle(req: IncomingMessage): Promise<[number, string, string]> {
		const path = new URL(req.url ?? "/", "http://localhost").pathname;
		const asked = /^\/__sql-count\/([^/]+)$/.exec(path);
		if (asked?.[1]) return [200, "application/json", JSON.stringify({ count: sqlCalls.get(asked[1]) ?? 0 })];
		if (path === "/ingest") {
			if (req.method !== "POST") throw new HttpError(405, "method not allowed: POST only");
			return ingest(req);
		}
		if (SQL_PATH.test(path)) {
			const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
			if (bearer === undefined || !timingSafeEqual(digest(bearer), tokenDigest)) {
				return [401, "application/json", AUTH_ERROR];
			}
			if (req.method !== "POST") throw new HttpError(405, "method not allowed: POST the SQL as the body");
			const account = path.split("/")[4] ?? "";
			sqlCalls.set(account, (sqlCalls.get(account) ?? 0) + 1);
			return sql(req);
		}
		throw new HttpError(404, `not found: ${path}`);
	}

	const server = createServer((req, res) => {
		handle(req)
			.catch((err: unknown): [number, string, string] => {
				if (err instanceof HttpError) return [err.status, "text/plain; charset=utf-8", err.message];
				const message = err instanceof Error ? err.message : String(err);
				console.warn(`[ae-standin] ${req.method} ${req.url}: ${message}`);
				return [503, "text/plain; charset=utf-8", `Service unavailable: Postgres failed: ${message}`];
			})
			.then(([status, contentType, body]) => {
				if (res.headersSent || res.destroyed) return;
				if (status === 405) res.setHeader("allow", "POST");
				res.writeHead(status, status === 204 ? {} : { "content-type": contentType });
				res.end(status === 204 ? undefined : body);
			})
			.catch(() => res.destroy());
	});
	server.on("clientError", (_err, socket) => socket.destroy());
	server.listen(opts.port ?? 0, host);
	await once(server, "listening").catch(async (err: unknown) => {
		await Promise.all([writer.end(), reader.end()]);
		throw err;
	});
	const { port } = server.address() as AddressInfo;
	const base = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

	let closing: Promise<void> | undefined;
	return {
		port,
		sinkUrl: `${base}/ingest`,
		sqlUrl: `${base}/client/v4/accounts/local/analytics_engine/sql`,
		close() {
			closing ??= (async () => {
				const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
				server.closeAllConnections();
				await stopped;
				await Promise.all([writer.end(), reader.end()]);
			})();
			return closing;
		},
	};
}

if (import.meta.main) {
	const { values } = parseArgs({
		options: {
			port: { type: "string", default: "8788" },
			host: { type: "string", default: "127.0.0.1" },
			database: { type: "string", default: process.env.DATABASE_URL },
			token: { type: "string", default: process.env.AE_API_TOKEN },
		},
	});
	if (!values.database) throw new Error("--database (or DATABASE_URL) is required");
	if (!values.token) throw new Error("--token (or AE_API_TOKEN) is required");
	const standIn = await startAeStandIn({
		databaseUrl: values.database,
		token: values.token,
		host: values.host,
		port: Number(values.port),
	});
	console.log(`[ae-standin] sink ${standIn.sinkUrl}, SQL API ${standIn.sqlUrl}`);
	const stop = (): void => void standIn.close().finally(() => process.exit(0));
	process.once("SIGINT", stop);
	process.once("SIGTERM", stop);
}

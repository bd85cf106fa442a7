// Neon SQL-over-HTTP (`POST /sql`), the endpoint behind `neon()` and drizzle-orm/neon-http, served
// from node-postgres against a local Postgres. Owns request parsing, the per-(user, database)
// connection pools, batch transactions and the exact response/error JSON the driver parses.
// The HTTP server itself and the WebSocket relay live in neon-standin.ts, and so does the fault
// control endpoint; this file applies a fault registered for the connection string's host
// (see faults.ts): "fail" answers 503 as Neon does when it cannot reach the compute, "delay"
// runs the query delayMs late (or when the fault is cleared), "hang" does not answer until the
// client gives up or the fault is cleared (then it answers as "fail").
// Wire facts: /work/shared/research/protocols.md §2.2 (mirrors Neon's proxy sql_over_http.rs).
import type { IncomingMessage, ServerResponse } from "node:http";
import pg from "pg";
import type { FaultRegistry } from "./faults.ts";

const MAX_BODY_BYTES = 10 * 1024 * 1024;
// An oversized body is still read (and dropped) up to this much before the 413: answering while
// the client is still uploading makes it fail on the write ("connection lost") instead of
// reading the 413. Past this, the connection is simply closed.
const DRAIN_LIMIT_BYTES = 4 * MAX_BODY_BYTES;
// Neon answers 507 when a response would exceed its buffer (10 MiB in its older code).
const MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const POOL_MAX = 8;

// Raw text output (the driver always sends Neon-Raw-Text-Output: true and parses values itself from
// dataTypeID), so every type parser is the identity: values stay Postgres's text representation.
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

// node-postgres switches to the simple protocol when a query has no parameters; Neon always uses
// the extended one (so a multi-statement string fails the same way). @types/pg lacks `queryMode`.
type ExtendedArrayQuery = pg.QueryArrayConfig<(string | null)[]> & { queryMode: "extended" };

const ISOLATION_LEVELS: Record<string, string> = {
	ReadUncommitted: "READ UNCOMMITTED",
	ReadCommitted: "READ COMMITTED",
	RepeatableRead: "REPEATABLE READ",
	Serializable: "SERIALIZABLE",
};

// The 16 Postgres ErrorResponse fields the driver copies onto NeonDbError, after `message`.
const ERROR_FIELDS = [
	"code",
	"detail",
	"hint",
	"position",
	"internalPosition",
	"internalQuery",
	"severity",
	"where",
	"table",
	"column",
	"schema",
	"dataType",
	"constraint",
	"file",
	"line",
	"routine",
] as const;

/** An error answered with a status and the error JSON, without touching Postgres. */
class RequestError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

interface SqlQuery {
	query: string;
	params: (string | null)[];
}

interface ConnInfo {
	user: string;
	password: string;
	database: string;
	applicationName: string | undefined;
	options: string | undefined;
}

export interface SqlOverHttp {
	handle(req: IncomingMessage, res: ServerResponse): void;
	close(): Promise<void>;
}

/** The host of a Neon-Connection-String: the scope of the faults that apply to the request. */
export function connectionStringHost(value: string | undefined): string | undefined {
	if (!value) return undefined;
	try {
		return new URL(value).hostname.toLowerCase() || undefined;
	} catch {
		return undefined;
	}
}

export function createSqlOverHttp(upstream: {
	pgHost: string;
	pgPort: number;
	faults?: FaultRegistry;
}): SqlOverHttp {
	const pools = new Map<string, pg.Pool>();

	function poolFor(info: ConnInfo): pg.Pool {
		const key = JSON.stringify(info);
		let pool = pools.get(key);
		if (!pool) {
			pool = new pg.Pool({
				host: upstream.pgHost,
				port: upstream.pgPort,
				user: info.user,
				password: info.password,
				database: info.database,
				application_name: info.applicationName ?? "neon-standin",
				...(info.options ? { options: info.options } : {}),
				max: POOL_MAX,
				idleTimeoutMillis: 10_000,
				allowExitOnIdle: true,
			});
			// An idle client that dies (pg_terminate_backend, server restart) is dropped by the pool;
			// without a listener the 'error' event would crash the process.
			pool.on("error", () => {});
			pools.set(key, pool);
		}
		return pool;
	}

	async function execute(req: IncomingMessage, body: Buffer): Promise<{ status: number; json: unknown }> {
		const info = parseConnectionString(header(req, "neon-connection-string"));
		const parsed = parseBody(body);
		const arrayMode = header(req, "neon-array-mode") === "true";
		const client = await poolFor(info).connect();
		let broken = false;
		try {
			if ("queries" in parsed) {
				const begin = beginStatement(req);
				await client.query(begin);
				try {
					const results = [];
					for (const q of parsed.queries) results.push(toJson(await run(client, q), arrayMode));
					await client.query("COMMIT");
					return { status: 200, json: { results } };
				} catch (err) {
					// The whole batch is one transaction: any failure rolls back everything before it.
					await client.query("ROLLBACK").catch(() => {
						broken = true;
					});
					throw err;
				}
			}
			return { status: 200, json: toJson(await run(client, parsed), arrayMode) };
		} catch (err) {
			// A DatabaseError leaves the connection usable; anything else (socket loss, protocol
			// trouble) may not, so that connection must not go back to the pool.
			if (!(err instanceof pg.DatabaseError)) broken = true;
			throw err;
		} finally {
			await release(client, broken);
		}
	}

	function handle(req: IncomingMessage, res: ServerResponse): void {
		const cors = { "access-control-allow-origin": "*" };
		if (req.method === "OPTIONS") {
			res.writeHead(204, {
				...cors,
				"access-control-allow-methods": "POST, OPTIONS",
				"access-control-allow-headers": "*",
				"access-control-max-age": "86400",
			});
			res.end();
			return;
		}
		const reply = (status: number, json: unknown) => {
			// The client may have given up (a delayed or slow request): nobody to answer.
			if (res.destroyed) return;
			const text = JSON.stringify(json);
			if (Buffer.byteLength(text) > MAX_RESPONSE_BYTES) {
				res.writeHead(507, { ...cors, "content-type": "text/plain" });
				res.end(`response is too large (max is ${MAX_RESPONSE_BYTES} bytes)`);
				return;
			}
			const echoed: Record<string, string> = {};
			for (const name of ["neon-batch-isolation-level", "neon-batch-read-only", "neon-batch-deferrable"]) {
				const value = header(req, name);
				if (value !== undefined) echoed[name] = value;
			}
			res.writeHead(status, { ...cors, ...echoed, "content-type": "application/json" });
			res.end(text);
		};
		const path = new URL(req.url ?? "/", "http://x").pathname;
		let refusal: [number, string] | undefined;
		if (path !== "/sql") refusal = [404, `no route for ${path}`];
		else if (req.method !== "POST") refusal = [405, "only POST is supported"];
		else if (Number(req.headers["content-length"] ?? 0) > DRAIN_LIMIT_BYTES) {
			// Too big even to drain: refuse before reading; the unread body makes the connection
			// unusable afterwards.
			res.setHeader("connection", "close");
			refusal = [413, `request body is larger than ${MAX_BODY_BYTES} bytes`];
		}
		if (refusal) {
			reply(refusal[0], errorJson(new Error(refusal[1])));
			return;
		}
		// Count as the body arrives (chunked bodies have no length up front); past the limit, drain
		// (up to DRAIN_LIMIT_BYTES) and answer 413 at the end.
		const chunks: Buffer[] = [];
		let size = 0;
		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > DRAIN_LIMIT_BYTES) req.destroy();
			else if (size <= MAX_BODY_BYTES) chunks.push(chunk);
		});
		req.on("error", () => res.destroy());
		req.on("end", () => {
			if (size > MAX_BODY_BYTES) {
				reply(413, errorJson(new Error(`request body is larger than ${MAX_BODY_BYTES} bytes`)));
				return;
			}
			const body = Buffer.concat(chunks);
			const host = connectionStringHost(header(req, "neon-connection-string"));
			const { faults } = upstream;
			const fault = host === undefined ? undefined : faults?.get(host);
			// What the driver sees when Neon cannot reach the compute: a 5xx with the error JSON (the
			// driver reads it as "Server error (HTTP status 503): …").
			const unreachable = () =>
				reply(503, errorJson(new Error("Couldn't connect to compute node (fault injected)")));
			if (fault?.mode === "hang" && faults && host !== undefined) {
				// No answer until the client gives up; when the fault is cleared or changed, or the
				// stand-in closes, a request still held gets the "fail" answer (a clean end).
				res.on("close", faults.hold(host, unreachable));
				return;
			}
			if (fault?.mode === "fail") {
				unreachable();
				return;
			}
			const delay =
				fault?.mode === "delay" && faults && host !== undefined
					? faults.delay(host, fault.delayMs)
					: Promise.resolve();
			delay
				.then(() => execute(req, body))
				.then(
					(r) => reply(r.status, r.json),
					(err: unknown) => reply(err instanceof RequestError ? err.status : 400, errorJson(err)),
				)
				// Never let one request take the process down (e.g. the client hung up mid-reply).
				.catch(() => res.destroy());
		});
	}

	async function close(): Promise<void> {
		const all = [...pools.values()];
		pools.clear();
		await Promise.allSettled(all.map((p) => p.end()));
	}

	return { handle, close };
}

/**
 * Never reuse a connection that is not idle (a single query may have been BEGIN, a failed ROLLBACK
 * leaves an aborted transaction). DISCARD ALL drops session state (SET, temp tables, prepared
 * statements) so each request sees a fresh session, as on Neon where requests share no session.
 */
async function release(client: pg.PoolClient, broken: boolean): Promise<void> {
	if (!broken && client.getTransactionStatus() === "I") {
		try {
			await client.query("DISCARD ALL");
			client.release();
			return;
		} catch {
			// fall through: destroy it
		}
	}
	client.release(true);
}

function header(req: IncomingMessage, name: string): string | undefined {
	const value = req.headers[name];
	return Array.isArray(value) ? value[0] : value;
}

/** Neon's get_conn_info: user, password and dbname from the URL; the host only names the endpoint. */
function parseConnectionString(value: string | undefined): ConnInfo {
	if (!value) throw new RequestError(400, "missing Neon-Connection-String header");
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new RequestError(400, "invalid Neon-Connection-String: not a URL");
	}
	if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
		throw new RequestError(400, "invalid Neon-Connection-String: protocol must be postgres: or postgresql:");
	}
	const user = decodeURIComponent(url.username);
	const database = decodeURIComponent(url.pathname.replace(/^\//, "").split("/")[0] ?? "");
	if (!user) throw new RequestError(400, "invalid Neon-Connection-String: missing username");
	if (!database) throw new RequestError(400, "invalid Neon-Connection-String: missing database name");
	return {
		user,
		password: decodeURIComponent(url.password),
		database,
		applicationName: url.searchParams.get("application_name") ?? undefined,
		options: url.searchParams.get("options") ?? undefined,
	};
}

function parseBody(body: Buffer): SqlQuery | { queries: SqlQuery[] } {
	let json: unknown;
	try {
		json = JSON.parse(body.toString("utf8"));
	} catch {
		throw new RequestError(400, "request body is not valid JSON");
	}
	if (!isObject(json)) throw new RequestError(400, "request body must be a JSON object");
	if ("queries" in json) {
		if (!Array.isArray(json.queries)) throw new RequestError(400, "`queries` must be an array");
		return { queries: json.queries.map(parseQuery) };
	}
	return parseQuery(json);
}

function parseQuery(value: unknown): SqlQuery {
	if (!isObject(value) || typeof value.query !== "string") {
		throw new RequestError(400, "each query must be an object with a string `query`");
	}
	const params = value.params ?? [];
	if (!Array.isArray(params)) throw new RequestError(400, "`params` must be an array");
	return { query: value.query, params: params.map(paramText) };
}

/**
 * The driver already sends strings or null; Neon also accepts other JSON values (json.rs
 * json_to_pg_text): bool/number as text, objects as JSON text, arrays as Postgres array literals.
 */
function paramText(value: unknown): string | null {
	if (value === null || value === undefined) return null;
	if (typeof value === "string") return value;
	if (Array.isArray(value)) return arrayLiteral(value);
	if (typeof value === "object") return JSON.stringify(value);
	return String(value);
}

function arrayLiteral(items: unknown[]): string {
	const parts = items.map((item) => {
		if (item === null || item === undefined) return "NULL";
		if (Array.isArray(item)) return arrayLiteral(item);
		return `"${(paramText(item) ?? "").replace(/[\\"]/g, "\\$&")}"`;
	});
	return `{${parts.join(",")}}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** BEGIN for a batch; only an exact "true" turns a Neon boolean header on, like the proxy. */
function beginStatement(req: IncomingMessage): string {
	const parts = ["BEGIN"];
	const level = header(req, "neon-batch-isolation-level");
	if (level !== undefined) {
		const sqlLevel = ISOLATION_LEVELS[level];
		if (!sqlLevel) throw new RequestError(400, "invalid isolation level");
		parts.push(`ISOLATION LEVEL ${sqlLevel}`);
	}
	if (header(req, "neon-batch-read-only") === "true") parts.push("READ ONLY");
	if (header(req, "neon-batch-deferrable") === "true") parts.push("DEFERRABLE");
	return parts.join(" ");
}

function run(client: pg.PoolClient, q: SqlQuery): Promise<pg.QueryArrayResult<string[]>> {
	const config: ExtendedArrayQuery = {
		text: q.query,
		values: q.params,
		rowMode: "array",
		types: RAW_TEXT,
		queryMode: "extended",
	};
	return client.query(config);
}

function toJson(result: pg.QueryArrayResult<string[]>, arrayMode: boolean) {
	// Plain objects in Neon's key order; pg's Field objects already carry exactly these keys.
	const fields = result.fields.map((f) => ({
		name: f.name,
		dataTypeID: f.dataTypeID,
		tableID: f.tableID,
		columnID: f.columnID,
		dataTypeSize: f.dataTypeSize,
		dataTypeModifier: f.dataTypeModifier,
		format: f.format,
	}));
	const rows = arrayMode
		? result.rows
		: result.rows.map((row) => Object.fromEntries(fields.map((f, i) => [f.name, row[i] ?? null])));
	// pg parses the command tag like Neon does: "INSERT 0 5" -> INSERT/5, "CREATE TABLE" -> CREATE/null.
	return { rowAsArray: arrayMode, fields, rows, command: result.command ?? "", rowCount: result.rowCount };
}

/** The 17-key error JSON; non-database errors carry code and severity "" and null elsewhere. */
function errorJson(err: unknown): Record<string, string | null> {
	const out: Record<string, string | null> = { message: err instanceof Error ? err.message : String(err) };
	const db = err instanceof pg.DatabaseError ? err : undefined;
	for (const key of ERROR_FIELDS) out[key] = db?.[key] ?? null;
	if (!db) {
		out.code = "";
		out.severity = "";
	}
	return out;
}

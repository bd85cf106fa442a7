// Local stand-in for the Upstash Redis REST API, backed by a real Redis. It owns the REST wire
// protocol only (as spoken by @upstash/redis 1.39): POST `/`, `/pipeline` and `/multi-exec`, bearer
// auth, `Upstash-Encoding: base64`, status codes and error shapes. Redis does all the work.
// Facts and their sources: /work/shared/research/protocols.md, sections 1 and 5.
// CLI (dev stack):
//   node scripts/stack/upstash-standin.ts --port 8079 --redis redis://127.0.0.1:6379 --token T [--faults]
//
// Fault injection (faults.ts), scoped by BEARER TOKEN: a test registers a fault for a token of its
// own, which the stand-in then accepts next to the configured one, and gives the Worker that
// token (UPSTASH_REDIS_REST_TOKEN); requests with any other token are untouched.
//   curl -X POST http://127.0.0.1:8079/__faults -d '{"scope":"tok-1","mode":"hang"}'
//   curl -X DELETE 'http://127.0.0.1:8079/__faults?scope=tok-1'     (tok-1 is refused again)
//   fail   500 {"error":"ERR … Redis unavailable …"}, what the stand-in answers with Redis down
//   delay  the commands run delayMs late (or as soon as the fault is cleared or changed)
//   hang   no answer until the client gives up; when the fault is cleared or changed, or the
//          stand-in closes, a request still held gets the "fail" answer
//   lost   the commands run, then the connection is dropped without an answer (a lost reply)
//   none   no fault: the token just works (to check that a client recovers, then DELETE it)
// The fault applies after authentication and after the body is read, to every endpoint.
// Enabled with `faults: true` / `--faults` / STANDIN_FAULTS=1 (e.g. `STANDIN_FAULTS=1 npm run dev`),
// and by default under Vitest, whose global setup starts the stand-ins; loopback clients only.
import { createHash, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import type { Redis as RedisClient, RedisOptions } from "ioredis";
import { FAULTS_PATH, type Fault, FaultRegistry, faultsEnabled, handleFaultControl } from "./faults.ts";

// require(), not `import { Redis }`: when Vitest's module runner imports ioredis (CJS that replaces
// module.exports) for the global setup, the ESM named export `Redis` comes out undefined.
const { Redis } = createRequire(import.meta.url)("ioredis") as typeof import("ioredis");

export interface UpstashStandIn {
	url: string;
	port: number;
	close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const IDLE_TX_CONNECTIONS = 4;

// RESP2 (ioredis 6 defaults to RESP3): no maps, doubles or booleans reach us, only what the REST
// API can express. stringNumbers keeps integers exact (they are written as raw JSON digits).
// No offline queue, no resend: while Redis is down a command fails at once (-> 500) rather than
// hanging or being replayed twice after a reconnect; the retry strategy brings the link back.
const REDIS_OPTIONS: RedisOptions = {
	protocol: 2,
	stringNumbers: true,
	lazyConnect: true,
	enableOfflineQueue: false,
	autoResendUnfulfilledCommands: false,
	maxRetriesPerRequest: 0,
	connectTimeout: 2000,
	retryStrategy: (times) => Math.min(times * 100, 1000),
};

// Commands the REST API refuses: they block, or change the state of a (shared) connection.
const FORBIDDEN = new Set(
	(
		"subscribe psubscribe ssubscribe unsubscribe punsubscribe sunsubscribe monitor quit reset hello auth " +
		"select swapdb client multi exec discard watch unwatch blpop brpop brpoplpush blmove blmpop bzpopmin " +
		"bzpopmax bzmpop wait waitaof sync psync replconf replicaof slaveof readonly readwrite shutdown failover"
	).split(" "),
);

class HttpError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

type Command = [string, ...string[]];

function parseCommand(value: unknown): Command {
	if (!Array.isArray(value) || value.length === 0)
		throw new HttpError(400, "ERR command must be a non-empty array");
	const args = value.map((v: unknown) => {
		// The SDK sends numbers and booleans as JSON scalars (`["expire","k",10]`); Redis wants strings.
		if (typeof v === "string") return v;
		if (typeof v === "number" || typeof v === "boolean") return String(v);
		throw new HttpError(400, "ERR command arguments must be strings, numbers or booleans");
	});
	return args as Command;
}

function forbidden([name, ...args]: Command): string | undefined {
	const lower = name.toLowerCase();
	const blockingRead =
		(lower === "xread" || lower === "xreadgroup") && args.some((a) => a.toLowerCase() === "block");
	return FORBIDDEN.has(lower) || blockingRead ? `ERR Command is not allowed: ${lower}` : undefined;
}

// Serialises a RESP2 reply by hand: integers (strings, thanks to stringNumbers) become raw JSON
// numbers, so values beyond 2^53 stay exact. With base64, *every* string at every depth is
// encoded, OK/QUEUED included: the SDK base64-decodes array elements without an "OK" exemption.
function toJson(value: unknown, base64: boolean): string {
	// Uint8Array, not Buffer: test/tsconfig.json also checks this file (via the global setup), and
	// there workers-types declares the `Buffer` value as `any`, which would not narrow.
	if (value instanceof Uint8Array)
		return JSON.stringify((value as Buffer).toString(base64 ? "base64" : "utf8"));
	if (typeof value === "string") return /^-?\d+$/.test(value) ? value : toJson(Buffer.from(value), base64);
	if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
	if (Array.isArray(value)) return `[${value.map((v) => toJson(v, base64)).join(",")}]`;
	// An error nested in an array (a Lua table holding an error reply) has no JSON form: flatten it.
	if (value instanceof Error) return toJson(Buffer.from(value.message), base64);
	return "null";
}

// Redis replied with an error (vs. the link failing, which is a 500 for the whole request).
const isReplyError = (e: unknown): e is Error => e instanceof Error && e.name === "ReplyError";

type Outcome = { ok: true; value: unknown } | { ok: false; error: Error };

const errorJson = (message: string): string => JSON.stringify({ error: message });

function entry(o: Outcome, base64: boolean): string {
	if (o.ok) return `{"result":${toJson(o.value, base64)}}`;
	if (isReplyError(o.error)) return errorJson(o.error.message);
	throw o.error;
}

// callBuffer: replies stay Buffers (binary-safe). The upper-cased name sidesteps ioredis's
// per-name reply transformers (HGETALL would otherwise become an object keyed by Buffer.toString()).
function send(redis: RedisClient, [name, ...args]: Command): Promise<Outcome> {
	return redis.callBuffer(name.toUpperCase(), ...args).then(
		(value) => ({ ok: true, value }),
		(error: unknown) => ({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
	);
}

// Returns undefined when the body is over the limit. An oversized body is still drained (up to a
// hard cap): answering mid-upload makes clients fail on the write instead of reading the 413.
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of req as AsyncIterable<Buffer>) {
		size += chunk.length;
		if (size > 4 * MAX_BODY_BYTES) req.destroy();
		else if (size <= MAX_BODY_BYTES) chunks.push(chunk);
	}
	return size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks);
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

export async function startUpstashStandIn(opts: {
	redisUrl: string;
	token: string;
	port?: number;
	host?: string;
	/** Serve the fault control endpoint (default: under Vitest or with STANDIN_FAULTS=1). */
	faults?: boolean;
}): Promise<UpstashStandIn> {
	const host = opts.host ?? "127.0.0.1";
	const tokenDigest = digest(opts.token);
	const faults = faultsEnabled(opts.faults) ? new FaultRegistry() : undefined;
	// One shared connection for `/` and `/pipeline`: every allowed command is connection-stateless.
	const shared = new Redis(opts.redisUrl, REDIS_OPTIONS);
	let redisDown = false; // log an outage once, not on every reconnect attempt
	shared.on("error", (err: Error) => {
		if (!redisDown) console.warn(`[upstash-standin] redis: ${err.message}`);
		redisDown = true;
	});
	shared.on("ready", () => {
		redisDown = false;
	});
	// Redis may still be down at start; the retry strategy keeps trying in the background.
	await shared.connect().catch(() => undefined);

	// MULTI puts a connection in a transaction state, so each /multi-exec borrows a connection of its
	// own (SRH issue #25: sharing one makes concurrent transactions fail or plain commands see QUEUED).
	const idle: RedisClient[] = [];
	async function acquire(): Promise<RedisClient> {
		for (let c = idle.pop(); c; c = idle.pop()) {
			if (c.status === "ready") return c;
			c.disconnect();
		}
		const conn = shared.duplicate({ ...REDIS_OPTIONS, retryStrategy: () => null });
		conn.on("error", () => undefined); // surfaced through the failing command instead
		await conn.connect();
		return conn;
	}
	function release(conn: RedisClient, clean: boolean): void {
		if (clean && conn.status === "ready" && idle.length < IDLE_TX_CONNECTIONS) idle.push(conn);
		else conn.disconnect();
	}

	async function multiExec(cmds: Command[], base64: boolean): Promise<[number, string]> {
		const conn = await acquire();
		let clean = false;
		try {
			// Sent back to back (Redis pipelines them); the QUEUED replies only matter when they are errors.
			const queued = [send(conn, ["MULTI"]), ...cmds.map((c) => send(conn, c))];
			const exec = send(conn, ["EXEC"]);
			const queuedReplies = await Promise.all(queued);
			const execReply = await exec;
			const linkError = [...queuedReplies, execReply].find((o) => !o.ok && !isReplyError(o.error));
			if (linkError && !linkError.ok) throw linkError.error;
			clean = true;
			if (!execReply.ok) {
				// EXECABORT: the transaction was discarded. A single {error} needs a non-2xx status, or
				// the SDK's `res.map` breaks. Name the command that caused it.
				const i = queuedReplies.findIndex((o) => !o.ok); // index 0 is MULTI, so i is 1-based
				const cause = queuedReplies[i];
				const detail = cause && !cause.ok ? ` (command ${i}: ${cause.error.message})` : "";
				return [400, errorJson(`${execReply.error.message}${detail}`)];
			}
			const results = Array.isArray(execReply.value) ? execReply.value : [];
			// Runtime errors inside EXEC arrive as Error elements: per-entry {error}, like Upstash.
			const body = results.map((r: unknown) =>
				r instanceof Error ? errorJson(r.message) : `{"result":${toJson(r, base64)}}`,
			);
			return [200, `[${body.join(",")}]`];
		} finally {
			release(conn, clean);
		}
	}

	/** Applies a token's fault: an answer to send instead of the real one, or undefined to go on. */
	async function applyFault(
		token: string,
		fault: Fault,
		res: ServerResponse,
	): Promise<[number, string] | undefined> {
		const down: [number, string] = [
			500,
			errorJson("ERR upstash stand-in: Redis unavailable or failed: connect ECONNREFUSED (fault injected)"),
		];
		if (fault.mode === "fail") return down;
		if (fault.mode === "delay" && faults) {
			await faults.delay(token, fault.delayMs);
			return undefined;
		}
		if (fault.mode === "hang" && faults) {
			// No answer until the client gives up; when the fault is cleared or changed, or the
			// stand-in closes, a request still held gets the "fail" answer (a clean end).
			await new Promise<void>((resolve) => {
				if (res.destroyed || !res.socket || res.socket.destroyed) {
					resolve(); // already gone while its body was read
					return;
				}
				const forget = faults.hold(token, resolve);
				res.on("close", () => {
					forget();
					resolve();
				});
			});
			return down;
		}
		return undefined;
	}

	/** Requests under a "lost" fault: run for real, then the connection is dropped unanswered. */
	const lostReplies = new WeakSet<ServerResponse>();
	let syncToken = 0;
	async function handle(req: IncomingMessage, res: ServerResponse): Promise<[number, string]> {
		const url = new URL(req.url ?? "/", "http://localhost");
		const path = url.pathname.replace(/\/+$/, "") || "/";
		if (path !== "/" && path !== "/pipeline" && path !== "/multi-exec") {
			return [404, errorJson(`ERR unknown endpoint: ${url.pathname}`)];
		}
		if (req.method !== "POST") {
			res.setHeader("allow", "POST");
			return [405, errorJson("ERR method not allowed")];
		}
		const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
		const token = bearer ?? url.searchParams.get("_token");
		const fault = token === null ? undefined : faults?.get(token);
		if (token === null || (!timingSafeEqual(digest(token), tokenDigest) && !fault)) {
			return [401, errorJson("WRONGPASS invalid or missing auth token")];
		}
		const raw = await readBody(req);
		if (!raw) return [413, errorJson("ERR request body too large")];
		if (fault?.mode === "lost") lostReplies.add(res);
		else if (fault && fault.mode !== "none") {
			const injected = await applyFault(token, fault, res);
			if (injected) return injected;
		}
		let body: unknown;
		try {
			body = JSON.parse(raw.toString("utf8"));
		} catch {
			throw new HttpError(400, "ERR failed to parse request body as JSON");
		}
		const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
		// A single Redis is always consistent: any increasing token satisfies read-your-writes.
		res.setHeader("upstash-sync-token", String(++syncToken));

		if (path === "/") {
			const cmd = parseCommand(body);
			const refused = forbidden(cmd);
			if (refused) return [400, errorJson(refused)];
			const out = await send(shared, cmd);
			// A failed single command is HTTP 400 on Upstash, not a 200 with {error}. (entry() rethrows
			// link failures, which become a 500.)
			return [out.ok ? 200 : 400, entry(out, base64)];
		}
		if (!Array.isArray(body) || body.length === 0)
			throw new HttpError(400, "ERR body must be a non-empty array");
		const cmds = body.map(parseCommand);
		if (path === "/multi-exec") {
			// Upstash discards the whole transaction when a command is unsupported.
			const refused = cmds.map(forbidden).find((r) => r !== undefined);
			if (refused) return [400, errorJson(refused)];
			return multiExec(cmds, base64);
		}
		const outs = await Promise.all(
			cmds.map((c): Promise<Outcome> => {
				const refused = forbidden(c);
				return refused ? Promise.resolve({ ok: false, error: new HttpError(400, refused) }) : send(shared, c);
			}),
		);
		const entries = outs.map((o) =>
			!o.ok && o.error instanceof HttpError ? errorJson(o.error.message) : entry(o, base64),
		);
		return [200, `[${entries.join(",")}]`];
	}

	const server = createServer((req, res) => {
		if (faults && new URL(req.url ?? "/", "http://localhost").pathname === FAULTS_PATH) {
			handleFaultControl(faults, req, res);
			return;
		}
		handle(req, res)
			.catch((err: unknown): [number, string] => {
				if (err instanceof HttpError) return [err.status, errorJson(err.message)];
				const message = err instanceof Error ? err.message : String(err);
				return [500, errorJson(`ERR upstash stand-in: Redis unavailable or failed: ${message}`)];
			})
			.then(([status, body]) => {
				if (lostReplies.has(res)) return void res.destroy();
				if (res.headersSent || res.destroyed) return;
				res.writeHead(status, { "content-type": "application/json" });
				res.end(body);
			})
			.catch(() => res.destroy());
	});
	server.on("clientError", (_err, socket) => socket.destroy());
	server.listen(opts.port ?? 0, host);
	// once() rejects on "error" (e.g. EADDRINUSE); do not leak the Redis connection then.
	await once(server, "listening").catch((err: unknown) => {
		shared.disconnect();
		throw err;
	});
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
		port,
		async close() {
			faults?.clear();
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			server.closeAllConnections();
			await closed;
			for (const conn of idle.splice(0)) conn.disconnect();
			shared.disconnect();
		},
	};
}

// Escapes glob metacharacters so SCAN MATCH treats the prefix literally.
const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, "\\$&");

export async function deleteKeysWithPrefix(redisUrl: string, prefix: string): Promise<number> {
	const redis = new Redis(redisUrl, { ...REDIS_OPTIONS, retryStrategy: () => null });
	redis.on("error", () => undefined); // failures surface through the commands below
	try {
		await redis.connect();
		const match = `${escapeGlob(prefix)}*`;
		let cursor = "0";
		let deleted = 0;
		do {
			const [next, keys] = await redis.scanBuffer(cursor, "MATCH", match, "COUNT", 1000);
			cursor = next.toString();
			if (keys.length > 0) deleted += Number(await redis.unlink(...keys));
		} while (cursor !== "0");
		return deleted;
	} finally {
		redis.disconnect();
	}
}

if (import.meta.main) {
	const { values } = parseArgs({
		options: {
			port: { type: "string", default: "8079" },
			host: { type: "string", default: "127.0.0.1" },
			redis: { type: "string", default: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" },
			token: { type: "string", default: process.env.UPSTASH_REDIS_REST_TOKEN },
			faults: { type: "boolean" },
		},
	});
	if (!values.token) throw new Error("--token (or UPSTASH_REDIS_REST_TOKEN) is required");
	const { redis: redisUrl, token, host, faults } = values;
	const standIn = await startUpstashStandIn({ redisUrl, token, host, port: Number(values.port), faults });
	console.log(`[upstash-standin] listening on ${standIn.url} -> ${values.redis}`);
	const stop = (): void => void standIn.close().finally(() => process.exit(0));
	process.once("SIGINT", stop);
	process.once("SIGTERM", stop);
}

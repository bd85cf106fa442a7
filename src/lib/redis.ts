// Upstash Redis (REST) for the Worker: one client per isolate and per class of command, every
// command bounded in time so a slow or unreachable Redis degrades the service instead of
// stalling it. Keys always go through `RedisKeys`, which applies the configured prefix (a
// per-run prefix in tests).
//
// Why a client may live for the isolate: an @upstash/redis client holds only its URL, token and
// options; each command is its own fetch() made in the calling request's context, so no
// request-bound I/O object outlives a request. Two options make that true:
//   enableAutoPipelining: false  the default batches commands issued in the same tick into one
//                                fetch, which would mix commands of different requests in one
//                                request's subrequest (and fail it with the other's context);
//   readYourWrites: false        the client would otherwise carry the last write's sync token
//                                into every later read of every request of the isolate, making
//                                replicas wait for writes the reader never asked about.
// Building a client per request cost ~30% of a cached hit's CPU in a profile of the isolate.
import { Redis } from "@upstash/redis/cloudflare";

/**
 * The classes of command, each with its own timeout and retry rule. Upstash serves reads from
 * the read replica nearest the colo and sends every write to the primary region, so from a far
 * colo a write costs a long round trip (e.g. ~250 ms Sydney → us-east-1) where a read costs a
 * short one:
 *   read        cache GETs on the request path: the nearest replica; 400 ms, one retry, then the
 *               cache falls through to the origin;
 *   write       cache write-backs (SET / conditional script) from waitUntil: the primary; off the
 *               response path, so 2 s, one retry (the write is idempotent);
 *   limiter     the rate limiter's scripts (INCR): the primary; 1 s, never retried (a retried INCR
 *               whose first reply was lost would count one request twice); the limiter fails
 *               open past it;
 *   invalidate  the event path's DEL + version bump: the primary; 2 s, one retry (a second bump is
 *               harmless), since an invalidation that does not land answers 503.
 */
export type RedisClass = "read" | "write" | "limiter" | "invalidate";

export const REDIS_LIMITS: Record<RedisClass, { timeoutMs: number; retries: number }> = {
	read: { timeoutMs: 400, retries: 1 },
	write: { timeoutMs: 2_000, retries: 1 },
	limiter: { timeoutMs: 1_000, retries: 0 },
	invalidate: { timeoutMs: 2_000, retries: 1 },
};

export interface RedisSettings {
	url: string;
	token: string;
	/** Upper bound for one command, retries included. */
	timeoutMs: number;
	/** Retries after a network error (default 1); 0 for commands that must not run twice. */
	retries?: number;
}

export function createRedis(s: RedisSettings): Redis {
	return new Redis({
		url: s.url,
		token: s.token,
		enableTelemetry: false,
		enableAutoPipelining: false,
		readYourWrites: false,
		// The default (5 retries with exponential backoff, ~4 s) would hold a request hostage to a
		// dead Redis; the cache treats Redis as optional, so fail fast and fall through to origin.
		retry: { retries: s.retries ?? 1, backoff: () => 20 },
		// A signal *factory* makes the client throw on timeout; a plain signal would make it
		// return the abort reason as if it were the command's result. Called per command, in the
		// calling request's context.
		signal: () => AbortSignal.timeout(s.timeoutMs),
	});
}

// Isolate-scoped, keyed by the connection settings object (the parsed config's, memoised per
// env), so a test that passes its own env gets its own clients.
const clients = new WeakMap<object, Map<RedisClass, Redis>>();

/** The isolate's client of this class for these settings (built on first use). */
export function redisFor(settings: { url: string; token: string }, cls: RedisClass): Redis {
	let byClass = clients.get(settings);
	if (!byClass) {
		byClass = new Map();
		clients.set(settings, byClass);
	}
	let client = byClass.get(cls);
	if (!client) {
		client = createRedis({ ...settings, ...REDIS_LIMITS[cls] });
		byClass.set(cls, client);
	}
	return client;
}

/** Key builder: every Redis key the Worker touches is `${prefix}${namespace}:${parts…}`. */
export class RedisKeys {
	constructor(readonly prefix: string) {}
	key(namespace: string, ...parts: (string | number)[]): string {
		return [`${this.prefix}${namespace}`, ...parts].join(":");
	}
}

/** The narrow seam callers depend on, so a pure-logic unit test can pass a small fake. */
export type RedisLike = Pick<
	Redis,
	"get" | "mget" | "set" | "del" | "ping" | "pipeline" | "eval" | "evalsha"
>;

/**
 * A Lua script run by EVALSHA (the body is sent once per isolate and client: on NOSCRIPT, i.e.
 * the first call or after Redis lost its script cache, it falls back to EVAL, which loads it).
 */
export class LuaScript {
	#sha: Promise<string> | undefined;
	constructor(readonly source: string) {}

	#digest(): Promise<string> {
		this.#sha ??= crypto.subtle
			.digest("SHA-1", new TextEncoder().encode(this.source))
			.then((d) => [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join(""));
		return this.#sha;
	}

	async run<T>(redis: RedisLike, keys: string[], args: string[]): Promise<T> {
		const sha = await this.#digest();
		try {
			return await redis.evalsha<string[], T>(sha, keys, args);
		} catch (err) {
			if (!(err instanceof Error) || !err.message.includes("NOSCRIPT")) throw err;
			return await redis.eval<string[], T>(this.source, keys, args);
		}
	}
}

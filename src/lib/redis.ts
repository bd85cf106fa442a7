// Upstash Redis (REST) for the Worker: one client per request, every command bounded in time so
// a slow or unreachable Redis degrades the service instead of stalling it. Keys always go
// through `RedisKeys`, which applies the configured prefix (a per-run prefix in tests).
import { Redis } from "@upstash/redis/cloudflare";

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
		// The default (5 retries with exponential backoff, ~4 s) would hold a request hostage to a
		// dead Redis; the cache treats Redis as optional, so fail fast and fall through to origin.
		retry: { retries: s.retries ?? 1, backoff: () => 20 },
		// A signal *factory* makes the client throw on timeout; a plain signal would make it
		// return the abort reason as if it were the command's result.
		signal: () => AbortSignal.timeout(s.timeoutMs),
	});
}

/** Key builder: every Redis key the Worker touches is `${prefix}${namespace}:${parts…}`. */
export class RedisKeys {
	constructor(readonly prefix: string) {}
	key(namespace: string, ...parts: (string | number)[]): string {
		return [`${this.prefix}${namespace}`, ...parts].join(":");
	}
}

/** The narrow seam callers depend on, so a pure-logic unit test can pass a small fake. */
export type RedisLike = Pick<Redis, "get" | "set" | "del" | "ping" | "pipeline" | "eval">;

// The layered read-through cache for the fast read endpoints:
//   L0 isolate memory (a few seconds, bounded) → L1 Cache API (this colo) → L2 Upstash Redis
//   (global) → origin (Neon Postgres, via the caller's loader).
// Every entry carries its fetch time; freshness is decided at read time from the policy:
//   age < fresh            → HIT
//   age < fresh + swr      → STALE, served at once; one background refresh (ctx.waitUntil)
//   age < fresh + error    → kept only as a fallback when the origin fails (stale-if-error)
// A hit in a lower tier backfills the tiers above it; an origin load fills all of them.
// Concurrent misses of one key in an isolate share one origin load. Redis failures are
// skipped (bounded timeouts); an origin failure with nothing stale to serve is a 503.
// Values are the serialised JSON response bodies, so a hit never re-serialises anything.
import type { BackgroundContext } from "../deps";
import { ApiError } from "../errors";
import type { RedisLike } from "./redis";
import { withTimeout } from "./timeout";

export interface CachePolicy {
	/** Namespace, part of every key: "summary", "search", … */
	name: string;
	freshMs: number;
	/** Stale-while-revalidate window after freshness ends. */
	swrMs: number;
	/** Stale-if-error window after freshness ends (≥ swrMs): how long an entry is kept at all. */
	errorMs: number;
	/** Freshness of a cached "not found" (null) result. */
	negativeMs: number;
}

export type CacheStatus = "HIT" | "MISS" | "STALE";
export type CacheTier = "memory" | "edge" | "redis" | "origin";

/** What the tiers store: the body (null = not found), when it was fetched, its ETag. */
export interface CacheEntry {
	b: string | null;
	t: number;
	e: string;
}

export interface CacheResult {
	body: string | null;
	etag: string;
	status: CacheStatus;
	tier: CacheTier;
	/** Seconds since the origin produced this body. */
	ageS: number;
	/** Seconds of freshness left (0 when stale). */
	freshForS: number;
}

export interface ReadOptions {
	/** Skip cached copies (request `Cache-Control: no-cache` or `max-age=0`). */
	noCache?: boolean;
	/** Accept cached copies at most this old (request `Cache-Control: max-age=N`). */
	maxAgeMs?: number;
	/** Do not store what the origin returns (request `Cache-Control: no-store`). */
	noStore?: boolean;
}

export interface CacheDeps {
	edge: Cache | null;
	/** Called only when the Redis tier is actually needed, so a memory hit builds no client. */
	redis: () => RedisLike | null;
	/**
	 * The client invalidations use: a read may give up on Redis quickly and fall through, an
	 * invalidation must land, so it can be given a longer timeout. Defaults to `redis`.
	 */
	invalidationRedis?: () => RedisLike | null;
	/** Prefix of every key (Redis key prefix; also scopes the edge cache). */
	prefix: string;
	ctx: BackgroundContext;
	now: () => number;
	originTimeoutMs?: number;
	/** Lifetime of isolate-memory copies; 0 disables the memory tier. */
	memoryTtlMs?: number;
}

const EDGE_ORIGIN = "https://gitinsight-cache.internal/";
const DEFAULT_MEMORY_TTL_MS = 2_000;
const MEMORY_MAX_ENTRIES = 2_000;
const DEFAULT_ORIGIN_TIMEOUT_MS = 5_000;

// Isolate-scoped state. Safe to share across requests: the memory tier holds immutable strings
// for at most memoryTtlMs (bounding how stale another isolate's copy can be after an
// invalidation), and the in-flight map only shares promises, whose loads run under the
// waitUntil of the request that started them, so they finish even if that client goes away.
const memory = new Map<string, { entry: CacheEntry; until: number }>();
const inflight = new Map<string, Promise<CacheEntry>>();

function fromMemory(key: string, now: number): CacheEntry | undefined {
	const hit = memory.get(key);
	if (!hit) return undefined;
	if (hit.until <= now) {
		memory.delete(key);
		return undefined;
	}
	return hit.entry;
}

function toMemory(key: string, entry: CacheEntry, now: number, ttlMs: number): void {
	if (ttlMs <= 0) return;
	if (memory.size >= MEMORY_MAX_ENTRIES) {
		// Map iteration is insertion order: drop the oldest tenth.
		let n = MEMORY_MAX_ENTRIES / 10;
		for (const k of memory.keys()) {
			memory.delete(k);
			if (--n <= 0) break;
		}
	}
	memory.set(key, { entry, until: now + ttlMs });
}

/** Test hook: forget this isolate's memory tier. */
export function clearMemoryTier(): void {
	memory.clear();
}

export async function etagOf(body: string | null): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body ?? "\u0000null"));
	const bytes = new Uint8Array(digest).slice(0, 12);
	return `W/"${btoa(String.fromCharCode(...bytes))
		.replaceAll("+", "-")
		.replaceAll("/", "_")}"`;
}

function isEntry(v: unknown): v is CacheEntry {
	if (typeof v !== "object" || v === null) return false;
	const e = v as Record<string, unknown>;
	return (typeof e.b === "string" || e.b === null) && typeof e.t === "number" && typeof e.e === "string";
}

export class LayeredCache {
	constructor(private readonly deps: CacheDeps) {}

	/** The full key of `key` under `policy`: `${prefix}${policy}:${key}`. */
	keyOf(policy: CachePolicy, key: string): string {
		return `${this.deps.prefix}${policy.name}:${key}`;
	}

	private edgeRequest(fullKey: string): Request {
		return new Request(`${EDGE_ORIGIN}${encodeURIComponent(fullKey)}`);
	}

	private classify(policy: CachePolicy, entry: CacheEntry, now: number, opts: ReadOptions) {
		const age = now - entry.t;
		const fresh = entry.b === null ? policy.negativeMs : policy.freshMs;
		const tooOld = opts.maxAgeMs !== undefined && age > opts.maxAgeMs;
		if (age < fresh && !tooOld) return "fresh" as const;
		if (age < fresh + policy.swrMs && !tooOld) return "stale" as const;
		if (age < fresh + policy.errorMs) return "fallback" as const;
		return "expired" as const;
	}

	private result(policy: CachePolicy, entry: CacheEntry, status: CacheStatus, tier: CacheTier): CacheResult {
		const age = Math.max(0, this.deps.now() - entry.t);
		const fresh = entry.b === null ? policy.negativeMs : policy.freshMs;
		return {
			body: entry.b,
			etag: entry.e,
			status,
			tier,
			ageS: Math.floor(age / 1000),
			freshForS: Math.max(0, Math.ceil((fresh - age) / 1000)),
		};
	}

	private async readEdge(fullKey: string): Promise<CacheEntry | undefined> {
		if (!this.deps.edge) return undefined;
		try {
			const res = await this.deps.edge.match(this.edgeRequest(fullKey));
			if (!res) return undefined;
			const entry: unknown = await res.json();
			return isEntry(entry) ? entry : undefined;
		} catch (err) {
			logCacheError("edge read", err);
			return undefined;
		}
	}

	private async readRedis(fullKey: string): Promise<CacheEntry | undefined> {
		const redis = this.deps.redis();
		if (!redis) return undefined;
		try {
			const entry = await redis.get<unknown>(fullKey);
			return isEntry(entry) ? entry : undefined;
		} catch (err) {
			logCacheError("redis read", err);
			return undefined;
		}
	}

	private async writeEdge(policy: CachePolicy, fullKey: string, entry: CacheEntry): Promise<void> {
		if (!this.deps.edge) return;
		const ttlS = Math.ceil((policy.freshMs + policy.errorMs) / 1000);
		try {
			await this.deps.edge.put(
				this.edgeRequest(fullKey),
				new Response(JSON.stringify(entry), {
					headers: { "content-type": "application/json", "cache-control": `max-age=${ttlS}` },
				}),
			);
		} catch (err) {
			logCacheError("edge write", err);
		}
	}

	private async writeRedis(policy: CachePolicy, fullKey: string, entry: CacheEntry): Promise<void> {
		const redis = this.deps.redis();
		if (!redis) return;
		try {
			await redis.set(fullKey, entry, { px: policy.freshMs + policy.errorMs });
		} catch (err) {
			logCacheError("redis write", err);
		}
	}

	/** Writes `entry` to the tiers above `from` (all of them for an origin load). */
	private backfill(policy: CachePolicy, fullKey: string, entry: CacheEntry, from: CacheTier): void {
		toMemory(fullKey, entry, this.deps.now(), this.deps.memoryTtlMs ?? DEFAULT_MEMORY_TTL_MS);
		const writes: Promise<void>[] = [];
		if (from === "redis" || from === "origin") writes.push(this.writeEdge(policy, fullKey, entry));
		if (from === "origin") writes.push(this.writeRedis(policy, fullKey, entry));
		if (writes.length) this.deps.ctx.waitUntil(Promise.all(writes));
	}

	/** One origin load per key per isolate; it runs under waitUntil so it always completes. */
	private load(
		policy: CachePolicy,
		fullKey: string,
		loader: () => Promise<string | null>,
		store: boolean,
	): Promise<CacheEntry> {
		const running = inflight.get(fullKey);
		if (running !== undefined) return running;
		const timeout = this.deps.originTimeoutMs ?? DEFAULT_ORIGIN_TIMEOUT_MS;
		const promise = (async () => {
			const body = await withTimeout(loader(), timeout, `origin load of ${policy.name}`);
			const entry: CacheEntry = { b: body, t: this.deps.now(), e: await etagOf(body) };
			if (store) this.backfill(policy, fullKey, entry, "origin");
			return entry;
		})().finally(() => inflight.delete(fullKey));
		inflight.set(fullKey, promise);
		this.deps.ctx.waitUntil(promise.then(noop, noop));
		return promise;
	}

	/** Reads `key` through the tiers, loading from the origin when nothing fresh enough is cached. */
	async read(
		policy: CachePolicy,
		key: string,
		loader: () => Promise<string | null>,
		opts: ReadOptions = {},
	): Promise<CacheResult> {
		const fullKey = this.keyOf(policy, key);
		const now = this.deps.now();
		let fallback: { entry: CacheEntry; tier: CacheTier } | undefined;

		if (!opts.noCache) {
			for (const [tier, read] of this.tiers(fullKey, now)) {
				const entry = await read();
				if (!entry) continue;
				const state = this.classify(policy, entry, now, opts);
				if (state === "fresh") {
					if (tier !== "memory") this.backfill(policy, fullKey, entry, tier);
					return this.result(policy, entry, "HIT", tier);
				}
				if (state === "stale") {
					// Serve now; refresh once in the background (errors keep the stale copy). A
					// newer copy in memory means a refresh already happened while this read ran.
					const newer = fromMemory(fullKey, this.deps.now());
					if (!newer || newer.t <= entry.t) {
						const refresh = this.load(policy, fullKey, loader, !opts.noStore);
						this.deps.ctx.waitUntil(refresh.then(noop, (err) => logCacheError("background refresh", err)));
					}
					return this.result(policy, entry, "STALE", tier);
				}
				if (state === "fallback" && (!fallback || entry.t > fallback.entry.t)) fallback = { entry, tier };
			}
		}

		try {
			const entry = await this.load(policy, fullKey, loader, !opts.noStore);
			return this.result(policy, entry, "MISS", "origin");
		} catch (err) {
			logCacheError("origin load", err);
			// A client's no-cache skipped the tiers; with the origin down, any kept copy beats a 503.
			if (opts.noCache) fallback = await this.newestKept(policy, fullKey, now);
			if (fallback) return this.result(policy, fallback.entry, "STALE", fallback.tier);
			// A query Postgres refuses (a bug, not an outage) must not pass for one: it stays an
			// internal error, logged with its stack, and nobody is told to retry.
			if (err instanceof ApiError || isQueryBug(err)) throw err;
			throw new ApiError("service_unavailable", "the data source is temporarily unavailable", {
				headers: { "Retry-After": "5" },
			});
		}
	}

	private tiers(fullKey: string, now: number): [CacheTier, () => Promise<CacheEntry | undefined>][] {
		return [
			["memory", async () => fromMemory(fullKey, now)],
			["edge", () => this.readEdge(fullKey)],
			["redis", () => this.readRedis(fullKey)],
		];
	}

	private async newestKept(policy: CachePolicy, fullKey: string, now: number) {
		let best: { entry: CacheEntry; tier: CacheTier } | undefined;
		for (const [tier, read] of this.tiers(fullKey, now)) {
			const entry = await read();
			if (entry && this.classify(policy, entry, now, {}) !== "expired" && (!best || entry.t > best.entry.t)) {
				best = { entry, tier };
			}
		}
		return best;
	}

	/**
	 * Drops `key` from this isolate, this colo's edge cache and Redis. Resolves false when Redis
	 * could not be told: its copy (shared by every colo) may then outlive the change.
	 */
	async invalidate(policy: CachePolicy, key: string): Promise<boolean> {
		const fullKey = this.keyOf(policy, key);
		memory.delete(fullKey);
		const redis = (this.deps.invalidationRedis ?? this.deps.redis)();
		const [, redisDone] = await Promise.all([
			this.deps.edge?.delete(this.edgeRequest(fullKey)).catch((err) => logCacheError("edge delete", err)),
			redis
				? redis.del(fullKey).then(
						() => true,
						(err: unknown) => {
							logCacheError("redis delete", err);
							return false;
						},
					)
				: true,
		]);
		return redisDone;
	}
}

function noop(): void {}

/**
 * Postgres refused the statement itself: SQLSTATE class 22 (data exception, e.g. integer out of
 * range) or 42 (syntax error or access rule violation). drizzle wraps the driver's error in
 * `cause`.
 */
export function isQueryBug(err: unknown): boolean {
	for (let e: unknown = err, i = 0; e instanceof Error && i < 4; e = e.cause, i++) {
		const code = (e as { code?: unknown }).code;
		if (typeof code === "string" && /^(22|42)[0-9A-Z]{3}$/.test(code)) return true;
	}
	return false;
}

function logCacheError(what: string, err: unknown): void {
	console.warn(
		JSON.stringify({
			level: "warn",
			msg: "cache degraded",
			what,
			error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
		}),
	);
}

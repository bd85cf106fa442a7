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
import { sha256Base64url } from "./digest";
import { LuaScript, type RedisLike } from "./redis";
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
	/**
	 * For a namespace whose keys callers choose freely (search queries, leaderboard parameters):
	 * its Redis entries live in a fixed number of slots (a key's slot is a hash of it; a write
	 * takes the slot, a read checks that the slot holds its key), and an entry larger than
	 * maxEntryBytes is kept out of Redis (memory and edge still cache it). So the namespace
	 * never holds more than slots × maxEntryBytes in Redis, however many distinct keys are
	 * requested (issue 11: Upstash bills and caps by stored bytes). Without it, a namespace has
	 * one Redis key per key (summaries: at most one per repository).
	 */
	redisSlots?: { slots: number; maxEntryBytes: number };
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

/**
 * What a read's loader produces: the body (null = not found), or the body with when its data was
 * fetched, for a body derived from another cached one (it is then no fresher than that one).
 */
export type Loader = () => Promise<string | null | { body: string | null; fetchedAt: number }>;

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
	/**
	 * The Worker's own hostname: the Cache API keeps entries per zone, so keys must be URLs on a
	 * hostname the zone serves (a made-up hostname would not be cached on a custom domain).
	 */
	edgeHost: string;
	/**
	 * The isolate's Redis client of a class (src/lib/redis.ts), called only when the Redis tier is
	 * actually needed, so a memory hit touches no client. Reads use "read" (nearest replica),
	 * write-backs "write", invalidations "invalidate" (both the primary region).
	 */
	redis: (cls: "read" | "write" | "invalidate") => RedisLike | null;
	/** Prefix of every key (Redis key prefix; also scopes the edge cache). */
	prefix: string;
	ctx: BackgroundContext;
	now: () => number;
	originTimeoutMs?: number;
	/** Lifetime of isolate-memory copies; 0 disables the memory tier. */
	memoryTtlMs?: number;
	/** Bytes the memory tier may hold in this isolate (all policies together). */
	memoryMaxBytes?: number;
}

const EDGE_PATH = "/__gitinsight-cache/";
const DEFAULT_MEMORY_TTL_MS = 2_000;
const DEFAULT_MEMORY_MAX_BYTES = 32 * 1024 * 1024;
const DEFAULT_ORIGIN_TIMEOUT_MS = 5_000;
/** A Redis version key outlives any load that could have read the version before it (≤ origin timeout). */
const VERSION_TTL_MS = 60_000;
/**
 * Cache API deletes of one invalidation in flight at once: a Worker invocation may hold 6
 * connections open (fetch, Cache API, …); 4 leaves room for the Redis call and the hub RPCs.
 */
const EDGE_DELETE_CONCURRENCY = 4;

// Isolate-scoped state, safe to share across requests because it holds only plain values and
// promises, never a request-bound I/O object:
//   memory        immutable strings for at most memoryTtlMs (which bounds how stale another
//                 isolate's copy can be after an invalidation), at most memoryMaxBytes in all
//                 (the isolate's 128 MB is shared with everything else); oldest first.
//   inflight      shared origin loads. Each runs under the waitUntil of the request that started
//                 it; one older than the origin timeout (its request lost its context and it can
//                 no longer settle) is replaced by the next miss, and every joiner waits at most
//                 the origin timeout on its own clock.
//   invalidated   when a key was last invalidated in this isolate: a load or backfill that read
//                 before that writes nothing back. Pruned once entries are older than any load.
interface MemoryEntry {
	entry: CacheEntry;
	until: number;
	bytes: number;
}
const memory = new Map<string, MemoryEntry>();
let memoryBytes = 0;
const inflight = new Map<string, { promise: Promise<CacheEntry>; startedAt: number }>();
const invalidated = new Map<string, { seq: number; at: number }>();
const INVALIDATED_PRUNE_AT = 1_000;
/**
 * Counts this isolate's invalidations. Reads note it when they start, so "invalidated after this
 * read began" needs no clock (Date.now() stands still within a Workers turn).
 */
let invalidationSeq = 0;

/** Approximate heap cost of a memory-tier entry: UTF-16 upper bound of its strings + overhead. */
function sizeOf(key: string, entry: CacheEntry): number {
	return 2 * (key.length + (entry.b?.length ?? 0) + entry.e.length) + 96;
}

function dropFromMemory(key: string): void {
	const hit = memory.get(key);
	if (!hit) return;
	memory.delete(key);
	memoryBytes -= hit.bytes;
}

function fromMemory(key: string, now: number): CacheEntry | undefined {
	const hit = memory.get(key);
	if (!hit) return undefined;
	if (hit.until <= now) {
		dropFromMemory(key);
		return undefined;
	}
	return hit.entry;
}

function toMemory(key: string, entry: CacheEntry, now: number, ttlMs: number, maxBytes: number): void {
	if (ttlMs <= 0 || maxBytes <= 0) return;
	const bytes = sizeOf(key, entry);
	// One entry may take at most an eighth of the tier, so a few large pages cannot evict all.
	if (bytes > maxBytes / 8) return;
	dropFromMemory(key);
	// Insertion order is expiry order (one TTL for all): sweep the expired from the oldest end,
	// then evict the oldest live entries until the new one fits.
	for (const [k, v] of memory) {
		if (v.until > now && memoryBytes + bytes <= maxBytes) break;
		dropFromMemory(k);
	}
	memory.set(key, { entry, until: now + ttlMs, bytes });
	memoryBytes += bytes;
}

/** Test hook: forget this isolate's memory tier, shared loads and invalidation marks. */
export function clearMemoryTier(): void {
	memory.clear();
	memoryBytes = 0;
	inflight.clear();
	invalidated.clear();
}

/** Test hook: forget the invalidation marks, as another isolate (which never saw them) would. */
export function forgetInvalidationMarks(): void {
	invalidated.clear();
}

/** Test hook: what the memory tier holds now. */
export function memoryTierUsage(): { entries: number; bytes: number } {
	return { entries: memory.size, bytes: memoryBytes };
}

function markInvalidated(key: string, now: number): void {
	if (invalidated.size >= INVALIDATED_PRUNE_AT) {
		// Older than any load can be (loads end within the origin timeout): no longer needed.
		for (const [k, mark] of invalidated) if (now - mark.at > VERSION_TTL_MS) invalidated.delete(k);
	}
	invalidated.set(key, { seq: ++invalidationSeq, at: now });
}

/** Whether `key` was invalidated in this isolate after a read that began at `readSeq`. */
function invalidatedSince(key: string, readSeq: number): boolean {
	const mark = invalidated.get(key);
	return mark !== undefined && mark.seq > readSeq;
}

export async function etagOf(body: string | null): Promise<string> {
	return `W/"${await sha256Base64url(body ?? "\u0000null", 12)}"`;
}

function isEntry(v: unknown): v is CacheEntry {
	if (typeof v !== "object" || v === null) return false;
	const e = v as Record<string, unknown>;
	return (typeof e.b === "string" || e.b === null) && typeof e.t === "number" && typeof e.e === "string";
}

/** The entry a Redis read found, if it is `fullKey`'s (a slot may hold another key's: redisSlots). */
function ownEntry(policy: CachePolicy, fullKey: string, v: unknown): CacheEntry | undefined {
	if (!isEntry(v)) return undefined;
	if (!policy.redisSlots) return v;
	if ((v as { k?: unknown }).k !== fullKey) return undefined;
	return { b: v.b, t: v.t, e: v.e };
}

const utf8 = new TextEncoder();

/**
 * 32-bit FNV-1a of a string's UTF-16 code units: spreads keys over a namespace's slots. Not keyed:
 * someone who wants to can pick a query whose slot is a popular one's and keep evicting that
 * entry from Redis; the memory and edge tiers still hold it, so the cost is Redis reads.
 */
function fnv1a(text: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) {
		h ^= text.charCodeAt(i);
		h = Math.imul(h, 0x01000193);
	}
	return h >>> 0;
}

// KEYS[1] the entry, KEYS[2] its version; ARGV[1] the version the load saw before it read the
// origin ("" = none), ARGV[2] the entry (JSON), ARGV[3] its TTL in ms. Writes only if no
// invalidation bumped the version since: an invalidation always wins over a load in flight,
// whichever isolate or colo ran either. Returns 1 when written.
const WRITE_IF_UNCHANGED = new LuaScript(`
local v = redis.call('GET', KEYS[2]) or ''
if v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
return 1
`);

// KEYS: entry1, version1, entry2, version2, …; ARGV[1] the versions' TTL in ms. One script per
// invalidation, whatever the number of keys: deletes each entry and bumps its version.
const INVALIDATE = new LuaScript(`
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], tonumber(ARGV[1]))
end
return #KEYS / 2
`);

/**
 * Deletes the entries and bumps the versions of `pairs` (entry, version, entry, version, …: see
 * LayeredCache.redisKeysOf) in one script; repeated pairs are sent once. Throws when Redis
 * cannot be told.
 */
export async function invalidateInRedis(redis: RedisLike, pairs: string[]): Promise<void> {
	const seen = new Set<string>();
	const keys: string[] = [];
	for (let i = 0; i + 1 < pairs.length; i += 2) {
		const [entry, version] = [pairs[i] as string, pairs[i + 1] as string];
		if (seen.has(entry)) continue;
		seen.add(entry);
		keys.push(entry, version);
	}
	if (keys.length > 0) await INVALIDATE.run<number>(redis, keys, [String(VERSION_TTL_MS)]);
}

/** What a read of the Redis tier found: the entry, and the version to write back against. */
interface RedisRead {
	entry: CacheEntry | undefined;
	version: string;
}

export class LayeredCache {
	constructor(private readonly deps: CacheDeps) {}

	/** The full key of `key` under `policy`: `${prefix}${policy}:${key}`. */
	keyOf(policy: CachePolicy, key: string): string {
		return `${this.deps.prefix}${policy.name}:${key}`;
	}

	/**
	 * The Redis key holding `fullKey`'s entry: the key itself, or its slot when the policy bounds
	 * its namespace (redisSlots).
	 */
	private redisKey(policy: CachePolicy, fullKey: string): string {
		const bound = policy.redisSlots;
		if (!bound) return fullKey;
		return `${this.deps.prefix}${policy.name}:slot:${fnv1a(fullKey) % bound.slots}`;
	}

	/** The Redis key of `fullKey`'s version (bumped by every invalidation). */
	private versionKey(fullKey: string): string {
		return `${this.deps.prefix}ver:${fullKey.slice(this.deps.prefix.length)}`;
	}

	private edgeRequest(fullKey: string): Request {
		return new Request(`https://${this.deps.edgeHost}${EDGE_PATH}${encodeURIComponent(fullKey)}`);
	}

	private get memoryTtlMs(): number {
		return this.deps.memoryTtlMs ?? DEFAULT_MEMORY_TTL_MS;
	}

	private get memoryMaxBytes(): number {
		return this.deps.memoryMaxBytes ?? DEFAULT_MEMORY_MAX_BYTES;
	}

	private get originTimeoutMs(): number {
		return this.deps.originTimeoutMs ?? DEFAULT_ORIGIN_TIMEOUT_MS;
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

	/** How much longer a tier keeps `entry`: keepMs less its age (an entry made from an older one). */
	private leftMs(policy: CachePolicy, entry: CacheEntry): number {
		return Math.max(1000, this.keepMs(policy, entry) - Math.max(0, this.deps.now() - entry.t));
	}

	/** How long a tier keeps an entry: a "not found" only for its negative TTL. */
	private keepMs(policy: CachePolicy, entry: CacheEntry): number {
		return entry.b === null ? policy.negativeMs : policy.freshMs + policy.errorMs;
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

	/** The entry and its version in one round trip (MGET), or undefined when Redis is off or failed. */
	private async readRedis(policy: CachePolicy, fullKey: string): Promise<RedisRead | undefined> {
		const redis = this.deps.redis("read");
		if (!redis) return undefined;
		try {
			const [entry, version] = await redis.mget<[unknown, unknown]>(
				this.redisKey(policy, fullKey),
				this.versionKey(fullKey),
			);
			return { entry: ownEntry(policy, fullKey, entry), version: version == null ? "" : String(version) };
		} catch (err) {
			logCacheError("redis read", err);
			return undefined;
		}
	}

	/** The version alone, for a load that did not read the Redis tier first (no-cache, refresh). */
	private async readVersion(fullKey: string): Promise<string | undefined> {
		const redis = this.deps.redis("read");
		if (!redis) return undefined;
		try {
			const v = await redis.get<unknown>(this.versionKey(fullKey));
			return v == null ? "" : String(v);
		} catch (err) {
			logCacheError("redis version read", err);
			return undefined;
		}
	}

	private async writeEdge(policy: CachePolicy, fullKey: string, entry: CacheEntry): Promise<void> {
		if (!this.deps.edge) return;
		const ttlS = Math.ceil(this.leftMs(policy, entry) / 1000);
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

	/** Writes the entry unless its version moved since `version` was read; true when written. */
	private async writeRedis(
		policy: CachePolicy,
		fullKey: string,
		entry: CacheEntry,
		version: string,
	): Promise<boolean> {
		const redis = this.deps.redis("write");
		if (!redis) return true;
		const bound = policy.redisSlots;
		const value = JSON.stringify(bound ? { ...entry, k: fullKey } : entry);
		// Too large for a bounded namespace: this colo's edge copy and the memory tier only.
		if (bound && utf8.encode(value).byteLength > bound.maxEntryBytes) return true;
		try {
			const written = await WRITE_IF_UNCHANGED.run<number>(
				redis,
				[this.redisKey(policy, fullKey), this.versionKey(fullKey)],
				[version, value, String(Math.ceil(this.leftMs(policy, entry)))],
			);
			return Number(written) === 1;
		} catch (err) {
			logCacheError("redis write", err);
			// Unknown: the edge copy is still this colo's only, and the memory tier short-lived.
			return true;
		}
	}

	/**
	 * Writes `entry`, read when the isolate's invalidation count was `readSeq`, to the tiers above
	 * `from`, unless an invalidation in this isolate came after the read. An origin load writes Redis first, conditionally on the version
	 * it saw (`version`; undefined = Redis unreadable, write nothing there), and the edge only if
	 * Redis took it, so an invalidation elsewhere also stops this colo's copy.
	 */
	private backfill(
		policy: CachePolicy,
		fullKey: string,
		entry: CacheEntry,
		from: CacheTier,
		readSeq: number,
		version?: string,
	): void {
		if (invalidatedSince(fullKey, readSeq)) return;
		toMemory(fullKey, entry, this.deps.now(), this.memoryTtlMs, this.memoryMaxBytes);
		if (from === "redis") {
			this.deps.ctx.waitUntil(this.writeEdge(policy, fullKey, entry));
		} else if (from === "origin") {
			const write = async () => {
				if (version !== undefined && !(await this.writeRedis(policy, fullKey, entry, version))) {
					dropFromMemory(fullKey);
					return;
				}
				if (invalidatedSince(fullKey, readSeq)) return;
				await this.writeEdge(policy, fullKey, entry);
			};
			this.deps.ctx.waitUntil(write());
		}
	}

	/**
	 * One origin load per key per isolate; it runs under waitUntil so it always completes, and each
	 * caller waits for it at most the origin timeout. `version` is the Redis version read before
	 * the load (null: not read yet — read it first, so the origin is read after it).
	 */
	private load(
		policy: CachePolicy,
		fullKey: string,
		loader: Loader,
		store: boolean,
		version: string | undefined | null,
	): Promise<CacheEntry> {
		const timeout = this.originTimeoutMs;
		const now = this.deps.now();
		const running = inflight.get(fullKey);
		if (running !== undefined && now - running.startedAt <= timeout) {
			return withTimeout(running.promise, timeout, `origin load of ${policy.name}`);
		}
		const startedAt = now;
		const startSeq = invalidationSeq;
		const promise = (async () => {
			const seen = version === null && store ? await this.readVersion(fullKey) : (version ?? undefined);
			const loaded = await withTimeout(loader(), timeout, `origin load of ${policy.name}`);
			const body = typeof loaded === "object" && loaded !== null ? loaded.body : loaded;
			const t = typeof loaded === "object" && loaded !== null ? loaded.fetchedAt : this.deps.now();
			const entry: CacheEntry = { b: body, t, e: await etagOf(body) };
			if (store) this.backfill(policy, fullKey, entry, "origin", startSeq, seen);
			return entry;
		})();
		const slot = { promise, startedAt };
		const done = () => {
			// A replaced slot belongs to a newer load: leave it.
			if (inflight.get(fullKey) === slot) inflight.delete(fullKey);
		};
		inflight.set(fullKey, slot);
		this.deps.ctx.waitUntil(promise.then(done, done));
		return promise;
	}

	/** Reads `key` through the tiers, loading from the origin when nothing fresh enough is cached. */
	async read(policy: CachePolicy, key: string, loader: Loader, opts: ReadOptions = {}): Promise<CacheResult> {
		const fullKey = this.keyOf(policy, key);
		const now = this.deps.now();
		const readSeq = invalidationSeq;
		let fallback: { entry: CacheEntry; tier: CacheTier } | undefined;
		// The Redis version seen by this read (null: Redis not read).
		let version: string | undefined | null = null;

		if (!opts.noCache) {
			for (const tier of TIERS) {
				let entry: CacheEntry | undefined;
				if (tier === "memory") entry = fromMemory(fullKey, now);
				else if (tier === "edge") entry = await this.readEdge(fullKey);
				else {
					const got = await this.readRedis(policy, fullKey);
					version = got?.version;
					entry = got?.entry;
				}
				if (!entry) continue;
				const state = this.classify(policy, entry, now, opts);
				if (state === "fresh") {
					if (tier !== "memory") this.backfill(policy, fullKey, entry, tier, readSeq);
					return this.result(policy, entry, "HIT", tier);
				}
				if (state === "stale") {
					// Serve now; refresh once in the background (errors keep the stale copy). A
					// newer copy in memory means a refresh already happened while this read ran.
					const newer = fromMemory(fullKey, this.deps.now());
					if (!newer || newer.t <= entry.t) {
						const refresh = this.load(
							policy,
							fullKey,
							loader,
							!opts.noStore,
							tier === "redis" ? version : null,
						);
						this.deps.ctx.waitUntil(refresh.then(noop, (err) => logCacheError("background refresh", err)));
					}
					return this.result(policy, entry, "STALE", tier);
				}
				if (state === "fallback" && (!fallback || entry.t > fallback.entry.t)) fallback = { entry, tier };
			}
		}

		try {
			const entry = await this.load(policy, fullKey, loader, !opts.noStore, version);
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

	private async newestKept(policy: CachePolicy, fullKey: string, now: number) {
		let best: { entry: CacheEntry; tier: CacheTier } | undefined;
		const found: [CacheTier, CacheEntry | undefined][] = [
			["memory", fromMemory(fullKey, now)],
			["edge", await this.readEdge(fullKey)],
			["redis", (await this.readRedis(policy, fullKey))?.entry],
		];
		for (const [tier, entry] of found) {
			if (entry && this.classify(policy, entry, now, {}) !== "expired" && (!best || entry.t > best.entry.t)) {
				best = { entry, tier };
			}
		}
		return best;
	}

	/**
	 * Drops `keys` from this isolate, this colo's edge cache and Redis (one script for all keys:
	 * each entry deleted, its version bumped, so loads in flight anywhere write nothing back).
	 * Resolves false when Redis could not be told: its copy (shared by every colo) may then
	 * outlive the change. Other colos' edge copies stay until their freshness ends (Cache API
	 * deletes are per colo); other isolates' memory copies for at most memoryTtlMs.
	 * `redis: false`: this isolate and the edge only; the caller runs the Redis part itself
	 * (with redisKeysOf and invalidateInRedis) and must do so before the change is announced.
	 */
	async invalidate(policy: CachePolicy, keys: string[], opts: { redis?: boolean } = {}): Promise<boolean> {
		if (keys.length === 0) return true;
		const now = this.deps.now();
		const fullKeys = keys.map((k) => this.keyOf(policy, k));
		for (const fullKey of fullKeys) {
			dropFromMemory(fullKey);
			inflight.delete(fullKey);
			markInvalidated(fullKey, now);
		}
		const redis = opts.redis === false ? null : this.deps.redis("invalidate");
		const [redisDone] = await Promise.all([
			redis
				? invalidateInRedis(redis, this.redisKeysOf(policy, keys)).then(
						() => true,
						(err: unknown) => {
							logCacheError("redis delete", err);
							return false;
						},
					)
				: true,
			this.deleteEdge(fullKeys),
		]);
		return redisDone;
	}

	/**
	 * The Redis keys an invalidation of `keys` touches, pairwise (entry, version), for a caller
	 * that runs the Redis part elsewhere (invalidateInRedis; see RepoHub).
	 */
	redisKeysOf(policy: CachePolicy, keys: string[]): string[] {
		return keys.flatMap((k) => {
			const fullKey = this.keyOf(policy, k);
			// A slot holding another key's entry is emptied too: a miss, never a wrong answer.
			return [this.redisKey(policy, fullKey), this.versionKey(fullKey)];
		});
	}

	private async deleteEdge(fullKeys: string[]): Promise<void> {
		const edge = this.deps.edge;
		if (!edge) return;
		let next = 0;
		const worker = async () => {
			while (next < fullKeys.length) {
				const fullKey = fullKeys[next++] as string;
				await edge.delete(this.edgeRequest(fullKey)).catch((err) => logCacheError("edge delete", err));
			}
		};
		await Promise.all(Array.from({ length: Math.min(EDGE_DELETE_CONCURRENCY, fullKeys.length) }, worker));
	}
}

const TIERS = ["memory", "edge", "redis"] as const;

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

/** The warning every cache failure logs (the cache degrades; the request goes on). */
export function logCacheError(what: string, err: unknown): void {
	console.warn(
		JSON.stringify({
			level: "warn",
			msg: "cache degraded",
			what,
			error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
		}),
	);
}

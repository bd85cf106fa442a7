// Per-request composition root. Building it costs almost nothing: the config is a per-isolate
// memo, and everything else is built on first use, so a route that never touches Postgres,
// Redis or the cache builds nothing for them. What is kept for the isolate (Redis clients,
// parsed config) holds no request-bound I/O object; see src/lib/redis.ts for why a client may.

import { createDb, type Db } from "./db/client";
import { type Config, getConfig } from "./env";
import { LayeredCache } from "./lib/cache";
import { Metrics } from "./lib/metrics";
import { type RedisClass, RedisKeys, type RedisLike, redisFor } from "./lib/redis";

/** The part of the execution context the app uses. */
export type BackgroundContext = Pick<ExecutionContext, "waitUntil">;

/** Whether this colo's Cache API can hold anything for requests to `host`. */
export type EdgeTier = "on" | "off_workers_dev";

export interface Deps {
	config: Config;
	env: Env;
	/** For ctx.waitUntil; passed whole, since a destructured waitUntil loses its binding. */
	ctx: BackgroundContext;
	/** The Worker's own hostname as the request reached it (the Cache API's keys live on it). */
	host: string;
	/** drizzle over Neon's HTTP driver (built per request: its fetches belong to the request). */
	readonly db: Db;
	/**
	 * The isolate's Redis client of a class (timeouts and retries per class: src/lib/redis.ts), or
	 * null when no Redis is configured (local runs without Redis).
	 */
	redis(cls: RedisClass): RedisLike | null;
	keys: RedisKeys;
	/** Analytics Engine datapoints (src/lib/metrics.ts); writing never throws or waits. */
	readonly metrics: Metrics;
	/** Memory → edge (Cache API) → Redis → origin read-through cache. */
	readonly cache: LayeredCache;
	edgeTier: EdgeTier;
	/** This colo's Cache API when the tier is on (edgeTier), else null. */
	edge: Cache | null;
	now: () => number;
}

/**
 * On *.workers.dev the Cache API accepts every call and stores nothing (it only works on a
 * zone's hostname), so the tier is turned off there rather than costing a lookup per miss.
 */
export function edgeTierFor(host: string): EdgeTier {
	const name = host.replace(/:\d+$/, "").toLowerCase();
	return name === "workers.dev" || name.endsWith(".workers.dev") ? "off_workers_dev" : "on";
}

// Isolate-scoped: one key builder per prefix (a string memo, nothing request-bound).
const keyBuilders = new Map<string, RedisKeys>();

export function createDeps(env: Env, ctx: BackgroundContext, host: string): Deps {
	const config = getConfig(env);
	let db: Db | undefined;
	let cache: LayeredCache | undefined;
	let metrics: Metrics | undefined;
	const now = () => Date.now();
	const redisSettings = config.redis;
	const redis = (cls: RedisClass): RedisLike | null => (redisSettings ? redisFor(redisSettings, cls) : null);
	let keys = keyBuilders.get(config.REDIS_KEY_PREFIX);
	if (!keys) {
		keys = new RedisKeys(config.REDIS_KEY_PREFIX);
		keyBuilders.set(config.REDIS_KEY_PREFIX, keys);
	}
	const edgeTier = edgeTierFor(host);
	const edge = edgeTier === "on" ? caches.default : null;
	return {
		config,
		env,
		ctx,
		host,
		get db() {
			db ??= createDb(env);
			return db;
		},
		redis,
		get cache() {
			cache ??= new LayeredCache({
				edge,
				edgeHost: host,
				redis,
				prefix: config.REDIS_KEY_PREFIX,
				ctx,
				now,
				memoryTtlMs: config.CACHE_MEMORY_TTL_MS,
				memoryMaxBytes: config.CACHE_MEMORY_MAX_BYTES,
			});
			return cache;
		},
		get metrics() {
			metrics ??= metricsFor(env, ctx);
			return metrics;
		},
		keys,
		edgeTier,
		edge,
		now,
	};
}

/** The datapoint writer for a request or a Durable Object (whose ctx also has waitUntil). */
export function metricsFor(env: Env, ctx: BackgroundContext): Metrics {
	const config = getConfig(env);
	return new Metrics({
		dataset: env.METRICS,
		datasetName: config.AE_DATASET,
		sinkUrl: config.AE_SINK_URL,
		ctx,
	});
}

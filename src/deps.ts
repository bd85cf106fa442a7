// Per-request composition root: clients bound to the request that made them, created lazily
// so a route that never touches Postgres or Redis never builds a client for them.

import { createDb, type Db } from "./db/client";
import { type Config, getConfig } from "./env";
import { LayeredCache } from "./lib/cache";
import { Metrics } from "./lib/metrics";
import { createRedis, RedisKeys, type RedisLike } from "./lib/redis";

/** The part of the execution context the app uses. */
export type BackgroundContext = Pick<ExecutionContext, "waitUntil">;

export interface Deps {
	config: Config;
	env: Env;
	/** For ctx.waitUntil; passed whole, since a destructured waitUntil loses its binding. */
	ctx: BackgroundContext;
	/** drizzle over Neon's HTTP driver. */
	readonly db: Db;
	/** null when no Redis is configured (local runs without Redis). */
	readonly redis: RedisLike | null;
	/**
	 * The rate limiter's client: never retried, since a retried INCR whose first reply was lost
	 * would count one request twice (the limiter fails open instead).
	 */
	readonly limiterRedis: RedisLike | null;
	keys: RedisKeys;
	/** Analytics Engine datapoints (src/lib/metrics.ts); writing never throws or waits. */
	readonly metrics: Metrics;
	/** Memory → edge (Cache API) → Redis → origin read-through cache. */
	readonly cache: LayeredCache;
	now: () => number;
}

const REDIS_COMMAND_TIMEOUT_MS = 250;
/** Invalidations must land (a failed one answers 503): they may wait longer than a read. */
const REDIS_INVALIDATION_TIMEOUT_MS = 2_000;

export function createDeps(env: Env, ctx: BackgroundContext): Deps {
	const config = getConfig(env);
	let db: Db | undefined;
	let redis: RedisLike | null | undefined;
	let limiterRedis: RedisLike | null | undefined;
	let cache: LayeredCache | undefined;
	let metrics: Metrics | undefined;
	const now = () => Date.now();
	/** A Redis client with these limits, or null when no Redis is configured. */
	const redisClient = (timeoutMs: number, retries?: number): RedisLike | null =>
		config.redis
			? createRedis({ ...config.redis, timeoutMs, ...(retries === undefined ? {} : { retries }) })
			: null;
	const deps: Deps = {
		config,
		env,
		ctx,
		get db() {
			db ??= createDb(env);
			return db;
		},
		get redis() {
			if (redis === undefined) redis = redisClient(REDIS_COMMAND_TIMEOUT_MS);
			return redis;
		},
		get limiterRedis() {
			if (limiterRedis === undefined) limiterRedis = redisClient(REDIS_COMMAND_TIMEOUT_MS, 0);
			return limiterRedis;
		},
		get cache() {
			cache ??= new LayeredCache({
				edge: caches.default,
				redis: () => deps.redis,
				invalidationRedis: () => redisClient(REDIS_INVALIDATION_TIMEOUT_MS),
				prefix: config.REDIS_KEY_PREFIX,
				ctx,
				now,
				memoryTtlMs: config.CACHE_MEMORY_TTL_MS,
			});
			return cache;
		},
		get metrics() {
			metrics ??= metricsFor(env, ctx);
			return metrics;
		},
		keys: new RedisKeys(config.REDIS_KEY_PREFIX),
		now,
	};
	return deps;
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

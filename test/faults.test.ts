// The service under injected faults, through the real Worker: Redis failing or hanging, Postgres
// down, Postgres slow within and beyond the service's budget. Faults are set on the stand-ins'
// control endpoints (scripts/stack/faults.ts) for a Postgres host and a Redis token of this file's
// own, so the other test files, running in parallel on the same stand-ins, are untouched. Each
// test gets its own Redis key prefix too, so nothing another test cached can answer for it.
// Every answer must arrive within a bound, carry the documented status and error envelope, and
// the service must recover once the fault is cleared. The service's own budgets:
//   Redis: per timeout class (src/lib/redis.ts REDIS_LIMITS: reads 400 ms with one retry, writes
//     and invalidations 2 s with one retry, the limiter 1 s without);
//   Postgres: 5 s per origin load (src/lib/cache.ts DEFAULT_ORIGIN_TIMEOUT_MS), then a kept copy
//     or 503 service_unavailable with Retry-After;
//   /health: each probe capped at HEALTH_TIMEOUT_MS (1500 ms by default).
// Bounds are generous for a shared 2-core machine; the measured times are logged at the end.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { ErrorBody } from "../src/errors";
import worker from "../src/index";
import { clearMemoryTier } from "../src/lib/cache";
import { resetRateLimiterState } from "../src/middleware/rate-limit";
import { hs256Token } from "./helpers";
import { repoStream, seededRepos, upgradeRequest } from "./realtime-client";

/** Where the service's Redis budgets (up to 2 s for an invalidation) should cut in, plus slack. */
const REDIS_BOUND_MS = 3000;
/** Postgres refusing: nothing to wait for. */
const FAIL_BOUND_MS = 3000;
/** The origin budget. */
const ORIGIN_TIMEOUT_MS = 5000;
/** Postgres slower than the origin budget: cut at 5 s, plus slack. */
const SLOW_BOUND_MS = ORIGIN_TIMEOUT_MS + 3000;

const NEON_CONTROL = new URL("/__faults", env.NEON_HTTP_ENDPOINT).toString();
const UPSTASH_CONTROL = `${inject("upstashUrl")}/__faults`;

let userToken: string;
let serviceToken: string;
/** Cache-Control is honoured to the letter only for admin and service tokens. */
let adminNoCache: RequestInit;
let repos: string[];
const repo = (i: number) => repos[i] ?? "";
const timings: Record<string, number> = {};

beforeAll(async () => {
	[userToken, serviceToken, repos] = await Promise.all([
		hs256Token({ sub: "faults-test" }),
		hs256Token({ sub: "faults-pipeline", role: "service" }),
		// From the middle of the seed: the other files use both ends.
		seededRepos(300, 16),
	]);
	const admin = await hs256Token({ sub: "faults-ops", role: "admin" });
	adminNoCache = { headers: { authorization: `Bearer ${admin}`, "cache-control": "no-cache" } };
});

afterAll(() => {
	console.log(`fault timings (ms): ${JSON.stringify(timings)}`);
});

// ---------------------------------------------------------------------------------------------
// Scenarios: an env with a Postgres host, a Redis token and a key prefix of their own.

interface Scenario {
	env: Env;
	pgHost: string;
	redisToken: string;
	prefix: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
	for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function control(url: string, init: RequestInit): Promise<void> {
	const res = await fetch(url, init);
	const text = await res.text();
	if (res.status !== 200) throw new Error(`fault control ${init.method} ${url}: ${res.status} ${text}`);
}

function setFault(which: "postgres" | "redis", scope: string, mode: string, delayMs?: number) {
	return control(which === "postgres" ? NEON_CONTROL : UPSTASH_CONTROL, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ scope, mode, delayMs }),
	});
}

function clearFault(which: "postgres" | "redis", scope: string) {
	const base = which === "postgres" ? NEON_CONTROL : UPSTASH_CONTROL;
	return control(`${base}?scope=${encodeURIComponent(scope)}`, { method: "DELETE" });
}

/** A fresh env (so a fresh memoised config): this scenario's host, token and key prefix. */
async function scenario(overrides: Partial<Env> = {}): Promise<Scenario> {
	const id = crypto.randomUUID().slice(0, 8);
	const pgHost = `fault-${id}.localtest.me`;
	const redisToken = `faults-test-${crypto.randomUUID()}`;
	const prefix = `${inject("redisKeyPrefix")}faults:${id}:`;
	const url = new URL(inject("databaseUrl"));
	url.hostname = pgHost;
	// The stand-in accepts the token once registered; "none" = no fault yet.
	await setFault("redis", redisToken, "none");
	cleanups.push(async () => {
		await clearFault("postgres", pgHost);
		await clearFault("redis", redisToken);
	});
	return {
		env: {
			...env,
			DATABASE_URL: url.toString(),
			UPSTASH_REDIS_REST_TOKEN: redisToken,
			REDIS_KEY_PREFIX: prefix,
			// Every /health here must probe now: the faults change between calls.
			HEALTH_CACHE_MS: "0",
			...overrides,
		},
		pgHost,
		redisToken,
		prefix,
	};
}

/** The same scenario (host, token, prefix) under another config, e.g. a shorter health timeout. */
function withConfig(s: Scenario, overrides: Partial<Env>): Scenario {
	return { ...s, env: { ...s.env, ...overrides } };
}

interface Answer {
	res: Response;
	text: string;
	/** From the request to the whole body read; background work (waitUntil) is not included. */
	ms: number;
}

async function get(s: Scenario, path: string, init: RequestInit = {}, label?: string): Promise<Answer> {
	const headers = new Headers(init.headers);
	if (!headers.has("authorization")) headers.set("authorization", `Bearer ${userToken}`);
	const ctx = createExecutionContext();
	const started = performance.now();
	const res = await worker.fetch(
		new Request(`http://gitinsight.test${path}`, { ...init, headers }),
		s.env,
		ctx,
	);
	const text = await res.text();
	const ms = Math.round(performance.now() - started);
	// Background work (backfills, refreshes) must end too: a hang there would stall this.
	await waitOnExecutionContext(ctx);
	if (label) timings[label] = ms;
	return { res, text, ms };
}

function postEvent(s: Scenario, body: unknown, label?: string): Promise<Answer> {
	return get(
		s,
		"/api/v1/events",
		{
			method: "POST",
			headers: { authorization: `Bearer ${serviceToken}`, "content-type": "application/json" },
			body: JSON.stringify(body),
		},
		label,
	);
}

const summary = (id: string) => `/api/v1/fast/repositories/${id}/summary`;
const SEARCH = "/api/v1/fast/search?q=api&limit=5";
const LEADERBOARD = "/api/v1/fast/leaderboard?category=popular&timeframe=week&limit=10";

interface HealthBody {
	status: string;
	dependencies: Record<"database" | "redis" | "python_api", string>;
	checks: Record<string, { status: string; latency_ms?: number; error?: string }>;
}

function json<T>(a: Answer): T {
	return JSON.parse(a.text) as T;
}

/** 503 service_unavailable in the envelope, with Retry-After and the request id; no internals. */
function expectUnavailable(a: Answer): void {
	expect(a.res.status, a.text).toBe(503);
	expect(a.res.headers.get("retry-after")).toBe("5");
	const { error } = json<ErrorBody>(a);
	expect(error.code).toBe("service_unavailable");
	expect(error.message).toBe("the data source is temporarily unavailable");
	expect(error.request_id).toBe(a.res.headers.get("x-request-id"));
	expect(a.text).not.toMatch(/compute|localtest|postgres|neon/i);
}

function expectOk(a: Answer, cache?: string): void {
	expect(a.res.status, a.text).toBe(200);
	if (cache) expect(a.res.headers.get("x-cache")).toBe(cache);
}

/** A repository event as the analysis pipeline sends it. */
const event = (repository: string) => ({
	type: "repository_updated",
	repository_id: repository,
	data: { source: "faults-test" },
});

// ---------------------------------------------------------------------------------------------

describe.each(["fail", "hang"] as const)("Redis %s", (mode) => {
	it("cached data is still served and cold reads come from Postgres, within the Redis budget", async () => {
		const s = await scenario();
		const warm = await get(s, summary(repo(0)));
		expectOk(warm, "MISS");
		await setFault("redis", s.redisToken, mode);

		const cached = await get(s, summary(repo(0)), {}, `redis-${mode}: cached summary`);
		expectOk(cached, "HIT");
		expect(cached.text).toBe(warm.text);
		const cold = await get(s, summary(repo(1)), {}, `redis-${mode}: cold summary`);
		expectOk(cold, "MISS");
		expect(cold.res.headers.get("x-cache-tier")).toBe("origin");
		expect(json<{ id: string }>(cold).id).toBe(repo(1));
		const search = await get(s, SEARCH, {}, `redis-${mode}: search`);
		expectOk(search, "MISS");
		expect(json<{ total: number }>(search).total).toBeGreaterThanOrEqual(0);
		const board = await get(s, LEADERBOARD, {}, `redis-${mode}: leaderboard`);
		expectOk(board, "MISS");
		expect(json<{ entries: unknown[] }>(board).entries.length).toBeGreaterThan(0);
		for (const a of [cached, cold, search, board]) expect(a.ms).toBeLessThan(REDIS_BOUND_MS);
	});

	it("/health is degraded (200): redis unhealthy, database healthy", async () => {
		const s = await scenario();
		await setFault("redis", s.redisToken, mode);
		const a = await get(s, "/health", {}, `redis-${mode}: health`);
		expect(a.res.status).toBe(200);
		const body = json<HealthBody>(a);
		expect(body.status).toBe("degraded");
		expect(body.dependencies).toMatchObject({ database: "healthy", redis: "unhealthy" });
		expect(body.checks.redis?.status).toBe("unhealthy");
		expect(a.ms).toBeLessThan(REDIS_BOUND_MS);
	});

	it("events are delivered, answered 503 + Retry-After since the invalidation cannot reach Redis", async () => {
		const s = await scenario();
		await setFault("redis", s.redisToken, mode);
		const a = await postEvent(s, event(repo(2)), `redis-${mode}: event`);
		expect(a.res.status, a.text).toBe(503);
		expect(a.res.headers.get("retry-after")).toBe("5");
		expect(json<{ error: { code: string } }>(a).error.code).toBe("service_unavailable");
		expect(a.ms).toBeLessThan(REDIS_BOUND_MS);
	});

	it("recovers once the fault is cleared: healthy, and the Redis tier written again", async () => {
		const s = await scenario();
		await setFault("redis", s.redisToken, mode);
		expect(json<HealthBody>(await get(s, "/health")).status).toBe("degraded");
		await setFault("redis", s.redisToken, "none");
		const health = await get(s, "/health");
		expect(health.res.status).toBe(200);
		expect(json<HealthBody>(health).dependencies.redis).toBe("healthy");
		expectOk(await get(s, summary(repo(3))), "MISS");
		const redis = new Redis({ url: inject("upstashUrl"), token: s.redisToken, enableTelemetry: false });
		await expect
			.poll(() => redis.get<{ b: string }>(`${s.prefix}summary:${repo(3)}`))
			.toMatchObject({ b: expect.stringContaining(repo(3)) });
	});
});

describe("Redis failing while an event is ingested", () => {
	// The events reach the hubs, but Redis keeps its pre-event summary: the answer is 503 so the
	// sender retries; the retry (same id: not delivered again) completes the invalidation.
	it("never serves the pre-event Redis copy once the sender's retry has gone through", async () => {
		const s = await scenario();
		const r = repo(12);
		expectOk(await get(s, summary(r)), "MISS");
		const redis = new Redis({ url: inject("upstashUrl"), token: s.redisToken, enableTelemetry: false });
		await expect.poll(() => redis.get(`${s.prefix}summary:${r}`)).not.toBeNull();
		await setFault("redis", s.redisToken, "fail");
		const body = { ...event(r), id: `evt-${crypto.randomUUID()}` };
		const during = await postEvent(s, body);
		expect(during.res.status, during.text).toBe(503);
		await setFault("redis", s.redisToken, "none");
		const retry = await postEvent(s, body);
		expect(retry.res.status, retry.text).toBe(202);
		// Delivered during the outage already: the retry is a duplicate, not a second delivery.
		expect(json<{ status: string }>(retry).status).toBe("duplicate");
		clearMemoryTier(); // as another isolate would be, or this one 2 s later
		const after = await get(s, summary(r));
		expectOk(after);
		expect(after.res.headers.get("x-cache-tier")).not.toBe("redis");
	});
});

describe("Redis reply lost (the command ran, the answer never came)", () => {
	it("the rate limiter counts that request once (its client does not retry) and lets it through", async () => {
		const s = await scenario({ RATE_LIMIT_SEARCH: "5/60" });
		resetRateLimiterState();
		await setFault("redis", s.redisToken, "lost");
		const during = await get(s, SEARCH);
		expect(during.res.status, during.text).toBe(200);
		// Decided without the store (fail open): no RateLimit headers.
		expect(during.res.headers.get("ratelimit-policy")).toBeNull();
		await setFault("redis", s.redisToken, "none");
		resetRateLimiterState(); // a fresh isolate: it asks Redis
		const after = await get(s, SEARCH);
		expect(after.res.status, after.text).toBe(200);
		// 5 allowed: the lost one and this one are 2 (a retried INCR would have made it 3).
		expect(after.res.headers.get("ratelimit-remaining")).toBe("3");
	});
});

describe("Postgres down (fail)", () => {
	it("a kept copy is served; nothing kept is 503 service_unavailable, for every read endpoint", async () => {
		const s = await scenario();
		const warm = await get(s, summary(repo(4)));
		expectOk(warm, "MISS");
		await setFault("postgres", s.pgHost, "fail");

		const cached = await get(s, summary(repo(4)), {}, "pg-fail: cached summary");
		expectOk(cached, "HIT");
		// A client's no-cache cannot be honoured: the kept copy beats a 503.
		const kept = await get(s, summary(repo(4)), adminNoCache);
		expectOk(kept, "STALE");
		expect(kept.text).toBe(warm.text);

		const cold = await get(s, summary(repo(5)), {}, "pg-fail: cold summary");
		const byName = await get(
			s,
			"/api/v1/fast/repositories/by-name/nobody-cached/this-one/summary",
			{},
			"pg-fail: summary by name",
		);
		const search = await get(s, SEARCH, {}, "pg-fail: search");
		const board = await get(s, LEADERBOARD, {}, "pg-fail: leaderboard");
		for (const a of [cold, byName, search, board]) {
			expectUnavailable(a);
			expect(a.ms).toBeLessThan(FAIL_BOUND_MS);
		}
	});

	it("a repository stream opens for a cached repository; an uncached one is 503, not 500", async () => {
		const s = await scenario();
		expectOk(await get(s, summary(repo(13))), "MISS");
		await setFault("postgres", s.pgHost, "fail");
		const open = async (id: string) => {
			const ctx = createExecutionContext();
			const started = performance.now();
			const res = await worker.fetch(upgradeRequest(repoStream(id), { token: userToken }), s.env, ctx);
			const ms = Math.round(performance.now() - started);
			if (res.webSocket) {
				res.webSocket.accept();
				res.webSocket.close(1000, "done");
			}
			const text = res.webSocket ? "" : await res.text();
			await waitOnExecutionContext(ctx);
			return { res, text, ms };
		};
		const cached = await open(repo(13));
		expect(cached.res.status, cached.text).toBe(101);
		const uncached = await open(repo(14));
		timings["pg-fail: stream upgrade, uncached"] = uncached.ms;
		expectUnavailable(uncached);
		expect(uncached.ms).toBeLessThan(FAIL_BOUND_MS);
	});

	it("/health is unhealthy (503), naming the database, without connection details", async () => {
		const s = await scenario();
		await setFault("postgres", s.pgHost, "fail");
		const a = await get(s, "/health", {}, "pg-fail: health");
		expect(a.res.status).toBe(503);
		const body = json<HealthBody>(a);
		expect(body.status).toBe("unhealthy");
		expect(body.dependencies).toMatchObject({ database: "unhealthy", redis: "healthy" });
		expect(a.text).not.toMatch(/compute|localtest|postgres/i);
		expect(a.ms).toBeLessThan(FAIL_BOUND_MS);
	});

	it("events are still ingested (202): they need no Postgres", async () => {
		const s = await scenario();
		await setFault("postgres", s.pgHost, "fail");
		const a = await postEvent(s, event(repo(6)), "pg-fail: event");
		expect(a.res.status, a.text).toBe(202);
		expect(a.ms).toBeLessThan(FAIL_BOUND_MS);
	});

	it("recovers once the fault is cleared", async () => {
		const s = await scenario();
		await setFault("postgres", s.pgHost, "fail");
		expectUnavailable(await get(s, summary(repo(7))));
		await clearFault("postgres", s.pgHost);
		expectOk(await get(s, summary(repo(7))), "MISS");
		expectOk(await get(s, SEARCH), "MISS");
		const health = await get(s, "/health");
		expect(health.res.status).toBe(200);
		expect(json<HealthBody>(health).status).toBe("healthy");
	});
});

describe("Postgres slow", () => {
	it("within the budget (400 ms per query): answers are right, only slower", async () => {
		const s = await scenario();
		await setFault("postgres", s.pgHost, "delay", 400);
		const cold = await get(s, summary(repo(8)), {}, "pg-delay-400: summary");
		expectOk(cold, "MISS");
		expect(json<{ id: string }>(cold).id).toBe(repo(8));
		const search = await get(s, SEARCH, {}, "pg-delay-400: search");
		expectOk(search, "MISS");
		const board = await get(s, LEADERBOARD, {}, "pg-delay-400: leaderboard");
		expectOk(board, "MISS");
		for (const a of [cold, search, board]) {
			expect(a.ms).toBeGreaterThanOrEqual(400);
			expect(a.ms).toBeLessThan(ORIGIN_TIMEOUT_MS);
		}
		const health = await get(s, "/health", {}, "pg-delay-400: health");
		expect(health.res.status).toBe(200);
		const body = json<HealthBody>(health);
		expect(body.status).toBe("healthy");
		expect(body.checks.database?.latency_ms).toBeGreaterThanOrEqual(400);
	});

	it("beyond the budget (8 s per query): cut at the origin timeout, kept copy or 503", async () => {
		const s = await scenario();
		const warm = await get(s, summary(repo(9)));
		expectOk(warm, "MISS");
		await setFault("postgres", s.pgHost, "delay", 8000);
		// In parallel: each waits for the same 5 s budget.
		const [kept, cold, search, board] = await Promise.all([
			get(s, summary(repo(9)), adminNoCache, "pg-delay-8000: kept summary"),
			get(s, summary(repo(10)), {}, "pg-delay-8000: cold summary"),
			get(s, SEARCH, {}, "pg-delay-8000: search"),
			get(s, LEADERBOARD, {}, "pg-delay-8000: leaderboard"),
		]);
		expectOk(kept, "STALE");
		expect(kept.text).toBe(warm.text);
		for (const a of [cold, search, board]) expectUnavailable(a);
		for (const a of [kept, cold, search, board]) {
			expect(a.ms).toBeGreaterThanOrEqual(ORIGIN_TIMEOUT_MS - 100);
			expect(a.ms).toBeLessThan(SLOW_BOUND_MS);
		}
	});

	it("beyond the health budget: /health is unhealthy (503) with a database timeout, in time", async () => {
		const s = withConfig(await scenario(), { HEALTH_TIMEOUT_MS: "500" });
		await setFault("postgres", s.pgHost, "delay", 8000);
		const a = await get(s, "/health", {}, "pg-delay-8000: health (500 ms budget)");
		expect(a.res.status).toBe(503);
		const body = json<HealthBody>(a);
		expect(body.status).toBe("unhealthy");
		expect(body.checks.database).toMatchObject({ status: "unhealthy", error: "timeout" });
		expect(a.ms).toBeGreaterThanOrEqual(500);
		expect(a.ms).toBeLessThan(FAIL_BOUND_MS);
		const ingest = await postEvent(s, event(repo(11)), "pg-delay-8000: event");
		expect(ingest.res.status, ingest.text).toBe(202);
		expect(ingest.ms).toBeLessThan(FAIL_BOUND_MS);
	});

	it("recovers once the delay is cleared", async () => {
		const s = withConfig(await scenario(), { HEALTH_TIMEOUT_MS: "500" });
		await setFault("postgres", s.pgHost, "delay", 8000);
		expect((await get(s, "/health")).res.status).toBe(503);
		await clearFault("postgres", s.pgHost);
		const health = await get(s, "/health");
		expect(health.res.status).toBe(200);
		expect(json<HealthBody>(health).status).toBe("healthy");
		const cold = await get(s, summary(repo(10)));
		expectOk(cold, "MISS");
		expect(cold.ms).toBeLessThan(FAIL_BOUND_MS);
	});
});

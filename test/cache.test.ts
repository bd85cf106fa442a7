// The layered cache against the real Cache API (workerd) and real Redis (through the Upstash
// stand-in). The loader is a counting function and the clock is controllable; the tiers are real.
import { Redis } from "@upstash/redis/cloudflare";
import { beforeEach, describe, expect, inject, it } from "vitest";
import {
	type CachePolicy,
	clearMemoryTier,
	forgetInvalidationMarks,
	isQueryBug,
	LayeredCache,
	memoryTierUsage,
} from "../src/lib/cache";
import { createRedis } from "../src/lib/redis";

const POLICY: CachePolicy = { name: "t", freshMs: 10_000, swrMs: 5_000, errorMs: 60_000, negativeMs: 1_000 };
const EDGE_HOST = "api.example.test";
const raw = new Redis({ url: inject("upstashUrl"), token: inject("upstashToken"), enableTelemetry: false });

class Background {
	readonly pending: Promise<unknown>[] = [];
	waitUntil(p: Promise<unknown>) {
		this.pending.push(p);
	}
	async settle() {
		while (this.pending.length) await Promise.allSettled(this.pending.splice(0));
	}
}

let n = 0;
function setup(opts: { redisUrl?: string; memoryMaxBytes?: number; memoryTtlMs?: number } = {}) {
	const prefix = `${inject("redisKeyPrefix")}cache-test:${Date.now()}:${n++}:`;
	let clock = 1_000_000;
	const bg = new Background();
	const edgeName = `edge-${prefix}`;
	const make = async () =>
		new LayeredCache({
			edge: await caches.open(edgeName),
			edgeHost: EDGE_HOST,
			redis: () =>
				createRedis({
					url: opts.redisUrl ?? inject("upstashUrl"),
					token: inject("upstashToken"),
					timeoutMs: 300,
				}),
			prefix,
			ctx: bg,
			now: () => clock,
			originTimeoutMs: 300,
			...(opts.memoryMaxBytes === undefined ? {} : { memoryMaxBytes: opts.memoryMaxBytes }),
			...(opts.memoryTtlMs === undefined ? {} : { memoryTtlMs: opts.memoryTtlMs }),
		});
	const loads: string[] = [];
	const loader = (value: string | null) => async () => {
		loads.push(value ?? "null");
		return value;
	};
	return {
		prefix,
		bg,
		make,
		loads,
		loader,
		edge: () => caches.open(edgeName),
		advance: (ms: number) => {
			clock += ms;
		},
		edgeKey: (key: string) =>
			`https://${EDGE_HOST}/__gitinsight-cache/${encodeURIComponent(`${prefix}t:${key}`)}`,
		redisKey: (key: string) => `${prefix}t:${key}`,
		versionKey: (key: string) => `${prefix}ver:t:${key}`,
	};
}

beforeEach(() => clearMemoryTier());

describe("layered cache", () => {
	it("loads from the origin once, then serves hits, and fills every tier", async () => {
		const t = setup();
		const cache = await t.make();
		const first = await cache.read(POLICY, "k", t.loader('{"a":1}'));
		expect(first).toMatchObject({ body: '{"a":1}', status: "MISS", tier: "origin", ageS: 0 });
		expect(first.etag).toMatch(/^W\/".+"$/);
		await t.bg.settle();
		const second = await cache.read(POLICY, "k", t.loader("never"));
		expect(second).toMatchObject({ body: '{"a":1}', status: "HIT", tier: "memory", etag: first.etag });
		expect(t.loads).toEqual(['{"a":1}']);
		// Backfill really wrote the lower tiers.
		expect(await raw.get(t.redisKey("k"))).toMatchObject({ b: '{"a":1}', e: first.etag });
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeDefined();
	});

	it("a Redis hit backfills the edge tier; an edge hit backfills memory", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "k", t.loader("v1"));
		await t.bg.settle();
		clearMemoryTier();
		await (await t.edge()).delete(t.edgeKey("k"));
		const fromRedis = await cache.read(POLICY, "k", t.loader("never"));
		expect(fromRedis).toMatchObject({ status: "HIT", tier: "redis", body: "v1" });
		await t.bg.settle();
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeDefined();
		clearMemoryTier();
		const fromEdge = await cache.read(POLICY, "k", t.loader("never"));
		expect(fromEdge).toMatchObject({ status: "HIT", tier: "edge" });
		expect(await cache.read(POLICY, "k", t.loader("never"))).toMatchObject({ status: "HIT", tier: "memory" });
		expect(t.loads).toEqual(["v1"]);
	});

	it("serves stale within the SWR window and refreshes once in the background", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "k", t.loader("old"));
		await t.bg.settle();
		clearMemoryTier();
		t.advance(12_000); // past fresh (10 s), inside SWR (+5 s)
		const [a, b] = await Promise.all([
			cache.read(POLICY, "k", t.loader("new")),
			cache.read(POLICY, "k", t.loader("new")),
		]);
		expect(a).toMatchObject({ status: "STALE", body: "old", ageS: 12, freshForS: 0 });
		expect(b).toMatchObject({ status: "STALE", body: "old" });
		await t.bg.settle();
		expect(t.loads).toEqual(["old", "new"]);
		clearMemoryTier();
		expect(await cache.read(POLICY, "k", t.loader("never"))).toMatchObject({
			status: "HIT",
			body: "new",
			ageS: 0,
		});
	});

	it("de-duplicates concurrent misses of one key into one origin load", async () => {
		const t = setup();
		const cache = await t.make();
		let calls = 0;
		const slow = async () => {
			calls++;
			await new Promise((r) => setTimeout(r, 50));
			return "v";
		};
		const results = await Promise.all(Array.from({ length: 10 }, () => cache.read(POLICY, "same", slow)));
		expect(calls).toBe(1);
		expect(results.every((r) => r.body === "v" && r.status === "MISS")).toBe(true);
	});

	it("falls back to a stale copy when the origin fails (stale-if-error), else 503", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "k", t.loader("kept"));
		await t.bg.settle();
		clearMemoryTier();
		t.advance(30_000); // past SWR, inside the error window
		const failing = async (): Promise<string> => {
			throw new Error("origin down");
		};
		expect(await cache.read(POLICY, "k", failing)).toMatchObject({ status: "STALE", body: "kept", ageS: 30 });
		// Even a client's no-cache gets the kept copy rather than an error.
		expect(await cache.read(POLICY, "k", failing, { noCache: true })).toMatchObject({ status: "STALE" });
		await expect(cache.read(POLICY, "other", failing)).rejects.toMatchObject({
			code: "service_unavailable",
			opts: { headers: { "Retry-After": "5" } },
		});
	});

	it("lets a query Postgres refuses (SQLSTATE 22xxx/42xxx: a bug) through as itself, not as a 503", async () => {
		const t = setup();
		const cache = await t.make();
		const refused = async (): Promise<string> => {
			throw new Error("query failed", {
				cause: Object.assign(new Error('value "2147483648" is out of range for type integer'), {
					code: "22003",
				}),
			});
		};
		await expect(cache.read(POLICY, "bug", refused)).rejects.toThrow("query failed");
		expect(isQueryBug(new Error("origin down"))).toBe(false);
		expect(isQueryBug(Object.assign(new Error("x"), { code: "42601" }))).toBe(true);
		expect(isQueryBug(Object.assign(new Error("x"), { code: "08006" }))).toBe(false);
	});

	it("treats a hanging origin as failed after the origin timeout", async () => {
		const t = setup();
		const cache = await t.make();
		const hang = () => new Promise<string>(() => undefined);
		await expect(cache.read(POLICY, "hang", hang)).rejects.toMatchObject({ code: "service_unavailable" });
	});

	it("honours request no-cache and max-age", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "k", t.loader("v1"));
		expect(await cache.read(POLICY, "k", t.loader("v2"), { noCache: true })).toMatchObject({
			status: "MISS",
			body: "v2",
		});
		t.advance(4_000);
		expect(await cache.read(POLICY, "k", t.loader("v3"), { maxAgeMs: 5_000 })).toMatchObject({
			status: "HIT",
		});
		expect(await cache.read(POLICY, "k", t.loader("v4"), { maxAgeMs: 3_000 })).toMatchObject({
			status: "MISS",
			body: "v4",
		});
		expect(t.loads).toEqual(["v1", "v2", "v4"]);
	});

	it("caches a not-found result briefly", async () => {
		const t = setup();
		const cache = await t.make();
		expect(await cache.read(POLICY, "missing", t.loader(null))).toMatchObject({ body: null, status: "MISS" });
		expect(await cache.read(POLICY, "missing", t.loader(null))).toMatchObject({ body: null, status: "HIT" });
		clearMemoryTier();
		t.advance(1_500); // negative entries are fresh for 1 s here
		expect(await cache.read(POLICY, "missing", t.loader("found"))).toMatchObject({ status: "STALE" });
		expect(t.loads).toEqual(["null", "found"]);
	});

	it("keeps serving when Redis is unreachable, skipping the tier", async () => {
		const t = setup({ redisUrl: "http://127.0.0.1:9" });
		const cache = await t.make();
		expect(await cache.read(POLICY, "k", t.loader("v"))).toMatchObject({ status: "MISS", body: "v" });
		await t.bg.settle();
		clearMemoryTier();
		expect(await cache.read(POLICY, "k", t.loader("never"))).toMatchObject({ status: "HIT", tier: "edge" });
	});

	it("invalidate drops the key from memory, edge and Redis", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "k", t.loader("v1"));
		await t.bg.settle();
		await cache.invalidate(POLICY, ["k"]);
		expect(await raw.get(t.redisKey("k"))).toBeNull();
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeUndefined();
		expect(await cache.read(POLICY, "k", t.loader("v2"))).toMatchObject({ status: "MISS", body: "v2" });
	});
});

/** A loader held open until the test releases it with a body. */
function held() {
	let release: (body: string) => void = () => undefined;
	let started = false;
	const body = new Promise<string>((resolve) => {
		release = resolve;
	});
	return {
		loader: async () => {
			started = true;
			return body;
		},
		release: (b: string) => release(b),
		started: () => started,
	};
}

const until = async (cond: () => boolean) => {
	for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
	expect(cond()).toBe(true);
};

describe("invalidation against loads in flight", () => {
	it("a load that started before an invalidation writes nothing back (this isolate)", async () => {
		const t = setup();
		const cache = await t.make();
		const pre = held();
		const reading = cache.read(POLICY, "k", pre.loader);
		await until(pre.started);
		expect(await cache.invalidate(POLICY, ["k"])).toBe(true);
		pre.release("pre-event");
		// The reader that asked before the event gets what it asked for…
		expect(await reading).toMatchObject({ status: "MISS", body: "pre-event" });
		await t.bg.settle();
		// …but no tier keeps it: the next read loads again.
		expect(await raw.get(t.redisKey("k"))).toBeNull();
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeUndefined();
		expect(await cache.read(POLICY, "k", t.loader("post-event"))).toMatchObject({
			status: "MISS",
			body: "post-event",
		});
	});

	it("the Redis version check stops it too when the invalidation ran in another isolate", async () => {
		const t = setup();
		const cache = await t.make();
		const pre = held();
		const reading = cache.read(POLICY, "k", pre.loader);
		await until(pre.started);
		// Another isolate's invalidation: this isolate's marks know nothing of it.
		const elsewhere = await t.make();
		await elsewhere.invalidate(POLICY, ["k"]);
		forgetInvalidationMarks();
		expect(await raw.get(t.versionKey("k"))).toBe(1);
		pre.release("pre-event");
		await reading;
		await t.bg.settle();
		expect(await raw.get(t.redisKey("k"))).toBeNull();
		// Nor this colo's edge: the edge is written only after Redis took the entry.
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeUndefined();
		// A load that starts after the invalidation is stored as usual.
		clearMemoryTier();
		await cache.read(POLICY, "k", t.loader("post-event"));
		await t.bg.settle();
		expect(await raw.get(t.redisKey("k"))).toMatchObject({ b: "post-event" });
	});

	it("without Redis, this isolate's own mark keeps the pre-event copy out of memory and the edge", async () => {
		const t = setup({ redisUrl: "http://127.0.0.1:9" });
		const cache = await t.make();
		const pre = held();
		const reading = cache.read(POLICY, "k", pre.loader);
		await until(pre.started);
		await cache.invalidate(POLICY, ["k"]);
		pre.release("pre-event");
		await reading;
		await t.bg.settle();
		expect(memoryTierUsage().entries).toBe(0);
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeUndefined();
	});

	it("a read after the invalidation does not join the older load", async () => {
		const t = setup();
		const cache = await t.make();
		const pre = held();
		const first = cache.read(POLICY, "k", pre.loader);
		await until(pre.started);
		await cache.invalidate(POLICY, ["k"]);
		const after = await cache.read(POLICY, "k", t.loader("post-event"));
		expect(after.body).toBe("post-event");
		pre.release("pre-event");
		await first;
		await t.bg.settle();
		expect(await raw.get(t.redisKey("k"))).toMatchObject({ b: "post-event" });
	});

	it("invalidates many keys with one script: every entry gone, every version bumped", async () => {
		const t = setup();
		const cache = await t.make();
		for (const k of ["a", "b", "c"]) await cache.read(POLICY, k, t.loader(k));
		await t.bg.settle();
		expect(await cache.invalidate(POLICY, ["a", "b", "c"])).toBe(true);
		for (const k of ["a", "b", "c"]) {
			expect(await raw.get(t.redisKey(k))).toBeNull();
			expect(await raw.get(t.versionKey(k))).toBe(1);
			const ttl = await raw.pttl(t.versionKey(k));
			expect(ttl).toBeGreaterThan(0);
			expect(ttl).toBeLessThanOrEqual(60_000);
			expect(await (await t.edge()).match(t.edgeKey(k))).toBeUndefined();
		}
	});

	it("reports false when Redis cannot be told", async () => {
		const t = setup({ redisUrl: "http://127.0.0.1:9" });
		const cache = await t.make();
		expect(await cache.invalidate(POLICY, ["k"])).toBe(false);
	});
});

describe("memory tier and shared loads", () => {
	it("stays within its byte budget, evicting the oldest", async () => {
		const max = 64 * 1024;
		const t = setup({ memoryMaxBytes: max, memoryTtlMs: 60_000 });
		const cache = await t.make();
		const body = "x".repeat(3_000);
		for (let i = 0; i < 50; i++) await cache.read(POLICY, `k${i}`, t.loader(`${i}${body}`));
		const usage = memoryTierUsage();
		expect(usage.bytes).toBeLessThanOrEqual(max);
		expect(usage.entries).toBeGreaterThan(5);
		expect(usage.entries).toBeLessThan(50);
		// The newest is kept, the oldest went.
		expect(await cache.read(POLICY, "k49", t.loader("never"))).toMatchObject({ tier: "memory" });
		expect(await cache.read(POLICY, "k0", t.loader("never"))).not.toMatchObject({ tier: "memory" });
	});

	it("keeps no entry larger than an eighth of the budget", async () => {
		const t = setup({ memoryMaxBytes: 16 * 1024 });
		const cache = await t.make();
		await cache.read(POLICY, "big", t.loader("y".repeat(4_000)));
		expect(memoryTierUsage().entries).toBe(0);
	});

	it("sweeps expired entries", async () => {
		const t = setup({ memoryTtlMs: 1_000 });
		const cache = await t.make();
		for (let i = 0; i < 20; i++) await cache.read(POLICY, `k${i}`, t.loader(`v${i}`));
		expect(memoryTierUsage().entries).toBe(20);
		t.advance(2_000);
		await cache.read(POLICY, "fresh", t.loader("v"));
		expect(memoryTierUsage().entries).toBe(1);
	});

	it("replaces a shared load older than the origin timeout, and a joiner gives up on its own", async () => {
		const t = setup();
		const cache = await t.make();
		const stuck = held();
		const first = cache.read(POLICY, "k", stuck.loader);
		await until(stuck.started);
		// A joiner waits at most the origin timeout (300 ms here), on its own timer.
		const joined = Date.now();
		await expect(cache.read(POLICY, "k", t.loader("never"))).rejects.toMatchObject({
			code: "service_unavailable",
		});
		expect(Date.now() - joined).toBeLessThan(2_000);
		await expect(first).rejects.toMatchObject({ code: "service_unavailable" });
		// A load whose slot is older than the timeout is not joined: the next miss starts anew.
		const again = held();
		const second = cache.read(POLICY, "k2", again.loader);
		await until(again.started);
		t.advance(301);
		expect(await cache.read(POLICY, "k2", t.loader("replaced"))).toMatchObject({ body: "replaced" });
		again.release("late");
		await second;
		expect(t.loads).toEqual(["replaced"]);
	});

	it("keeps a not-found result in Redis and the edge only for the negative TTL", async () => {
		const t = setup();
		const cache = await t.make();
		await cache.read(POLICY, "missing", t.loader(null));
		await t.bg.settle();
		const ttl = await raw.pttl(t.redisKey("missing"));
		expect(ttl).toBeGreaterThan(0);
		expect(ttl).toBeLessThanOrEqual(POLICY.negativeMs);
		await cache.read(POLICY, "found", t.loader("v"));
		await t.bg.settle();
		expect(await raw.pttl(t.redisKey("found"))).toBeGreaterThan(POLICY.freshMs);
	});
});

describe("a namespace bounded in Redis (redisSlots)", () => {
	/** Every Redis key under `match`, by SCAN. */
	async function keysMatching(match: string): Promise<string[]> {
		const found: string[] = [];
		let cursor = "0";
		do {
			const [next, keys] = await raw.scan(cursor, { match, count: 1000 });
			found.push(...keys);
			cursor = String(next);
		} while (cursor !== "0");
		return found;
	}

	it("a scan of 200 distinct keys leaves at most `slots` entries of at most maxEntryBytes", async () => {
		const t = setup();
		const cache = await t.make();
		const bounded: CachePolicy = { ...POLICY, redisSlots: { slots: 8, maxEntryBytes: 300 } };
		for (let i = 0; i < 200; i++) {
			const body = JSON.stringify({ q: `distinct-${i}`, pad: "x".repeat(i % 3 === 0 ? 400 : 50) });
			expect((await cache.read(bounded, `q-${i}`, t.loader(body))).status).toBe("MISS");
		}
		await t.bg.settle();
		const keys = await keysMatching(`${t.prefix}*`);
		expect(keys.length).toBeGreaterThan(0);
		expect(keys.length).toBeLessThanOrEqual(8);
		for (const key of keys) {
			expect(key).toMatch(/:t:slot:[0-7]$/);
			expect(JSON.stringify(await raw.get(key)).length).toBeLessThanOrEqual(300 + 32);
		}
		// Without the bound, the same scan leaves one key per query.
		const u = setup();
		const open = await u.make();
		for (let i = 0; i < 50; i++) await open.read(POLICY, `q-${i}`, u.loader(`{"i":${i}}`));
		await u.bg.settle();
		expect(await keysMatching(`${u.prefix}*`)).toHaveLength(50);
	});

	it("a slot holding another key's entry is a miss, never that key's answer; its own is a hit", async () => {
		const t = setup();
		const one: CachePolicy = { ...POLICY, redisSlots: { slots: 1, maxEntryBytes: 10_000 } };
		const writer = await t.make();
		await writer.read(one, "a", t.loader('"A"'));
		await writer.read(one, "b", t.loader('"B"'));
		await t.bg.settle();
		// Another colo (no edge copy) and isolate (no memory copy): only Redis can answer.
		clearMemoryTier();
		const other = new LayeredCache({
			edge: null,
			edgeHost: EDGE_HOST,
			redis: () => createRedis({ url: inject("upstashUrl"), token: inject("upstashToken"), timeoutMs: 300 }),
			prefix: t.prefix,
			ctx: t.bg,
			now: () => 1_000_000,
			originTimeoutMs: 300,
		});
		expect(await other.read(one, "b", t.loader('"B2"'))).toMatchObject({ body: '"B"', tier: "redis" });
		clearMemoryTier();
		expect(await other.read(one, "a", t.loader('"A2"'))).toMatchObject({ body: '"A2"', status: "MISS" });
	});
});

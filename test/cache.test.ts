// The layered cache against the real Cache API (workerd) and real Redis (through the Upstash
// stand-in). The loader is a counting function and the clock is controllable; the tiers are real.
import { Redis } from "@upstash/redis/cloudflare";
import { beforeEach, describe, expect, inject, it } from "vitest";
import { type CachePolicy, clearMemoryTier, isQueryBug, LayeredCache } from "../src/lib/cache";
import { createRedis } from "../src/lib/redis";

const POLICY: CachePolicy = { name: "t", freshMs: 10_000, swrMs: 5_000, errorMs: 60_000, negativeMs: 1_000 };
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
function setup(opts: { redisUrl?: string } = {}) {
	const prefix = `${inject("redisKeyPrefix")}cache-test:${Date.now()}:${n++}:`;
	let clock = 1_000_000;
	const bg = new Background();
	const edgeName = `edge-${prefix}`;
	const make = async () =>
		new LayeredCache({
			edge: await caches.open(edgeName),
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
		edgeKey: (key: string) => `https://gitinsight-cache.internal/${encodeURIComponent(`${prefix}t:${key}`)}`,
		redisKey: (key: string) => `${prefix}t:${key}`,
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
		await cache.invalidate(POLICY, "k");
		expect(await raw.get(t.redisKey("k"))).toBeNull();
		expect(await (await t.edge()).match(t.edgeKey("k"))).toBeUndefined();
		expect(await cache.read(POLICY, "k", t.loader("v2"))).toMatchObject({ status: "MISS", body: "v2" });
	});
});

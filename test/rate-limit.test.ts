// Rate limits through the real Worker and the real Redis (via the Upstash stand-in): budgets per
// caller and route group, the 429 envelope and headers, recovery, and fail-open when the store
// is down. Each test runs with its own small budgets (an env override) and its own client
// address or token subject, so the suite's other files are not affected.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import {
	budgetOf,
	clientKey,
	IPV6_SITE_FACTOR,
	resetRateLimiterState,
	siteKey,
} from "../src/middleware/rate-limit";
import { errorBody, hs256Token } from "./helpers";

async function send(
	bindings: Partial<Env>,
	path: string,
	init: {
		ip?: string;
		token?: string;
		method?: string;
		headers?: Record<string, string>;
		body?: string;
	} = {},
): Promise<Response> {
	const headers = new Headers(init.headers);
	if (init.ip) headers.set("cf-connecting-ip", init.ip);
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	const ctx = createExecutionContext();
	const res = await worker.fetch(
		new Request(`http://gitinsight.test${path}`, { method: init.method ?? "GET", headers, body: init.body }),
		bindings as Env,
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return res;
}

/** A fresh env object (config is memoised per env) with small budgets. */
function limited(overrides: Partial<Env> = {}): Partial<Env> {
	return {
		...env,
		RATE_LIMIT_SEARCH: "3/60",
		RATE_LIMIT_READ: "5/60",
		RATE_LIMIT_EVENTS: "2/60",
		...overrides,
	};
}

/** A client address no other test (or earlier run against the same Redis) uses. */
const freshIp = () =>
	Array.from(crypto.getRandomValues(new Uint8Array(4)), (b, i) => (i === 0 ? 10 : b)).join(".");

beforeEach(() => resetRateLimiterState());

describe("rate limits", () => {
	it("limits anonymous search per client address, with RateLimit headers and a 429 envelope", async () => {
		const bindings = limited();
		const ip = freshIp();
		const remaining: string[] = [];
		for (let i = 0; i < 3; i++) {
			const res = await send(bindings, "/api/v1/fast/search?q=rust", { ip });
			expect(res.status).toBe(200);
			expect(res.headers.get("ratelimit-policy")).toBe('"search";q=3;w=60');
			remaining.push(res.headers.get("ratelimit-remaining") ?? "");
			await res.body?.cancel();
		}
		// The sliding window's remaining count drops by one per allowed request.
		expect(remaining).toEqual(["2", "1", "0"]);

		const res = await send(bindings, "/api/v1/fast/search?q=rust", { ip });
		expect(res.status).toBe(429);
		const retryAfter = Number(res.headers.get("retry-after"));
		// The current window alone is full (3 of 3): room returns once it is the previous window
		// and weighs (3 − 1) / 3, i.e. the rest of this window plus a third of the next.
		expect(retryAfter).toBeGreaterThanOrEqual(20);
		expect(retryAfter).toBeLessThanOrEqual(80);
		expect(res.headers.get("ratelimit-remaining")).toBe("0");
		expect(res.headers.get("ratelimit")).toMatch(/^"search";r=0;t=\d+$/);
		expect(res.headers.get("content-type")).toMatch(/application\/json/);
		const error = await errorBody(res);
		expect(error.code).toBe("rate_limited");
		expect(error.request_id).toBe(res.headers.get("x-request-id"));

		// Another address still has its whole budget.
		const other = await send(bindings, "/api/v1/fast/search?q=rust", { ip: freshIp() });
		expect(other.status).toBe(200);
		await other.body?.cancel();
	});

	it("shares one count between isolates through Redis", async () => {
		const bindings = limited();
		const ip = freshIp();
		for (let i = 0; i < 2; i++)
			await (await send(bindings, "/api/v1/fast/search?q=a", { ip })).body?.cancel();
		// A fresh isolate knows nothing locally: Redis tells it two of three are used.
		resetRateLimiterState();
		const third = await send(bindings, "/api/v1/fast/search?q=a", { ip });
		expect(third.status).toBe(200);
		expect(third.headers.get("ratelimit-remaining")).toBe("0");
		await third.body?.cancel();
		resetRateLimiterState();
		expect((await send(bindings, "/api/v1/fast/search?q=a", { ip })).status).toBe(429);
	});

	it("keeps budgets apart: search exhausted, reads still allowed", async () => {
		const bindings = limited();
		const ip = freshIp();
		for (let i = 0; i < 3; i++)
			await (await send(bindings, "/api/v1/fast/search?q=go", { ip })).body?.cancel();
		expect((await send(bindings, "/api/v1/fast/search?q=go", { ip })).status).toBe(429);
		const read = await send(bindings, "/api/v1/fast/leaderboard", { ip });
		expect(read.status).toBe(200);
		expect(read.headers.get("ratelimit-policy")).toBe('"read";q=5;w=60');
		await read.body?.cancel();
	});

	it("limits authenticated callers by token subject, not by address", async () => {
		const bindings = limited();
		const token = await hs256Token({ sub: `rl-${crypto.randomUUID()}` });
		// Five reads from five addresses: one subject, one budget.
		for (let i = 0; i < 5; i++) {
			const res = await send(bindings, "/api/v1/me", { token, ip: freshIp() });
			expect(res.status).toBe(200);
			await res.body?.cancel();
		}
		const res = await send(bindings, "/api/v1/me", { token, ip: freshIp() });
		expect(res.status).toBe(429);
		expect((await errorBody(res)).code).toBe("rate_limited");
		// Anonymous calls from one of those addresses are a different caller.
		const anon = await send(bindings, "/api/v1/fast/leaderboard", { ip: freshIp() });
		expect(anon.status).toBe(200);
		await anon.body?.cancel();
	});

	it("limits event ingestion with its own budget", async () => {
		const bindings = limited();
		const token = await hs256Token({ sub: `svc-${crypto.randomUUID()}`, role: "service" });
		const post = () =>
			send(bindings, "/api/v1/events", {
				token,
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ type: "x-rate-test", data: {} }),
			});
		expect((await post()).status).toBe(202);
		expect((await post()).status).toBe(202);
		const third = await post();
		expect(third.status).toBe(429);
		expect(third.headers.get("ratelimit-policy")).toBe('"events";q=2;w=60');
	});

	it("does not limit /health, /metrics or preflights", async () => {
		const bindings = limited({ RATE_LIMIT_READ: "1/60" });
		const ip = freshIp();
		for (let i = 0; i < 3; i++) {
			const res = await send(bindings, "/health", { ip });
			expect(res.status).toBe(200);
			expect(res.headers.get("ratelimit-policy")).toBeNull();
			await res.body?.cancel();
		}
		for (let i = 0; i < 3; i++) {
			const res = await send(bindings, "/api/v1/fast/leaderboard", {
				ip,
				method: "OPTIONS",
				headers: { origin: "http://localhost:8787", "access-control-request-method": "GET" },
			});
			expect(res.status).toBe(204);
		}
	});

	it("can be switched off per budget", async () => {
		const bindings = limited({ RATE_LIMIT_SEARCH: "off" });
		const ip = freshIp();
		for (let i = 0; i < 6; i++) {
			const res = await send(bindings, "/api/v1/fast/search?q=cli", { ip });
			expect(res.status).toBe(200);
			expect(res.headers.get("ratelimit-policy")).toBeNull();
			await res.body?.cancel();
		}
	});

	it("with the store down: the request that meets the failure is served, then budgets hold from the isolate's own counts", async () => {
		// An Upstash URL where nothing listens: every command fails fast.
		const bindings = limited({ RATE_LIMIT_SEARCH: "2/60", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" });
		const ip = freshIp();
		const started = Date.now();
		const first = await send(bindings, "/api/v1/fast/search?q=db", { ip });
		// Fail open: served, and without RateLimit headers (nothing was counted by the store).
		expect(first.status).toBe(200);
		expect(first.headers.get("ratelimit-policy")).toBeNull();
		await first.body?.cancel();
		// Redis is not asked again for a while: the isolate counts this caller itself.
		const second = await send(bindings, "/api/v1/fast/search?q=db", { ip });
		expect(second.status).toBe(200);
		expect(second.headers.get("ratelimit-remaining")).toBe("0");
		await second.body?.cancel();
		const third = await send(bindings, "/api/v1/fast/search?q=db", { ip });
		expect(third.status).toBe(429);
		expect((await errorBody(third)).code).toBe("rate_limited");
		// Another caller still has its own budget.
		const other = await send(bindings, "/api/v1/fast/search?q=db", { ip: freshIp() });
		expect(other.status).toBe(200);
		await other.body?.cancel();
		expect(Date.now() - started).toBeLessThan(10_000);
	});

	it("rejects a bad budget setting as a configuration error, naming the variable", async () => {
		const res = await send({ ...env, RATE_LIMIT_SEARCH: "lots" }, "/api/v1/fast/search?q=x");
		expect(res.status).toBe(503);
		expect((await errorBody(res)).code).toBe("service_unavailable");
	});
});

describe("rate-limit keys and budgets (pure)", () => {
	it("maps paths to budgets", () => {
		expect(budgetOf("/api/v1/fast/search")).toBe("search");
		expect(budgetOf("/api/v1/events/batch")).toBe("events");
		expect(budgetOf("/api/v1/events")).toBe("events");
		expect(budgetOf("/api/v1/fast/repositories/1/summary")).toBe("read");
		expect(budgetOf("/api/v1/fast/searchx")).toBe("read");
	});

	it("keys IPv4 by address and IPv6 by its /64", () => {
		expect(clientKey("203.0.113.9")).toBe("ip:203.0.113.9");
		expect(clientKey(undefined)).toBe("ip:unknown");
		expect(clientKey("2001:db8:1:2:3:4:5:6")).toBe("ip6:2001:db8:1:2::/64");
		expect(clientKey("2001:0db8:0001:0002::1")).toBe("ip6:2001:db8:1:2::/64");
		expect(clientKey("2001:db8::1")).toBe("ip6:2001:db8:0:0::/64");
		expect(clientKey("::1")).toBe("ip6:0:0:0:0::/64");
		expect(clientKey("::ffff:203.0.113.5")).toBe("ip:203.0.113.5");
		expect(clientKey("::ffff:198.51.100.7")).toBe("ip:198.51.100.7");
		expect(siteKey(clientKey("2001:db8:1:2:3:4:5:6"))).toBe("ip6:2001:db8:1::/48");
		expect(siteKey(clientKey("2001:db8::1"))).toBe("ip6:2001:db8:0::/48");
		expect(siteKey(clientKey("203.0.113.9"))).toBeUndefined();
		expect(siteKey("sub:2001:db8:1:2::/64")).toBeUndefined();
	});

	it("an IPv6 /48 spreading over its /64s shares one budget of 16 /64s; another /48 is served", async () => {
		const bindings = limited({ RATE_LIMIT_SEARCH: "2/60" });
		const site = Array.from(crypto.getRandomValues(new Uint16Array(2)), (g) => g.toString(16)).join(":");
		let allowed = 0;
		let refusedBySite = 0;
		// 24 /64s of one /48, each within its own budget (2): 48 requests against the /48's 32.
		for (let net = 0; net < 24; net++) {
			for (let i = 0; i < 2; i++) {
				const res = await send(bindings, "/api/v1/fast/search?q=rust", {
					ip: `2001:${site}:${net.toString(16)}::1`,
				});
				if (res.status === 200) {
					allowed++;
					await res.body?.cancel();
				} else {
					expect(res.status).toBe(429);
					const error = await errorBody(res);
					expect(error.code).toBe("rate_limited");
					if (error.message.includes("from this /48")) refusedBySite++;
				}
			}
		}
		expect(allowed).toBe(2 * IPV6_SITE_FACTOR);
		expect(refusedBySite).toBe(48 - 2 * IPV6_SITE_FACTOR);
		// A host in another /48 is not affected.
		const other = await send(bindings, "/api/v1/fast/search?q=rust", { ip: `2002:${site}:1::1` });
		expect(other.status).toBe(200);
	});
});

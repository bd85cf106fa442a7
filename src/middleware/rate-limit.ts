// Rate limits for /api/v1: a sliding-window counter per budget and caller, kept in Upstash
// Redis so every isolate and colo shares it.
//   caller   the token's subject when the request carries a valid token ("sub:<sub>"), else the
//            client IP (CF-Connecting-IP; IPv6 by its /64, since one host holds a whole /64).
//            An IPv6 caller also spends from its /48's budget, IPV6_SITE_FACTOR times its own:
//            a /48 is one site's allocation (65,536 /64s), so it cannot multiply its budget.
//   budgets  search (/api/v1/fast/search), events (/api/v1/events), read (everything else),
//            each "<requests>/<seconds>" from RATE_LIMIT_SEARCH, RATE_LIMIT_READ, RATE_LIMIT_EVENTS
//   window   two fixed windows weighted by how far the current one has run (Cloudflare's
//            sliding-window approximation): count = previous × (1 − elapsed/window) + current.
//            Only allowed requests are counted, so a client that backs off recovers on time.
//   cost     the first request of a caller in a window (per isolate) asks Redis, atomically; the
//            isolate then decides locally from the counts Redis last reported plus its own
//            requests since, and adds those to Redis in the background (ctx.waitUntil), so the
//            hot path pays no Redis round trip (Upstash writes go to its primary region).
// Answers 429 `rate_limited` in the API envelope with Retry-After, and on every limited route
// the IETF RateLimit headers (RateLimit-Policy / RateLimit, draft 9) and the older
// RateLimit-Limit / -Remaining / -Reset trio many clients read.
// Store down (an error or the limiter client's 1 s timeout): the request that met it is allowed
// (a Redis outage must not become an API outage), one warning per minute is logged, and for
// STORE_BACKOFF_MS Redis is not asked at all: every caller is decided from this isolate's own
// counts (a caller already refused stays refused), so a dead store costs no latency and budgets
// still hold per isolate. With no Redis configured at all (local runs) nothing is limited.
// Cost on the hot path: the caller's key (a memoised token verification), then local maps; the
// Redis client (an isolate-level memo) is touched only for a caller's first request in a window
// and for background syncs. Scripts run by EVALSHA (sent once per isolate).
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv, RateBudget } from "../env";
import { ApiError } from "../errors";
import { LuaScript, type RedisLike } from "../lib/redis";
import { bearerToken, verifyToken } from "./auth";

export const BUDGETS = ["search", "read", "events"] as const;
export type BudgetName = (typeof BUDGETS)[number];

/** Which budget a path spends. */
export function budgetOf(path: string): BudgetName {
	if (path === "/api/v1/fast/search" || path.startsWith("/api/v1/fast/search/")) return "search";
	if (path === "/api/v1/events" || path.startsWith("/api/v1/events/")) return "events";
	return "read";
}

// KEYS[1] current window, KEYS[2] previous window; ARGV: weight of the previous window (0..1),
// limit, window length in ms. Returns {allowed 0|1, current count, previous count}.
const SLIDING_WINDOW = new LuaScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if prev * tonumber(ARGV[1]) + cur + 1 > tonumber(ARGV[2]) then
  return {0, cur, prev}
end
cur = redis.call('INCR', KEYS[1])
if cur == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2) end
return {1, cur, prev}
`);

const STORE_BACKOFF_MS = 10_000;
/** How long a background sync waits for more requests of the same caller to add in one call. */
const FLUSH_DELAY_MS = 20;
/** One background sync runs at most this long; the next request starts another. */
const SYNC_BUDGET_MS = 1000;
const SYNC_DEAD_MS = 5000;

function syncing(k: Known, now: number): boolean {
	return k.flushingSince !== 0 && now - k.flushingSince < SYNC_DEAD_MS;
}
const WARN_EVERY_MS = 60_000;

// Isolate-scoped: when the store last failed, when that was last logged, and callers known to
// be over a budget until a time (answered without a Redis round trip while it lasts).
let storeDownUntil = 0;
let lastWarnAt = 0;
const blocked = new Map<string, number>();
const BLOCKED_MAX = 10_000;

/** How many /64 budgets the /48 around them may spend in all. */
export const IPV6_SITE_FACTOR = 16;

/** The expanded, zero-trimmed groups of an IPv6 address (8 of them, or fewer when malformed). */
function ipv6Groups(ip: string): string[] {
	const [head = "", tail = ""] = ip.toLowerCase().split("::", 2);
	const h = head ? head.split(":") : [];
	const t = ip.includes("::") && tail ? tail.split(":") : [];
	const groups = ip.includes("::")
		? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t]
		: h;
	return groups.map((g) => g.replace(/^0+(?=.)/, ""));
}

/** The part of an IPv6 address that identifies a host: its /64. */
export function clientKey(ip: string | undefined): string {
	if (!ip) return "ip:unknown";
	if (!ip.includes(":")) return `ip:${ip}`;
	// An IPv4-mapped IPv6 address (::ffff:203.0.113.5) is that IPv4 client.
	const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
	if (mapped) return `ip:${mapped[1]}`;
	return `ip6:${ipv6Groups(ip).slice(0, 4).join(":")}::/64`;
}

/** The /48 an IPv6 caller key (clientKey) belongs to, or undefined for any other caller. */
export function siteKey(caller: string): string | undefined {
	const m = /^ip6:([0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}):[0-9a-f]{1,4}::\/64$/.exec(caller);
	return m ? `ip6:${m[1]}::/48` : undefined;
}

async function callerOf(c: Context<AppEnv>): Promise<string> {
	try {
		const token = bearerToken(c);
		if (token) return `sub:${(await verifyToken(token, c.get("deps").config)).sub}`;
	} catch {
		// A malformed or invalid token is limited by address; the route's auth answers the 401.
	}
	return clientKey(c.req.header("cf-connecting-ip"));
}

interface Decision {
	allowed: boolean;
	remaining: number;
	/** Seconds until the budget has room again (0 when it has). */
	resetS: number;
}

function decide(budget: RateBudget, nowMs: number, allowed: boolean, cur: number, prev: number): Decision {
	const windowMs = budget.windowS * 1000;
	const elapsed = (nowMs % windowMs) / windowMs;
	const used = prev * (1 - elapsed) + cur;
	const remaining = Math.max(0, Math.floor(budget.limit - used));
	const untilWindowEnd = (windowMs - (nowMs % windowMs)) / 1000;
	let resetS = Math.ceil(untilWindowEnd);
	if (!allowed && cur + 1 <= budget.limit && prev > 0) {
		// Room comes back as the previous window's weight decays: prev × (1 − f) ≤ limit − cur − 1.
		const f = 1 - (budget.limit - cur - 1) / prev;
		resetS = Math.max(1, Math.ceil((f - elapsed) * budget.windowS));
	} else if (!allowed && cur > 0) {
		// The current window alone is full: it becomes the previous one, and room comes back once
		// its weight has decayed to (limit − 1) / cur into the next window.
		resetS = Math.ceil(untilWindowEnd + budget.windowS * Math.max(0, 1 - (budget.limit - 1) / cur));
	}
	return { allowed, remaining, resetS: Math.max(allowed ? 0 : 1, resetS) };
}

function setHeaders(c: Context<AppEnv>, name: BudgetName, budget: RateBudget, d: Decision): void {
	c.header("RateLimit-Policy", `"${name}";q=${budget.limit};w=${budget.windowS}`);
	c.header("RateLimit", `"${name}";r=${d.remaining};t=${d.resetS}`);
	c.header("RateLimit-Limit", String(budget.limit));
	c.header("RateLimit-Remaining", String(d.remaining));
	c.header("RateLimit-Reset", String(d.resetS));
}

function warnStoreDown(err: unknown, now: number): void {
	if (now - lastWarnAt < WARN_EVERY_MS) return;
	lastWarnAt = now;
	console.warn(
		JSON.stringify({
			level: "warn",
			msg: "rate limiter store unavailable; allowing requests",
			error: err instanceof Error ? err.name : "unknown",
		}),
	);
}

/**
 * What this isolate knows of one caller's budget in the current window: the global counts Redis
 * last reported and the requests it has allowed since, not yet added there.
 */
interface Known {
	index: number;
	cur: number;
	prev: number;
	pending: number;
	/** When the running background sync started (0: none). A sync cut off with its request is presumed dead after SYNC_DEAD_MS. */
	flushingSince: number;
}

// Isolate-scoped; bounded (cleared when full, which only costs a Redis round trip per caller).
const known = new Map<string, Known>();
const KNOWN_MAX = 10_000;

// KEYS[1] current window, KEYS[2] previous window; ARGV: count to add, window length in ms.
// Returns {current count, previous count}.
const ADD = new LuaScript(`
local cur = redis.call('INCRBY', KEYS[1], ARGV[1])
if cur == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2) end
return {cur, tonumber(redis.call('GET', KEYS[2]) or '0')}
`);

/** Adds this isolate's allowed requests to Redis and refreshes what it knows (background). */
async function flush(
	redis: RedisLike,
	keyOf: (index: number) => string,
	k: Known,
	windowMs: number,
): Promise<void> {
	const started = Date.now();
	k.flushingSince = started;
	try {
		// Bounded, so it never outlives its request's waitUntil: the next request starts another.
		while (k.pending > 0 && Date.now() - started < SYNC_BUDGET_MS) {
			// Let concurrent requests of this caller join the same Redis call.
			await new Promise((resolve) => setTimeout(resolve, FLUSH_DELAY_MS));
			const n = k.pending;
			try {
				const reply = await ADD.run<[number, number]>(
					redis,
					[keyOf(k.index), keyOf(k.index - 1)],
					[String(n), String(windowMs)],
				);
				const [cur, prev] = reply.map(Number) as [number, number];
				k.pending -= n;
				k.cur = Math.max(k.cur, cur);
				k.prev = prev;
			} catch (err) {
				// Redis misses these requests (fail open); this isolate keeps counting them.
				warnStoreDown(err, Date.now());
				storeDownUntil = Date.now() + STORE_BACKOFF_MS;
				k.pending -= n;
				k.cur += n;
				return;
			}
		}
	} finally {
		if (k.flushingSince === started) k.flushingSince = 0;
	}
}

/**
 * The first request of a caller in a window (per isolate) is decided by Redis, atomically; later
 * ones are decided from what the isolate knows, and added to Redis in the background. So the
 * limiter costs one round trip per caller per window per isolate, not one per request; the price
 * is that isolates admitting the same caller at the same moment can overshoot by the requests in
 * flight between two syncs.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
	const { config } = c.get("deps");
	const name = budgetOf(c.req.path);
	const budget = config.rateLimits[name];
	// No store configured (local runs without Redis): nothing to count against.
	if (!budget || !config.redis) return next();
	const caller = await callerOf(c);
	const decision = await spend(c, name, budget, caller);
	if (decision && !decision.allowed) return reject(name, budget, decision);
	const site = siteKey(caller);
	if (site) {
		const siteBudget = { limit: budget.limit * IPV6_SITE_FACTOR, windowS: budget.windowS };
		const shared = await spend(c, name, siteBudget, site);
		if (shared && !shared.allowed) return reject(name, siteBudget, shared, "from this /48");
	}
	// The caller's own budget in the headers (null: the store failed just now, fail open).
	if (decision) setHeaders(c, name, budget, decision);
	await next();
});

/**
 * Spends one request of `caller`'s `budget` (or refuses it): the decision, or null when the
 * store failed on this request (allowed, fail open; counted locally from here on).
 */
async function spend(
	c: Context<AppEnv>,
	name: BudgetName,
	budget: RateBudget,
	caller: string,
): Promise<Decision | null> {
	const { keys, ctx } = c.get("deps");
	const now = Date.now();
	const id = `${name}|${caller}`;
	const blockedUntil = blocked.get(id);
	if (blockedUntil !== undefined) {
		if (blockedUntil > now) {
			const resetS = Math.max(1, Math.ceil((blockedUntil - now) / 1000));
			return { allowed: false, remaining: 0, resetS };
		}
		blocked.delete(id);
	}
	// The client is built (an isolate-level memo) only when Redis is actually asked.
	const redisClient = (): RedisLike => c.get("deps").redis("limiter") as RedisLike;
	const storeDown = now < storeDownUntil;

	const windowMs = budget.windowS * 1000;
	const index = Math.floor(now / windowMs);
	const elapsed = (now % windowMs) / windowMs;
	const keyOf = (i: number) => keys.key("rl", name, caller, i);
	let k = known.get(id);
	if (k && k.index !== index) {
		// A new window: what was counted locally belongs to the old one.
		if (k.pending > 0 && !syncing(k, now) && !storeDown)
			ctx.waitUntil(flush(redisClient(), keyOf, k, windowMs));
		k = undefined;
	}
	if (!k && storeDown) {
		// The store is known down: count this caller in the isolate alone (its budget still holds
		// here; what it spends is added to Redis by the first sync after the store is back).
		if (known.size >= KNOWN_MAX) known.clear();
		k = { index, cur: 0, prev: 0, pending: 0, flushingSince: 0 };
		known.set(id, k);
	}
	let decision: Decision;
	if (k) {
		const used = k.prev * (1 - elapsed) + k.cur + k.pending;
		if (used + 1 > budget.limit) {
			decision = decide(budget, now, false, k.cur + k.pending, k.prev);
		} else {
			k.pending++;
			decision = decide(budget, now, true, k.cur + k.pending, k.prev);
			if (!syncing(k, now) && !storeDown) ctx.waitUntil(flush(redisClient(), keyOf, k, windowMs));
		}
	} else {
		try {
			const reply = await SLIDING_WINDOW.run<[number, number, number]>(
				redisClient(),
				[keyOf(index), keyOf(index - 1)],
				[(1 - elapsed).toFixed(6), String(budget.limit), String(windowMs)],
			);
			const [allowed, cur, prev] = reply.map(Number) as [number, number, number];
			decision = decide(budget, now, allowed === 1, cur, prev);
			const raced = known.get(id);
			if (raced && raced.index === index) {
				// Another request of this caller asked Redis at the same time: merge, keep its pending.
				raced.cur = Math.max(raced.cur, cur);
				raced.prev = prev;
			} else {
				if (known.size >= KNOWN_MAX) known.clear();
				known.set(id, { index, cur, prev, pending: 0, flushingSince: 0 });
			}
		} catch (err) {
			storeDownUntil = now + STORE_BACKOFF_MS;
			warnStoreDown(err, now);
			// Allowed (fail open), and counted locally from here on while the store is down.
			if (known.size >= KNOWN_MAX) known.clear();
			known.set(id, { index, cur: 0, prev: 0, pending: 1, flushingSince: 0 });
			return null;
		}
	}
	if (!decision.allowed) {
		if (blocked.size >= BLOCKED_MAX) blocked.clear();
		blocked.set(id, now + decision.resetS * 1000);
	}
	return decision;
}

function reject(name: BudgetName, budget: RateBudget, d: Decision, scope = ""): never {
	const from = scope ? ` ${scope}` : "";
	throw new ApiError("rate_limited", `too many ${name} requests${from}; retry in ${d.resetS} s`, {
		headers: {
			"Retry-After": String(d.resetS),
			"RateLimit-Policy": `"${name}";q=${budget.limit};w=${budget.windowS}`,
			RateLimit: `"${name}";r=0;t=${d.resetS}`,
			"RateLimit-Limit": String(budget.limit),
			"RateLimit-Remaining": "0",
			"RateLimit-Reset": String(d.resetS),
		},
	});
}

/** Test seam: forget the isolate's limiter state. */
export function resetRateLimiterState(): void {
	storeDownUntil = 0;
	lastWarnAt = 0;
	blocked.clear();
	known.clear();
}

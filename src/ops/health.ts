// GET /health: liveness plus a bounded probe of each dependency (Neon Postgres, Upstash Redis,
// the Python analysis API). healthy → 200, degraded (an optional dependency failing) → 200,
// unhealthy (Postgres unreachable) → 503. Every probe is capped at HEALTH_TIMEOUT_MS.
// The endpoint is public, so the probes are not run per request: an isolate runs them at most
// once per HEALTH_CACHE_MS (one run in flight, shared) and answers from that result meanwhile,
// with `checked_at` saying when it was taken; a flood of /health costs the backends one probe
// per isolate per interval (issue 11).
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Deps } from "../deps";
import type { AppEnv, Config } from "../env";
import { isolateFigures } from "../lib/isolate";
import type { ApiOperation } from "../lib/openapi";
import { withTimeout } from "../lib/timeout";

export type DependencyStatus = "healthy" | "unhealthy" | "not_configured";
export type OverallStatus = "healthy" | "degraded" | "unhealthy";

interface Check {
	status: DependencyStatus;
	latency_ms?: number;
	error?: string;
}

/** Go-style duration, as the seed shows it: 72h15m30s. */
export function formatUptime(ms: number): string {
	const total = Math.max(0, Math.floor(ms / 1000));
	const h = Math.floor(total / 3600);
	const m = Math.floor((total % 3600) / 60);
	const s = total % 60;
	return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

async function probe(
	run: (() => Promise<unknown>) | undefined,
	timeoutMs: number,
	what: string,
): Promise<Check> {
	if (!run) return { status: "not_configured" };
	const started = performance.now();
	try {
		await withTimeout(run(), timeoutMs, what);
		return { status: "healthy", latency_ms: Math.round(performance.now() - started) };
	} catch (err) {
		// Only the error class reaches the wire: messages can carry connection details.
		const elapsed = performance.now() - started;
		// workerd surfaces an aborted fetch under different error names; the clock is unambiguous
		// for this probe's own cap, the name for a client's shorter one (Redis: 250 ms).
		const timedOut = elapsed >= timeoutMs || (err instanceof Error && err.name === "TimeoutError");
		const error = timedOut ? "timeout" : "unreachable";
		return { status: "unhealthy", latency_ms: Math.round(elapsed), error };
	}
}

async function pingPython(baseUrl: string, timeoutMs: number): Promise<void> {
	const res = await fetch(`${baseUrl.replace(/\/+$/, "")}/health`, {
		signal: AbortSignal.timeout(timeoutMs),
	});
	await res.body?.cancel();
	if (!res.ok) throw new Error(`python api answered ${res.status}`);
}

export async function checkHealth(deps: Deps) {
	const { config } = deps;
	const timeout = config.HEALTH_TIMEOUT_MS;
	const redis = deps.redis("read");
	const [database, redisCheck, python] = await Promise.all([
		probe(() => deps.db.execute(sql`select 1`), timeout, "database"),
		probe(redis ? () => redis.ping() : undefined, timeout, "redis"),
		probe(
			config.PYTHON_API_URL ? () => pingPython(config.PYTHON_API_URL ?? "", timeout) : undefined,
			timeout,
			"python_api",
		),
	]);
	const checks = { database, redis: redisCheck, python_api: python };
	const status: OverallStatus =
		database.status !== "healthy"
			? "unhealthy"
			: redisCheck.status === "unhealthy" || python.status === "unhealthy"
				? "degraded"
				: "healthy";
	return { status, checks };
}

type Probed = Awaited<ReturnType<typeof checkHealth>> & { checkedAt: number };

// Per isolate and parsed config: the last probe run (in flight or done) and when it started.
const lastRun = new WeakMap<Config, { at: number; result: Promise<Probed> }>();

/** The probes' result, at most HEALTH_CACHE_MS old (0: probed for this request). */
export async function probedHealth(deps: Deps, now: number): Promise<Probed> {
	const { config } = deps;
	const memo = lastRun.get(config);
	if (memo && now - memo.at < config.HEALTH_CACHE_MS) {
		try {
			// A run whose request was cancelled may never settle: wait for it at most its own bound.
			return await withTimeout(memo.result, config.HEALTH_TIMEOUT_MS + 500, "shared health probe");
		} catch {
			// Probe for this request instead (below), and share that one from now on.
		}
	}
	const result = checkHealth(deps).then((r) => ({ ...r, checkedAt: now }));
	if (config.HEALTH_CACHE_MS > 0) lastRun.set(config, { at: now, result });
	return result;
}

/** Which tiers of the read cache this request's isolate and hostname actually have. */
export function cacheTiers(deps: Deps) {
	const { config, edgeTier } = deps;
	return {
		memory: config.CACHE_MEMORY_TTL_MS > 0 && config.CACHE_MEMORY_MAX_BYTES > 0 ? "on" : "off",
		// On *.workers.dev the Cache API stores nothing: the tier is off there (use a custom domain).
		edge: edgeTier,
		redis: config.redis ? "on" : "off",
	} as const;
}

export const health = new Hono<AppEnv>().get("/", async (c) => {
	const now = Date.now();
	const { startedAt } = isolateFigures(now);
	const { status, checks, checkedAt } = await probedHealth(c.get("deps"), now);
	c.header("Cache-Control", "no-store");
	return c.json(
		{
			status,
			timestamp: new Date(now).toISOString(),
			checked_at: new Date(checkedAt).toISOString(),
			version: c.get("deps").config.APP_VERSION,
			uptime: formatUptime(now - startedAt),
			dependencies: {
				database: checks.database.status,
				redis: checks.redis.status,
				python_api: checks.python_api.status,
			},
			checks,
			cache: cacheTiers(c.get("deps")),
		},
		status === "unhealthy" ? 503 : 200,
	);
});

const DependencyStatusSchema = z.enum(["healthy", "unhealthy", "not_configured"]);
const CheckSchema = z.object({
	status: DependencyStatusSchema,
	latency_ms: z.number().optional(),
	error: z.enum(["timeout", "unreachable"]).optional(),
});
export const HealthResponse = z.object({
	status: z.enum(["healthy", "degraded", "unhealthy"]),
	timestamp: z.string(),
	checked_at: z
		.string()
		.describe("when the dependency probes were run (at most HEALTH_CACHE_MS before timestamp)"),
	version: z.string(),
	uptime: z.string().describe("Go-style duration since this isolate's first request, e.g. 72h15m30s"),
	dependencies: z.object({
		database: DependencyStatusSchema,
		redis: DependencyStatusSchema,
		python_api: DependencyStatusSchema,
	}),
	checks: z.object({ database: CheckSchema, redis: CheckSchema, python_api: CheckSchema }),
	cache: z
		.object({
			memory: z.enum(["on", "off"]),
			edge: z.enum(["on", "off_workers_dev"]),
			redis: z.enum(["on", "off"]),
		})
		.describe(
			"the read cache's tiers as this hostname gets them (the Cache API does nothing on workers.dev)",
		),
});

export const healthOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/health",
		summary: "Service health and bounded dependency probes",
		description:
			"healthy and degraded answer 200, unhealthy (Postgres unreachable) answers 503 with the same body.",
		tag: "operations",
		response: HealthResponse,
	},
];

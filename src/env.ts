// The app's environment: Hono's AppEnv (bindings from `wrangler types` + per-request variables)
// and the parsed, validated configuration derived from the string vars.
import { z } from "zod";
import type { Deps } from "./deps";
import type { Principal } from "./middleware/auth";

export type AppVariables = {
	requestId: string;
	deps: Deps;
	principal: Principal;
	/** The error code of an error answer, for the access log and the metrics datapoint. */
	errorCode: string;
};

export type AppEnv = { Bindings: Env; Variables: AppVariables };

const optionalUrl = z
	.string()
	.trim()
	.transform((v) => (v === "" ? undefined : v))
	.pipe(z.url({ protocol: /^https?$/ }).optional());

/** A rate-limit budget: `limit` requests per `windowS` seconds. */
export interface RateBudget {
	limit: number;
	windowS: number;
}

/** "<requests>/<seconds>" (e.g. "120/60"), or "off". */
const rateBudget = (fallback: string) =>
	z
		.string()
		.trim()
		.default(fallback)
		.transform((v, ctx): RateBudget | null => {
			if (v === "off") return null;
			const m = /^(\d{1,9})\/(\d{1,6})$/.exec(v);
			const limit = Number(m?.[1]);
			const windowS = Number(m?.[2]);
			if (!m || limit < 1 || windowS < 1 || windowS > 86_400) {
				ctx.addIssue({ code: "custom", message: 'expected "<requests>/<seconds>" (e.g. "120/60") or "off"' });
				return z.NEVER;
			}
			return { limit, windowS };
		});

const ConfigSchema = z.object({
	APP_VERSION: z.string().min(1).default("0.0.0"),
	ENVIRONMENT: z.string().default("development"),
	JWT_ISSUER: z.string().min(1),
	JWT_AUDIENCE: z.string().min(1),
	JWT_SECRET: z
		.string()
		.optional()
		.transform((v) => (v ? v : undefined))
		.pipe(z.string().min(32, "JWT_SECRET must be at least 32 characters").optional()),
	JWT_JWKS_URL: optionalUrl.optional(),
	PYTHON_API_URL: optionalUrl.optional(),
	UPSTASH_REDIS_REST_URL: optionalUrl.optional(),
	UPSTASH_REDIS_REST_TOKEN: z.string().optional(),
	REDIS_KEY_PREFIX: z.string().default("gi:v1:"),
	CORS_ORIGINS: z
		.string()
		.default("")
		.transform((v) =>
			v
				.split(",")
				.map((s) => s.trim())
				.filter(Boolean),
		),
	HEALTH_TIMEOUT_MS: z.coerce.number().int().min(50).max(10_000).default(1500),
	CACHE_MEMORY_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
	GLOBAL_HUB_SHARDS: z.coerce.number().int().min(1).max(64).default(4),
	RATE_LIMIT_SEARCH: rateBudget("120/60"),
	RATE_LIMIT_READ: rateBudget("600/60"),
	RATE_LIMIT_EVENTS: rateBudget("3000/60"),
	AE_DATASET: z
		.string()
		.regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "must be an Analytics Engine dataset name")
		.default("gitinsight_requests"),
	AE_SQL_URL: optionalUrl.optional(),
	AE_API_TOKEN: z.string().optional(),
	AE_SINK_URL: optionalUrl.optional(),
	METRICS_TOKEN: z
		.string()
		.optional()
		.transform((v) => (v ? v : undefined)),
	METRICS_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
});

export type Config = z.infer<typeof ConfigSchema> & {
	/** Redis is optional locally: without a URL and token the app runs without the L2 tier. */
	redis?: { url: string; token: string };
	/** Rate-limit budgets by name; null = that budget is off. */
	rateLimits: Record<"search" | "read" | "events", RateBudget | null>;
};

// Isolate-scoped memo: `env` is the same object for every request of an isolate, so the
// parsed config can be reused; a WeakMap keeps tests that pass their own env objects apart.
const parsed = new WeakMap<object, Config>();

/** Parses the string vars once per env object; throws ConfigError naming every bad var. */
export function getConfig(env: Env): Config {
	const hit = parsed.get(env);
	if (hit) return hit;
	const result = ConfigSchema.safeParse(env);
	if (!result.success) {
		const detail = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
		throw new ConfigError(detail);
	}
	const c = result.data;
	const rateLimits = { search: c.RATE_LIMIT_SEARCH, read: c.RATE_LIMIT_READ, events: c.RATE_LIMIT_EVENTS };
	const config: Config =
		c.UPSTASH_REDIS_REST_URL && c.UPSTASH_REDIS_REST_TOKEN
			? { ...c, rateLimits, redis: { url: c.UPSTASH_REDIS_REST_URL, token: c.UPSTASH_REDIS_REST_TOKEN } }
			: { ...c, rateLimits };
	parsed.set(env, config);
	return config;
}

export class ConfigError extends Error {
	override name = "ConfigError";
}

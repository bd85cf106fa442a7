// The app's environment: Hono's AppEnv (bindings from `wrangler types` + per-request variables)
// and the parsed, validated configuration derived from the string vars.
import { z } from "zod";
import type { Deps } from "./deps";
import type { Principal } from "./middleware/auth";

export type AppVariables = {
	requestId: string;
	deps: Deps;
	principal: Principal;
};

export type AppEnv = { Bindings: Env; Variables: AppVariables };

const optionalUrl = z
	.string()
	.trim()
	.transform((v) => (v === "" ? undefined : v))
	.pipe(z.url({ protocol: /^https?$/ }).optional());

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
});

export type Config = z.infer<typeof ConfigSchema> & {
	/** Redis is optional locally: without a URL and token the app runs without the L2 tier. */
	redis?: { url: string; token: string };
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
	const config: Config =
		c.UPSTASH_REDIS_REST_URL && c.UPSTASH_REDIS_REST_TOKEN
			? { ...c, redis: { url: c.UPSTASH_REDIS_REST_URL, token: c.UPSTASH_REDIS_REST_TOKEN } }
			: c;
	parsed.set(env, config);
	return config;
}

export class ConfigError extends Error {
	override name = "ConfigError";
}

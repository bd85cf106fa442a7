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

/** Durable Object location hints (the platform's list): GLOBAL_HUB_LOCATION. */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type LocationHint = (typeof LOCATION_HINTS)[number];

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
	// Set only during a rotation: what the previous secret signed still verifies (hs256.ts).
	JWT_SECRET_PREVIOUS: z
		.string()
		.optional()
		.transform((v) => (v ? v : undefined))
		.pipe(z.string().min(32, "JWT_SECRET_PREVIOUS must be at least 32 characters").optional()),
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
	// /health answers from probes at most this old (per isolate); 0 probes on every request.
	HEALTH_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
	// Postgres cancels a search or leaderboard statement after this; below the cache's 5 s
	// origin timeout, so no read outlives the request that gave up on it (readSettings).
	SQL_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(1).max(4_000).default(3_000),
	CACHE_MEMORY_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
	// An isolate has 128 MB for everything: the memory tier gets at most 64 MiB of it.
	CACHE_MEMORY_MAX_BYTES: z.coerce
		.number()
		.int()
		.min(0)
		.max(64 * 1024 * 1024)
		.default(32 * 1024 * 1024),
	GLOBAL_HUB_SHARDS: z.coerce.number().int().min(1).max(64).default(4),
	// Where the global shards are created (a Durable Object location hint); empty = no hint.
	GLOBAL_HUB_LOCATION: z
		.string()
		.optional()
		.transform((v) => (v ? v : undefined))
		.pipe(
			z.enum(LOCATION_HINTS, { error: `must be one of ${LOCATION_HINTS.join(", ")} (or empty)` }).optional(),
		),
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
// parsed config (or the reason it is refused) can be reused; a WeakMap keeps tests that pass
// their own env objects apart.
const parsed = new WeakMap<object, Config | ConfigError>();

/**
 * Parses the string vars once per env object; throws ConfigError naming every bad var. With
 * ENVIRONMENT=production it also refuses settings that only make sense locally (productionProblems).
 */
export function getConfig(env: Env): Config {
	const hit = parsed.get(env);
	if (hit instanceof ConfigError) throw hit;
	if (hit) return hit;
	const config = parseConfig(env);
	parsed.set(env, config);
	if (config instanceof ConfigError) throw config;
	return config;
}

/** The refusal of this env's configuration, or undefined when it is usable. */
export function configProblem(env: Env): ConfigError | undefined {
	try {
		getConfig(env);
		return undefined;
	} catch (err) {
		if (err instanceof ConfigError) return err;
		throw err;
	}
}

function parseConfig(env: Env): Config | ConfigError {
	const result = ConfigSchema.safeParse(env);
	if (!result.success) {
		return new ConfigError(result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
	}
	const c = result.data;
	if (c.ENVIRONMENT === "production") {
		const problems = productionProblems(env);
		if (problems.length > 0) return new ConfigError(problems);
	}
	const rateLimits = { search: c.RATE_LIMIT_SEARCH, read: c.RATE_LIMIT_READ, events: c.RATE_LIMIT_EVENTS };
	return c.UPSTASH_REDIS_REST_URL && c.UPSTASH_REDIS_REST_TOKEN
		? { ...c, rateLimits, redis: { url: c.UPSTASH_REDIS_REST_URL, token: c.UPSTASH_REDIS_REST_TOKEN } }
		: { ...c, rateLimits };
}

/** The configuration is unusable: every request answers 503 and the reasons are logged. */
export class ConfigError extends Error {
	override name = "ConfigError";
	constructor(readonly problems: string[]) {
		super(problems.join("; "));
	}
}

/** .dev.vars.example's JWT_SECRET: a deployment that copied the example file must not start. */
export const EXAMPLE_JWT_SECRET = "local-dev-jwt-secret-change-me-0123456789abcdef";

/** Vars that point the Worker at local stand-ins (scripts/stack/): empty in production. */
const STAND_IN_VARS = ["NEON_HTTP_ENDPOINT", "NEON_WS_PROXY", "AE_SINK_URL"] as const;
/** URLs the Worker sends credentials or tokens to: https only in production. */
const URL_VARS = ["JWT_JWKS_URL", "PYTHON_API_URL", "UPSTASH_REDIS_REST_URL", "AE_SQL_URL"] as const;
/** Secrets a production deployment cannot run without (wrangler.toml [env.production.secrets]). */
const REQUIRED_SECRETS = [
	"DATABASE_URL",
	"UPSTASH_REDIS_REST_URL",
	"UPSTASH_REDIS_REST_TOKEN",
	"JWT_SECRET",
	"AE_API_TOKEN",
	"METRICS_TOKEN",
] as const;

/**
 * Why this env must not serve in production (empty: it may). Each problem names the var, never
 * its value. Checked once per isolate (getConfig's memo), so it costs nothing per request.
 */
export function productionProblems(env: Env): string[] {
	const vars = env as unknown as Record<string, unknown>;
	const text = (name: string) => (typeof vars[name] === "string" ? (vars[name] as string).trim() : "");
	const problems: string[] = [];
	for (const name of STAND_IN_VARS) {
		if (text(name))
			problems.push(`${name} is set: it points at a local stand-in and must be empty in production`);
	}
	for (const name of URL_VARS) {
		const v = text(name);
		if (v && !v.startsWith("https://")) problems.push(`${name} must be an https:// URL in production`);
	}
	for (const name of REQUIRED_SECRETS) {
		if (!text(name)) problems.push(`${name} is not set (wrangler secret put ${name} --env production)`);
	}
	const db = text("DATABASE_URL");
	if (db && !/^postgres(ql)?:\/\//.test(db))
		problems.push("DATABASE_URL must be a postgres:// connection string");
	for (const name of ["JWT_SECRET", "JWT_SECRET_PREVIOUS"]) {
		const secret = text(name);
		const weak = secret ? jwtSecretWeakness(secret) : undefined;
		if (weak) problems.push(`${name} ${weak}`);
	}
	if (text("JWT_SECRET_PREVIOUS") && text("JWT_SECRET_PREVIOUS") === text("JWT_SECRET"))
		problems.push("JWT_SECRET_PREVIOUS equals JWT_SECRET: set it to the secret being retired");
	for (const origin of text("CORS_ORIGINS")
		.split(",")
		.map((o) => o.trim())) {
		if (origin && !origin.startsWith("https://"))
			problems.push("CORS_ORIGINS must list https:// origins only");
	}
	for (const [name, value] of Object.entries(vars)) {
		if (typeof value === "string" && value.includes("REPLACE_WITH")) {
			problems.push(`${name} still holds a REPLACE_WITH placeholder from wrangler.toml`);
		}
	}
	return [...new Set(problems)];
}

/**
 * Why a signing secret is too weak for production, or undefined. Required: at least 32 random
 * bytes' worth, i.e. the output of `openssl rand -base64 32` (44 characters) or `-hex 32` (64).
 * Estimated as length × bits per character of the alphabet it uses (hex 4, base64 6), and the
 * string's own Shannon entropy, so repeated or patterned text fails even when long.
 */
export function jwtSecretWeakness(secret: string): string | undefined {
	if (secret === EXAMPLE_JWT_SECRET) return "is the example file's value (.dev.vars.example)";
	if (/change-?me|example|placeholder|secret|password/i.test(secret)) return "looks like a placeholder";
	const bitsPerChar = /^[0-9a-f]+$/i.test(secret) ? 4 : /^[A-Za-z0-9+/_=-]+$/.test(secret) ? 6 : 6.5;
	if (secret.replace(/=+$/, "").length * bitsPerChar < 256) {
		return "is shorter than 32 random bytes (use `openssl rand -base64 32`)";
	}
	const counts = new Map<string, number>();
	for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
	let entropy = 0;
	for (const n of counts.values()) entropy -= (n / secret.length) * Math.log2(n / secret.length);
	// Random hex averages ~3.9 bits per character over 64 characters, random base64 ~5.
	if (entropy < 3.3) return "is not random enough (too few distinct characters)";
	return undefined;
}

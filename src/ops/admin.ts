// Admin-only operational endpoints. GET /api/v1/admin/config: the effective non-secret
// configuration of this deployment (what operators ask first when behaviour surprises them).
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import type { ApiOperation } from "../lib/openapi";
import { requireRole } from "../middleware/auth";
import { cacheTiers } from "./health";

export const admin = new Hono<AppEnv>().get("/config", requireRole("admin"), (c) => {
	const { config } = c.get("deps");
	c.header("Cache-Control", "no-store");
	return c.json({
		version: config.APP_VERSION,
		environment: config.ENVIRONMENT,
		auth: {
			issuer: config.JWT_ISSUER,
			audience: config.JWT_AUDIENCE,
			hs256: Boolean(config.JWT_SECRET),
			jwks: Boolean(config.JWT_JWKS_URL),
		},
		redis: { configured: Boolean(config.redis), key_prefix: config.REDIS_KEY_PREFIX },
		cache: {
			...cacheTiers(c.get("deps")),
			memory_ttl_ms: config.CACHE_MEMORY_TTL_MS,
			memory_max_bytes: config.CACHE_MEMORY_MAX_BYTES,
		},
		python_api: { configured: Boolean(config.PYTHON_API_URL) },
		cors_origins: config.CORS_ORIGINS,
		global_hub_shards: config.GLOBAL_HUB_SHARDS,
		health_timeout_ms: config.HEALTH_TIMEOUT_MS,
		rate_limits: Object.fromEntries(
			Object.entries(config.rateLimits).map(([name, b]) => [name, b ? `${b.limit}/${b.windowS}` : "off"]),
		),
		metrics: {
			dataset: config.AE_DATASET,
			sql_api: Boolean(config.AE_SQL_URL),
			local_sink: Boolean(config.AE_SINK_URL),
			protected: Boolean(config.METRICS_TOKEN),
			cache_ttl_ms: config.METRICS_CACHE_TTL_MS,
		},
	});
});

export const adminOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/admin/config",
		summary: "Effective non-secret configuration of this deployment",
		tag: "operations",
		roles: ["admin"],
		response: z.object({
			version: z.string(),
			environment: z.string(),
			auth: z.object({ issuer: z.string(), audience: z.string(), hs256: z.boolean(), jwks: z.boolean() }),
			redis: z.object({ configured: z.boolean(), key_prefix: z.string() }),
			python_api: z.object({ configured: z.boolean() }),
			cors_origins: z.array(z.string()),
			global_hub_shards: z.number().int(),
			health_timeout_ms: z.number().int(),
			rate_limits: z
				.record(z.enum(["search", "read", "events"]), z.string())
				.describe('"<requests>/<seconds>" per caller, or "off"'),
			metrics: z.object({
				dataset: z.string(),
				sql_api: z.boolean(),
				local_sink: z.boolean(),
				protected: z.boolean().describe("scrapes need the bearer secret"),
				cache_ttl_ms: z.number().int(),
			}),
		}),
	},
];

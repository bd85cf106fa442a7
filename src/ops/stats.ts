// GET /api/v1/system/stats (admin): the seed's operator summary with Workers meanings.
//   requests_per_second, average_response_time   over the last minute, from Analytics Engine
//   active_connections                            open WebSockets summed over every hub (AE)
//   cache_hit_ratio                               served-from-cache share over the last 5 minutes
// The seed's Go-only fields (memory_usage, goroutines) have no meaning in a Worker; in their
// place: the hubs (kinds, shard count, hubs heard from), this isolate (colo, age, requests it
// served) and the metrics source's state. Numbers come from the same cached AE snapshot as
// /metrics, so stats and scrapes agree.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { isolateFigures } from "../lib/isolate";
import type { ApiOperation } from "../lib/openapi";
import { requireRole } from "../middleware/auth";
import { formatUptime } from "./health";
import { cacheRatios, RATE_WINDOW_S, RATIO_WINDOW_S, readSnapshot, sharedSnapshotOf } from "./metrics.source";

/** "15ms" / "1.2s", as the seed shows average_response_time. */
export function formatDuration(ms: number): string {
	if (ms < 1) return `${Math.round(ms * 1000)}µs`;
	if (ms < 1000) return `${Math.round(ms * 10) / 10}ms`;
	return `${Math.round(ms / 100) / 10}s`;
}

export const stats = new Hono<AppEnv>().get("/stats", requireRole("admin"), async (c) => {
	const { config } = c.get("deps");
	const now = Date.now();
	const isolate = isolateFigures(now);
	const s = await readSnapshot(config, c.executionCtx, sharedSnapshotOf(c.var.deps));
	const lastMinute = s.recent1m.reduce(
		(acc, r) => ({ requests: acc.requests + r.requests, durationSum: acc.durationSum + r.durationSum }),
		{ requests: 0, durationSum: 0 },
	);
	const avgMs = lastMinute.requests > 0 ? (lastMinute.durationSum / lastMinute.requests) * 1000 : 0;
	const ratios = cacheRatios(s.recent5m);
	const byKind = Object.fromEntries(s.connections.map((k) => [k.hubKind, k]));
	c.header("Cache-Control", "no-store");
	return c.json({
		requests_per_second: Math.round((lastMinute.requests / RATE_WINDOW_S) * 100) / 100,
		average_response_time: formatDuration(avgMs),
		average_response_time_ms: Math.round(avgMs * 100) / 100,
		active_connections: s.connections.reduce((n, k) => n + k.sockets, 0),
		cache_hit_ratio: ratios ? Math.round(ratios.all * 1000) / 1000 : null,
		windows: { rate_seconds: RATE_WINDOW_S, cache_ratio_seconds: RATIO_WINDOW_S },
		hubs: {
			repository: { connections: byKind.repo?.sockets ?? 0, active: byKind.repo?.hubs ?? 0 },
			global: {
				connections: byKind.global?.sockets ?? 0,
				active: byKind.global?.hubs ?? 0,
				shards: config.GLOBAL_HUB_SHARDS,
			},
		},
		isolate: {
			colo: (c.req.raw.cf?.colo as string | undefined) ?? null,
			uptime: formatUptime(now - isolate.startedAt),
			requests_served: isolate.requests,
		},
		metrics_source: {
			up: s.sourceUp,
			age_seconds: s.fullAt === null ? null : Math.round((s.takenAt - s.fullAt) / 1000),
		},
		version: config.APP_VERSION,
	});
});

const HubFigures = z.object({
	connections: z.number().int(),
	active: z.number().int().describe("hubs that reported in the last 24 hours"),
});

export const StatsResponse = z.object({
	requests_per_second: z.number().describe("over the last minute, all isolates and colos"),
	average_response_time: z.string().describe('over the last minute, e.g. "15ms"'),
	average_response_time_ms: z.number(),
	active_connections: z.number().int().describe("open WebSockets over every hub"),
	cache_hit_ratio: z
		.number()
		.nullable()
		.describe("served from any cache tier, last 5 minutes; null without traffic"),
	windows: z.object({ rate_seconds: z.number().int(), cache_ratio_seconds: z.number().int() }),
	hubs: z.object({
		repository: HubFigures,
		global: HubFigures.extend({ shards: z.number().int() }),
	}),
	isolate: z.object({
		colo: z.string().nullable(),
		uptime: z.string(),
		requests_served: z.number().int().describe("requests this isolate has answered"),
	}),
	metrics_source: z.object({
		up: z.boolean().describe("every Analytics Engine query of the last read answered"),
		age_seconds: z.number().int().nullable(),
	}),
	version: z.string(),
});

export const statsOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/system/stats",
		summary: "Operator summary: request rate, latency, connections, cache hit ratio, hubs, isolate",
		tag: "operations",
		roles: ["admin"],
		response: StatsResponse,
	},
];

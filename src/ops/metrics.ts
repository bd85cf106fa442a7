// GET /metrics: Prometheus text exposition (format 0.0.4) from Analytics Engine aggregates.
// The numbers come from AE (every isolate and colo writes there), not from this isolate's memory:
// a scrape sees the whole service. The snapshot is cached for METRICS_CACHE_TTL_MS; when AE
// cannot be read the endpoint still answers, with the last data it had and
// gitinsight_metrics_source_up 0. An optional METRICS_TOKEN secret protects it (Bearer).
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv, Config } from "../env";
import { ApiError } from "../errors";
import type { ApiOperation } from "../lib/openapi";
import { DURATION_BUCKETS } from "./metrics.queries";
import { cacheRatios, readSnapshot, type Snapshot, sharedSnapshotOf } from "./metrics.source";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values: backslash, double quote and line feed escaped, as the format requires. */
export function escapeLabel(value: string): string {
	return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
	if (Number.isNaN(v)) return "NaN";
	if (v === Number.POSITIVE_INFINITY) return "+Inf";
	if (v === Number.NEGATIVE_INFINITY) return "-Inf";
	return String(v);
}

type Labels = Record<string, string>;

class Exposition {
	readonly #lines: string[] = [];

	family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
		this.#lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
		this.#lines.push(`# TYPE ${name} ${type}`);
		return this;
	}

	sample(name: string, labels: Labels, value: number): this {
		const entries = Object.entries(labels);
		const l = entries.length ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}` : "";
		this.#lines.push(`${name}${l} ${formatValue(value)}`);
		return this;
	}

	toString(): string {
		return `${this.#lines.join("\n")}\n`;
	}
}

/** Sums rows that share a key (e.g. totals over status for the histogram). */
function groupBy<T, K extends string>(rows: T[], key: (r: T) => K): Map<K, T[]> {
	const out = new Map<K, T[]>();
	for (const r of rows) {
		const k = key(r);
		const list = out.get(k);
		if (list) list.push(r);
		else out.set(k, [r]);
	}
	return out;
}

export function renderMetrics(s: Snapshot, config: Pick<Config, "APP_VERSION" | "ENVIRONMENT">): string {
	const e = new Exposition();

	e.family("gitinsight_requests_total", "counter", "Total number of HTTP requests");
	for (const r of s.requestTotals) {
		e.sample(
			"gitinsight_requests_total",
			{ method: r.method, endpoint: r.endpoint, status: r.status },
			r.requests,
		);
	}

	e.family("gitinsight_request_duration_seconds", "histogram", "HTTP request duration in seconds");
	const byRoute = groupBy(s.requestTotals, (r) => `${r.method} ${r.endpoint}`);
	for (const rows of byRoute.values()) {
		const first = rows[0];
		if (!first) continue;
		const labels = { method: first.method, endpoint: first.endpoint };
		const count = rows.reduce((n, r) => n + r.requests, 0);
		DURATION_BUCKETS.forEach((le, i) => {
			const inBucket = rows.reduce((n, r) => n + (r.buckets[i] ?? 0), 0);
			e.sample("gitinsight_request_duration_seconds_bucket", { ...labels, le: String(le) }, inBucket);
		});
		e.sample("gitinsight_request_duration_seconds_bucket", { ...labels, le: "+Inf" }, count);
		e.sample(
			"gitinsight_request_duration_seconds_sum",
			labels,
			rows.reduce((n, r) => n + r.durationSum, 0),
		);
		e.sample("gitinsight_request_duration_seconds_count", labels, count);
	}

	e.family(
		"gitinsight_active_connections",
		"gauge",
		"Number of active connections (open WebSockets over every hub)",
	);
	e.sample(
		"gitinsight_active_connections",
		{},
		s.connections.reduce((n, c) => n + c.sockets, 0),
	);
	e.family("gitinsight_hub_connections", "gauge", "Open WebSockets by hub kind (repo, global)");
	for (const c of s.connections) e.sample("gitinsight_hub_connections", { hub_kind: c.hubKind }, c.sockets);
	e.family(
		"gitinsight_hubs_active",
		"gauge",
		"Hubs holding at least one report in the last 24 hours, by kind",
	);
	for (const c of s.connections) e.sample("gitinsight_hubs_active", { hub_kind: c.hubKind }, c.hubs);

	e.family(
		"gitinsight_cache_hit_ratio",
		"gauge",
		"Share of cacheable requests served from cache over the last 5 minutes (all tiers, or the tier that served)",
	);
	const ratios = cacheRatios(s.recent5m);
	if (ratios) {
		for (const [cacheType, ratio] of Object.entries(ratios)) {
			e.sample("gitinsight_cache_hit_ratio", { cache_type: cacheType }, ratio);
		}
	}

	e.family("gitinsight_events_ingested_total", "counter", "Events accepted from backend services, by type");
	for (const r of s.ingested) e.sample("gitinsight_events_ingested_total", { type: r.type }, r.accepted);
	e.family(
		"gitinsight_events_duplicate_total",
		"counter",
		"Events posted again with an id already seen (not re-delivered), by type",
	);
	for (const r of s.ingested) e.sample("gitinsight_events_duplicate_total", { type: r.type }, r.duplicates);

	e.family(
		"gitinsight_messages_delivered_total",
		"counter",
		"Event messages sent to WebSockets, by hub kind",
	);
	for (const r of s.delivered)
		e.sample("gitinsight_messages_delivered_total", { hub_kind: r.hubKind }, r.delivered);
	e.family("gitinsight_hub_events_published_total", "counter", "Events logged by the hubs, by hub kind");
	for (const r of s.delivered)
		e.sample("gitinsight_hub_events_published_total", { hub_kind: r.hubKind }, r.published);

	e.family(
		"gitinsight_metrics_source_up",
		"gauge",
		"1 if every Analytics Engine query of the last load answered, else 0 (the values shown are the last ones read)",
	);
	e.sample("gitinsight_metrics_source_up", {}, s.sourceUp ? 1 : 0);
	e.family(
		"gitinsight_metrics_source_age_seconds",
		"gauge",
		"Seconds since Analytics Engine was last read in full (+Inf if never)",
	);
	e.sample(
		"gitinsight_metrics_source_age_seconds",
		{},
		s.fullAt === null ? Number.POSITIVE_INFINITY : Math.max(0, (s.takenAt - s.fullAt) / 1000),
	);
	e.family("gitinsight_build_info", "gauge", "Version and environment of the Worker answering the scrape");
	e.sample("gitinsight_build_info", { version: config.APP_VERSION, environment: config.ENVIRONMENT }, 1);
	return e.toString();
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
function sameToken(a: string, b: string): boolean {
	const x = new TextEncoder().encode(a);
	const y = new TextEncoder().encode(b);
	let diff = x.length ^ y.length;
	for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
	return diff === 0;
}

export const metrics = new Hono<AppEnv>().get("/", async (c) => {
	const { config } = c.get("deps");
	if (config.METRICS_TOKEN) {
		const given = /^Bearer[ ]+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
		if (!given || !sameToken(given, config.METRICS_TOKEN)) {
			throw new ApiError("unauthorized", "a valid metrics token is required", {
				headers: { "WWW-Authenticate": 'Bearer realm="gitinsight-metrics"' },
			});
		}
	}
	const snapshot = await readSnapshot(config, c.executionCtx, sharedSnapshotOf(c.var.deps));
	return c.body(renderMetrics(snapshot, config), 200, {
		"Content-Type": EXPOSITION_CONTENT_TYPE,
		"Cache-Control": "no-store",
	});
});

export const metricsOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/metrics",
		summary: "Prometheus metrics (text exposition 0.0.4) from Analytics Engine aggregates",
		description:
			"Counters cover AE's 90-day retention; gauges are current. Cached for METRICS_CACHE_TTL_MS. With METRICS_TOKEN set, requires `Authorization: Bearer <METRICS_TOKEN>`. When AE is unreachable it answers 200 with the last values read and gitinsight_metrics_source_up 0.",
		tag: "operations",
		response: z.string(),
		mediaType: "text/plain; version=0.0.4",
		errors: [401],
	},
];

// /metrics: the Prometheus rendering (pure), and the route's auth, caching and degraded answer
// when Analytics Engine cannot be read. The numbers from real datapoints through the AE
// stand-in are checked in test/metrics-flow.test.ts.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import worker from "../src/index";
import { methodLabel, requestDataPoint } from "../src/lib/metrics";
import { escapeLabel, renderMetrics } from "../src/ops/metrics";
import { DURATION_BUCKETS } from "../src/ops/metrics.queries";
import { type Snapshot, WAIT_MS } from "../src/ops/metrics.source";
import { errorBody } from "./helpers";

async function get(bindings: Partial<Env>, path: string, headers: Record<string, string> = {}) {
	const ctx = createExecutionContext();
	const started = Date.now();
	const res = await worker.fetch(
		new Request(`http://gitinsight.test${path}`, { headers }),
		bindings as Env,
		ctx,
	);
	// What the client waited for; background work (a load still running) may go on after it.
	const ms = Date.now() - started;
	await waitOnExecutionContext(ctx);
	return { res, ms };
}

const snapshot: Snapshot = {
	requestTotals: [
		{
			method: "GET",
			endpoint: "/api/v1/fast/search",
			status: "200",
			requests: 10,
			durationSum: 0.3,
			buckets: [2, 5, 8, 9, 10, 10, 10, 10, 10, 10, 10],
		},
		{
			method: "GET",
			endpoint: "/api/v1/fast/search",
			status: "400",
			requests: 2,
			durationSum: 0.004,
			buckets: [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
		},
	],
	recent5m: [
		{ cache: "hit", tier: "memory", requests: 6, durationSum: 0.01 },
		{ cache: "hit", tier: "redis", requests: 2, durationSum: 0.01 },
		{ cache: "miss", tier: "origin", requests: 2, durationSum: 0.1 },
		{ cache: "", tier: "", requests: 50, durationSum: 1 },
	],
	recent1m: [],
	connections: [
		{ hubKind: "global", sockets: 7, hubs: 4 },
		{ hubKind: "repo", sockets: 3, hubs: 2 },
	],
	ingested: [{ type: "analysis_completed", accepted: 5, duplicates: 1 }],
	delivered: [{ hubKind: "global", published: 20, delivered: 35 }],
	sourceUp: true,
	fullAt: 1_000,
	takenAt: 1_000,
};

describe("Prometheus rendering", () => {
	const text = renderMetrics(snapshot, { APP_VERSION: "1.2.3", ENVIRONMENT: "test" });
	const lines = text.split("\n");

	it("writes HELP and TYPE once per family, before its samples", () => {
		const types = lines.filter((l) => l.startsWith("# TYPE "));
		const names = types.map((l) => l.split(" ")[2]);
		expect(new Set(names).size).toBe(names.length);
		expect(types).toContain("# TYPE gitinsight_requests_total counter");
		expect(types).toContain("# TYPE gitinsight_request_duration_seconds histogram");
		expect(types).toContain("# TYPE gitinsight_active_connections gauge");
		expect(types).toContain("# TYPE gitinsight_cache_hit_ratio gauge");
		expect(types).toContain("# TYPE gitinsight_metrics_source_up gauge");
		for (const name of names) {
			const helpAt = lines.indexOf(lines.find((l) => l.startsWith(`# HELP ${name} `)) ?? "");
			const firstSample = lines.findIndex((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
			expect(helpAt).toBeGreaterThanOrEqual(0);
			if (firstSample >= 0) expect(firstSample).toBeGreaterThan(helpAt);
		}
		expect(text.endsWith("\n")).toBe(true);
	});

	it("renders counters with method, endpoint and status", () => {
		expect(lines).toContain(
			'gitinsight_requests_total{method="GET",endpoint="/api/v1/fast/search",status="200"} 10',
		);
		expect(lines).toContain(
			'gitinsight_requests_total{method="GET",endpoint="/api/v1/fast/search",status="400"} 2',
		);
	});

	it("renders a histogram over the default buckets, summed over status, +Inf equal to _count", () => {
		const l = 'method="GET",endpoint="/api/v1/fast/search"';
		const buckets = lines.filter((x) => x.startsWith(`gitinsight_request_duration_seconds_bucket{${l},`));
		expect(buckets.map((b) => /le="([^"]+)"/.exec(b)?.[1])).toEqual([
			...DURATION_BUCKETS.map(String),
			"+Inf",
		]);
		const values = buckets.map((b) => Number(b.split(" ").at(-1)));
		expect(values).toEqual([4, 7, 10, 11, 12, 12, 12, 12, 12, 12, 12, 12]);
		for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] ?? 0);
		expect(lines).toContain(`gitinsight_request_duration_seconds_count{${l}} 12`);
		expect(lines).toContain(`gitinsight_request_duration_seconds_sum{${l}} 0.304`);
	});

	it("renders gauges: connections over every hub, cache ratios over cacheable requests", () => {
		expect(lines).toContain("gitinsight_active_connections 10");
		expect(lines).toContain('gitinsight_hub_connections{hub_kind="repo"} 3');
		expect(lines).toContain('gitinsight_cache_hit_ratio{cache_type="all"} 0.8');
		expect(lines).toContain('gitinsight_cache_hit_ratio{cache_type="memory"} 0.6');
		expect(lines).toContain('gitinsight_cache_hit_ratio{cache_type="redis"} 0.2');
		expect(lines).toContain('gitinsight_cache_hit_ratio{cache_type="edge"} 0');
		expect(lines).toContain('gitinsight_events_ingested_total{type="analysis_completed"} 5');
		expect(lines).toContain('gitinsight_messages_delivered_total{hub_kind="global"} 35');
		expect(lines).toContain("gitinsight_metrics_source_up 1");
		expect(lines).toContain('gitinsight_build_info{version="1.2.3",environment="test"} 1');
	});

	it("omits the cache ratio without cacheable traffic, and says +Inf age when never read", () => {
		const empty = renderMetrics(
			{ ...snapshot, recent5m: [], sourceUp: false, fullAt: null },
			{ APP_VERSION: "x", ENVIRONMENT: "y" },
		);
		expect(empty).not.toMatch(/^gitinsight_cache_hit_ratio\{/m);
		expect(empty).toContain("gitinsight_metrics_source_up 0");
		expect(empty).toContain("gitinsight_metrics_source_age_seconds +Inf");
	});

	it("escapes label values", () => {
		expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
	});
});

describe("GET /metrics", () => {
	it("answers with what it has and source_up 0 when the AE API hangs, within WAIT_MS", async () => {
		const { res, ms } = await get({ ...env, AE_SQL_URL: inject("hangingUrl") }, "/metrics");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
		const text = await res.text();
		expect(text).toContain("gitinsight_metrics_source_up 0");
		expect(text).toContain("# TYPE gitinsight_requests_total counter");
		expect(ms).toBeGreaterThanOrEqual(WAIT_MS - 100);
		expect(ms).toBeLessThan(WAIT_MS + 1_500);
	});

	it("answers source_up 0 when no AE SQL API is configured", async () => {
		const { res } = await get({ ...env, AE_SQL_URL: "" }, "/metrics");
		expect(res.status).toBe(200);
		expect(await res.text()).toContain("gitinsight_metrics_source_up 0");
	});

	it("requires the bearer token when METRICS_TOKEN is set", async () => {
		const bindings = { ...env, AE_SQL_URL: "", METRICS_TOKEN: "scrape-secret-0123456789" };
		const none = await get(bindings, "/metrics");
		expect(none.res.status).toBe(401);
		expect(none.res.headers.get("www-authenticate")).toContain("Bearer");
		expect((await errorBody(none.res)).code).toBe("unauthorized");
		const wrong = await get(bindings, "/metrics", { authorization: "Bearer scrape-secret-0123456788" });
		expect(wrong.res.status).toBe(401);
		await wrong.res.body?.cancel();
		const right = await get(bindings, "/metrics", { authorization: "Bearer scrape-secret-0123456789" });
		expect(right.res.status).toBe(200);
		expect(await right.res.text()).toContain("gitinsight_build_info");
	});
});

describe("method label", () => {
	it("keeps the HTTP methods and writes any other token as OTHER (a bounded label)", () => {
		for (const m of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
			expect(methodLabel(m)).toBe(m);
		for (const m of ["BREW", "PROPFIND", "get", `X${"A".repeat(200)}`]) expect(methodLabel(m)).toBe("OTHER");
		const point = requestDataPoint({
			method: "PROPFIND",
			route: "unmatched",
			status: 404,
			cache: "",
			tier: "",
			colo: "",
			errorCode: "not_found",
			caller: "anonymous",
			durationSeconds: 0.001,
			responseBytes: 10,
		});
		expect(point.blobs?.[2]).toBe("OTHER");
	});
});

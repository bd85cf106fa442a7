// Datapoints to numbers, end to end inside workerd: requests through the real Worker write AE
// datapoints (copied to the AE stand-in's sink, as in `npm run dev`), and /metrics and
// /api/v1/system/stats read them back through the AE SQL API the stand-in answers over
// Postgres. Each test writes to a dataset of its own (AE_DATASET), so other files' traffic does
// not change its counts.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { StatsResponse } from "../src/ops/stats";
import { hs256Token } from "./helpers";

function bindingsWithOwnDataset(): Env {
	return {
		...env,
		AE_DATASET: `flow_${crypto.randomUUID().replaceAll("-", "")}`,
		METRICS_CACHE_TTL_MS: "0",
	} as Env;
}

async function send(bindings: Env, path: string, init: RequestInit = {}): Promise<Response> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request(`http://gitinsight.test${path}`, init), bindings, ctx);
	const body = await res.arrayBuffer();
	await waitOnExecutionContext(ctx);
	return new Response(body, res);
}

/** One sample's value from an exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
	const line = text.split("\n").find((l) => l.startsWith(`${series} `));
	return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function metricsText(bindings: Env): Promise<string> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request("http://gitinsight.test/metrics"), bindings, ctx);
	const text = await res.text();
	await waitOnExecutionContext(ctx);
	return text;
}

describe("AE datapoints → /metrics and /api/v1/system/stats", () => {
	it("counts requests by method, route pattern and status, with durations and cache results", async () => {
		const b = bindingsWithOwnDataset();
		const token = await hs256Token({ role: "user" });
		const auth = { headers: { authorization: `Bearer ${token}` } };
		const found = (await (await send(b, "/api/v1/fast/search?q=rust")).json()) as {
			repositories: { id: string }[];
		};
		await send(b, "/api/v1/fast/search?q=rust"); // a cache hit (memory tier)
		await send(b, "/api/v1/fast/search?q=go&limit=1000"); // 400
		const [first, second] = found.repositories;
		expect(second).toBeDefined();
		await send(b, `/api/v1/fast/repositories/${first?.id}/summary`, auth);
		await send(b, `/api/v1/fast/repositories/${second?.id}/summary`, auth);
		await send(b, "/no/such/path/9f8e7d"); // 404, unmatched

		const series = {
			search200: 'gitinsight_requests_total{method="GET",endpoint="/api/v1/fast/search",status="200"}',
			search400: 'gitinsight_requests_total{method="GET",endpoint="/api/v1/fast/search",status="400"}',
			summary200:
				'gitinsight_requests_total{method="GET",endpoint="/api/v1/fast/repositories/:repo_id/summary",status="200"}',
			unmatched: 'gitinsight_requests_total{method="GET",endpoint="unmatched",status="404"}',
			searchCount: 'gitinsight_request_duration_seconds_count{method="GET",endpoint="/api/v1/fast/search"}',
			searchInf:
				'gitinsight_request_duration_seconds_bucket{method="GET",endpoint="/api/v1/fast/search",le="+Inf"}',
			hitRatio: 'gitinsight_cache_hit_ratio{cache_type="all"}',
		};
		const text = await metricsText(b);
		expect(sample(text, "gitinsight_metrics_source_up")).toBe(1);
		expect(sample(text, series.search200)).toBe(2);
		expect(sample(text, series.search400)).toBe(1);
		expect(sample(text, series.summary200)).toBe(2);
		expect(sample(text, series.unmatched)).toBe(1);
		expect(sample(text, series.searchCount)).toBe(3);
		expect(sample(text, series.searchInf)).toBe(3);
		// Raw paths never become labels.
		expect(text).not.toContain("9f8e7d");
		expect(text).not.toContain("q=rust");
		// Four cacheable answers (two searches, two summaries), at least the repeated search a hit.
		const ratio = sample(text, series.hitRatio) ?? -1;
		expect(ratio).toBeGreaterThanOrEqual(0.25);
		expect(ratio).toBeLessThanOrEqual(1);
	});

	it("counts ingested events by type, duplicates apart", async () => {
		const b = bindingsWithOwnDataset();
		const token = await hs256Token({ role: "service", sub: "pipeline" });
		const post = (body: unknown) =>
			send(b, "/api/v1/events", {
				method: "POST",
				headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
				body: JSON.stringify(body),
			});
		const id = `evt-${crypto.randomUUID()}`;
		expect((await post({ id, type: "x-flow-test", data: {} })).status).toBe(202);
		expect((await post({ id, type: "x-flow-test", data: {} })).status).toBe(202); // a retry
		const repositoryId = crypto.randomUUID();
		expect((await post({ type: "analysis_started", repository_id: repositoryId, data: {} })).status).toBe(
			202,
		);
		const text = await metricsText(b);
		expect(sample(text, 'gitinsight_events_ingested_total{type="custom"}')).toBe(1);
		expect(sample(text, 'gitinsight_events_duplicate_total{type="custom"}')).toBe(1);
		expect(sample(text, 'gitinsight_events_ingested_total{type="analysis_started"}')).toBe(1);
	});

	it("gives admins the last minute's rate and latency from the same data", async () => {
		const b = bindingsWithOwnDataset();
		for (let i = 0; i < 6; i++) await send(b, "/api/v1/fast/leaderboard");
		const token = await hs256Token({ role: "admin", sub: "ops" });
		const res = await send(b, "/health"); // one more, not cacheable
		expect(res.status).toBe(200);
		const ctx = createExecutionContext();
		const statsRes = await worker.fetch(
			new Request("http://gitinsight.test/api/v1/system/stats", {
				headers: { authorization: `Bearer ${token}` },
			}),
			b,
			ctx,
		);
		const stats = StatsResponse.parse(await statsRes.json());
		await waitOnExecutionContext(ctx);
		expect(stats.metrics_source.up).toBe(true);
		// Seven requests in the last minute (the stats request itself is written after it answers).
		expect(stats.requests_per_second).toBeCloseTo(7 / 60, 2);
		expect(stats.average_response_time_ms).toBeGreaterThan(0);
		expect(stats.average_response_time).toMatch(/^\d+(\.\d)?(ms|µs|s)$/);
		// Six leaderboard reads: at most the first from origin (other files may have warmed it).
		expect(stats.cache_hit_ratio).toBeGreaterThanOrEqual(0.833); // 5/6, rounded to 3 places
		expect(stats.cache_hit_ratio).toBeLessThanOrEqual(1);
	});
});

// GET /api/v1/system/stats: admin only, the seed's fields plus the Workers replacements, and an
// honest answer when Analytics Engine cannot be read. Figures from real datapoints are checked
// in test/metrics-flow.test.ts.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { formatDuration, StatsResponse } from "../src/ops/stats";
import { call, errorBody, hs256Token } from "./helpers";

describe("GET /api/v1/system/stats", () => {
	it("is refused without a token (401) and for non-admin roles (403)", async () => {
		const anon = await call("/api/v1/system/stats");
		expect(anon.status).toBe(401);
		expect((await errorBody(anon)).code).toBe("unauthorized");
		for (const role of ["user", "service"]) {
			const res = await call("/api/v1/system/stats", { token: await hs256Token({ role }) });
			expect(res.status).toBe(403);
			expect((await errorBody(res)).code).toBe("forbidden");
		}
	});

	it("answers admins with the documented shape; without an AE source it says so", async () => {
		const token = await hs256Token({ role: "admin", sub: "ops" });
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request("http://gitinsight.test/api/v1/system/stats", {
				headers: { authorization: `Bearer ${token}` },
			}),
			{ ...env, AE_SQL_URL: "", GLOBAL_HUB_SHARDS: "3" } as Env,
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(200);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const body = StatsResponse.parse(await res.json());
		expect(body.metrics_source.up).toBe(false);
		expect(body.metrics_source.age_seconds).toBeNull();
		expect(body.hubs.global.shards).toBe(3);
		expect(body.requests_per_second).toBe(0);
		expect(body.cache_hit_ratio).toBeNull();
		expect(body.isolate.requests_served).toBeGreaterThan(0);
		expect(body.isolate.uptime).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
	});

	it("formats durations as the seed does", () => {
		expect(formatDuration(15)).toBe("15ms");
		expect(formatDuration(2.345)).toBe("2.3ms");
		expect(formatDuration(0.25)).toBe("250µs");
		expect(formatDuration(1500)).toBe("1.5s");
	});
});

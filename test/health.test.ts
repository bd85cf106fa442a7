// GET /health against the real stand-ins, plus the degraded and unhealthy paths: the same
// Worker code with one dependency pointed at something broken.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import worker from "../src/index";
import { formatUptime } from "../src/ops/health";

interface HealthBody {
	status: string;
	timestamp: string;
	version: string;
	uptime: string;
	dependencies: Record<"database" | "redis" | "python_api", string>;
	checks: Record<string, { status: string; latency_ms?: number; error?: string }>;
}

/** Calls the real Worker with some bindings overridden. */
async function healthWith(overrides: Partial<Env>): Promise<{ res: Response; body: HealthBody; ms: number }> {
	const ctx = createExecutionContext();
	const started = Date.now();
	const res = await worker.fetch(new Request("http://gitinsight.test/health"), { ...env, ...overrides }, ctx);
	await waitOnExecutionContext(ctx);
	return { res, body: (await res.json()) as HealthBody, ms: Date.now() - started };
}

describe("GET /health", () => {
	it("reports every dependency healthy against real Postgres, Redis and the Python API", async () => {
		const res = await exports.default.fetch("http://gitinsight.test/health");
		expect(res.status).toBe(200);
		expect(res.headers.get("cache-control")).toBe("no-store");
		const body = (await res.json()) as HealthBody;
		expect(body).toMatchObject({
			status: "healthy",
			version: "0.1.0",
			dependencies: { database: "healthy", redis: "healthy", python_api: "healthy" },
		});
		expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
		expect(body.uptime).toMatch(/^(\d+h)?(\d+m)?\d+s$/);
		expect(body.checks.database?.latency_ms).toBeGreaterThanOrEqual(0);
	});

	it("says not_configured for an optional dependency that is not configured, and stays healthy", async () => {
		const { res, body } = await healthWith({ PYTHON_API_URL: "", UPSTASH_REDIS_REST_URL: "" });
		expect(res.status).toBe(200);
		expect(body.status).toBe("healthy");
		expect(body.dependencies).toEqual({
			database: "healthy",
			redis: "not_configured",
			python_api: "not_configured",
		});
	});

	it("is degraded (200) when Redis is unreachable", async () => {
		const { res, body } = await healthWith({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" });
		expect(res.status).toBe(200);
		expect(body.status).toBe("degraded");
		expect(body.dependencies.redis).toBe("unhealthy");
		expect(body.checks.redis?.error).toBe("unreachable");
	});

	it("is degraded when Redis rejects the token", async () => {
		const { body } = await healthWith({ UPSTASH_REDIS_REST_TOKEN: "wrong-token" });
		expect(body.status).toBe("degraded");
		expect(body.dependencies.redis).toBe("unhealthy");
	});

	it("is degraded when the Python API answers an error status", async () => {
		const { body } = await healthWith({
			PYTHON_API_URL: inject("pythonApiUrl").replace("/python", "/python-down"),
		});
		expect(body.status).toBe("degraded");
		expect(body.dependencies.python_api).toBe("unhealthy");
	});

	it("answers within its time bound when a dependency hangs", async () => {
		const { res, body, ms } = await healthWith({
			PYTHON_API_URL: inject("hangingUrl"),
			HEALTH_TIMEOUT_MS: "300",
		});
		expect(res.status).toBe(200);
		expect(body.status).toBe("degraded");
		expect(body.checks.python_api).toMatchObject({ status: "unhealthy", error: "timeout" });
		expect(ms).toBeLessThan(3000);
	});

	it("is unhealthy (503) when Postgres is unreachable, without leaking connection details", async () => {
		const { res, body } = await healthWith({ NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" });
		expect(res.status).toBe(503);
		expect(body.status).toBe("unhealthy");
		expect(body.dependencies.database).toBe("unhealthy");
		expect(JSON.stringify(body)).not.toContain("postgres");
	});

	it("is unhealthy when the database does not exist", async () => {
		const url = new URL(inject("databaseUrl"));
		url.pathname = "/gi_no_such_database";
		const { res, body } = await healthWith({ DATABASE_URL: url.toString() });
		expect(res.status).toBe(503);
		expect(body.dependencies.database).toBe("unhealthy");
	});
});

describe("formatUptime", () => {
	it.each([
		[0, "0s"],
		[59_999, "59s"],
		[61_000, "1m1s"],
		[(72 * 3600 + 15 * 60 + 30) * 1000, "72h15m30s"],
	])("%i ms -> %s", (ms, text) => {
		expect(formatUptime(ms)).toBe(text);
	});
});

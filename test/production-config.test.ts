// Production refuses dev-only settings (src/env.ts productionProblems): stand-in endpoints,
// non-https URLs, the example file's JWT secret or a weak one, wrangler.toml placeholders,
// missing secrets. A refused configuration answers 503 with the envelope on every request,
// logs its reasons once per isolate, and never names them to the caller. Also: the Cache API
// tier is off on *.workers.dev and says so.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import {
	configProblem,
	EXAMPLE_JWT_SECRET,
	getConfig,
	jwtSecretWeakness,
	productionProblems,
} from "../src/env";
import worker from "../src/index";
import { clearMemoryTier } from "../src/lib/cache";
import { errorBody, hs256Token } from "./helpers";

async function send(bindings: Partial<Env>, url: string, headers: Record<string, string> = {}) {
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request(url, { headers }), bindings as Env, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

/** A configuration production accepts: https everywhere, a strong secret, no stand-ins. */
function goodProduction(): Partial<Env> {
	return {
		...env,
		ENVIRONMENT: "production",
		NEON_HTTP_ENDPOINT: "",
		NEON_WS_PROXY: "",
		AE_SINK_URL: "",
		DATABASE_URL: "postgresql://app:pw@ep-quiet-sun-123.us-east-2.aws.neon.tech/gitinsight?sslmode=require",
		UPSTASH_REDIS_REST_URL: "https://eu1-able-fox-12345.upstash.io",
		UPSTASH_REDIS_REST_TOKEN: "AX-token",
		JWT_SECRET: "q3Vw9f0bY2mJ8kT1xZ5nR7cL4pH6sD0gA9eU3iO2wQ8=",
		JWT_JWKS_URL: "",
		PYTHON_API_URL: "",
		AE_SQL_URL: "https://api.cloudflare.com/client/v4/accounts/0123abcd/analytics_engine/sql",
		METRICS_TOKEN: "metrics-scrape-token",
		AE_API_TOKEN: "ae-read-token",
		CORS_ORIGINS: "https://gitinsight.dev,https://api.gitinsight.dev",
	};
}

afterEach(() => vi.restoreAllMocks());

describe("production configuration", () => {
	it("the example file's JWT secret is the one production refuses", () => {
		expect(inject("exampleJwtSecret")).toBe(EXAMPLE_JWT_SECRET);
		expect(jwtSecretWeakness(EXAMPLE_JWT_SECRET)).toMatch(/example/);
	});

	it("accepts a configuration with https URLs, a strong secret and no stand-ins", () => {
		expect(productionProblems(goodProduction() as Env)).toEqual([]);
	});

	it.each([
		["NEON_HTTP_ENDPOINT", { NEON_HTTP_ENDPOINT: "http://127.0.0.1:4444/sql" }, /NEON_HTTP_ENDPOINT is set/],
		["NEON_WS_PROXY", { NEON_WS_PROXY: "127.0.0.1:4445/v2" }, /NEON_WS_PROXY is set/],
		["AE_SINK_URL", { AE_SINK_URL: "http://127.0.0.1:4446/sink" }, /AE_SINK_URL is set/],
		[
			"http:// Upstash",
			{ UPSTASH_REDIS_REST_URL: "http://eu1.upstash.io" },
			/UPSTASH_REDIS_REST_URL must be an https/,
		],
		["http:// JWKS", { JWT_JWKS_URL: "http://idp.example/jwks.json" }, /JWT_JWKS_URL must be an https/],
		["http:// AE SQL API", { AE_SQL_URL: "http://api.cloudflare.com/x" }, /AE_SQL_URL must be an https/],
		["the example secret", { JWT_SECRET: EXAMPLE_JWT_SECRET }, /JWT_SECRET is the example file's value/],
		[
			"a short secret",
			{ JWT_SECRET: "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFi" },
			/JWT_SECRET is shorter than 32 random bytes/,
		],
		["a patterned secret", { JWT_SECRET: "ab".repeat(40) }, /JWT_SECRET is not random enough/],
		[
			"a weak previous secret",
			{ JWT_SECRET_PREVIOUS: "ab".repeat(40) },
			/JWT_SECRET_PREVIOUS is not random enough/,
		],
		[
			"the previous secret equal to the current one",
			{ JWT_SECRET_PREVIOUS: "q3Vw9f0bY2mJ8kT1xZ5nR7cL4pH6sD0gA9eU3iO2wQ8=" },
			/JWT_SECRET_PREVIOUS equals JWT_SECRET/,
		],
		[
			"a placeholder secret",
			{ JWT_SECRET: `please-change-me-${"x".repeat(40)}` },
			/JWT_SECRET looks like a placeholder/,
		],
		["no METRICS_TOKEN", { METRICS_TOKEN: "" }, /METRICS_TOKEN is not set/],
		["no AE_API_TOKEN", { AE_API_TOKEN: "" }, /AE_API_TOKEN is not set/],
		["no DATABASE_URL", { DATABASE_URL: undefined }, /DATABASE_URL is not set/],
		[
			"a wrangler.toml placeholder",
			{
				AE_SQL_URL:
					"https://api.cloudflare.com/client/v4/accounts/REPLACE_WITH_ACCOUNT_ID/analytics_engine/sql",
			},
			/AE_SQL_URL still holds a REPLACE_WITH placeholder/,
		],
		[
			"an http CORS origin",
			{ CORS_ORIGINS: "https://gitinsight.dev,http://localhost:8787" },
			/CORS_ORIGINS must list https/,
		],
	])("refuses %s", (_, overrides, problem) => {
		const problems = productionProblems({ ...goodProduction(), ...overrides } as Env);
		expect(problems.some((p) => problem.test(p))).toBe(true);
		// The problem names the variable, never its value.
		for (const value of Object.values(overrides)) {
			if (value) expect(problems.join(" ")).not.toContain(value);
		}
	});

	it("a refused configuration answers 503 with the envelope on every route, and logs why once", async () => {
		const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
		// The test stack's own settings under ENVIRONMENT=production: stand-in endpoints, http URLs.
		const bindings: Partial<Env> = { ...env, ENVIRONMENT: "production" };
		const token = await hs256Token({ role: "admin" });
		for (const path of ["/health", "/metrics", "/api/v1/fast/leaderboard", "/api/v1/me", "/nope"]) {
			const res = await send(bindings, `https://api.gitinsight.dev${path}`, {
				authorization: `Bearer ${token}`,
			});
			expect(res.status, path).toBe(503);
			const body = await errorBody(res);
			expect(body.code).toBe("service_unavailable");
			expect(body.message).toBe("the service is misconfigured and cannot serve requests");
			expect(body.request_id).toBe(res.headers.get("x-request-id"));
			// The caller learns nothing about the settings.
			expect(JSON.stringify(body)).not.toMatch(/NEON|UPSTASH|127\.0\.0\.1/);
		}
		const ping = await send(bindings, "https://api.gitinsight.dev/ping");
		expect(ping.status).toBe(503);
		const refusals = errors.mock.calls
			.map((c) => String(c[0]))
			.filter((l) => l.includes("configuration refused"));
		expect(refusals).toHaveLength(1);
		const logged = JSON.parse(refusals[0] ?? "{}") as { problems: string[] };
		expect(logged.problems).toEqual(
			expect.arrayContaining([expect.stringMatching(/NEON_HTTP_ENDPOINT is set/)]),
		);
	});

	it("the same settings serve normally outside production", async () => {
		const res = await send({ ...env }, "https://api.gitinsight.dev/ping");
		expect(res.status).toBe(200);
		expect(await res.text()).toBe("pong");
	});
});

describe("the Cache API tier and the hostname", () => {
	it("is off on *.workers.dev, says so in /health, and reads fall through to Redis", async () => {
		clearMemoryTier();
		const bindings: Partial<Env> = { ...env, CACHE_MEMORY_TTL_MS: "0" };
		const host = "https://gitinsight-edge.someone.workers.dev";
		const health = await send(bindings, `${host}/health`);
		expect(((await health.json()) as { cache: unknown }).cache).toEqual({
			memory: "off",
			edge: "off_workers_dev",
			redis: "on",
		});
		const token = await hs256Token({ role: "user" });
		const auth = { authorization: `Bearer ${token}` };
		const path = "/api/v1/fast/leaderboard?limit=3";
		const first = await send(bindings, `${host}${path}`, auth);
		expect(first.status).toBe(200);
		await first.body?.cancel();
		const second = await send(bindings, `${host}${path}`, auth);
		expect(second.headers.get("x-cache")).toBe("HIT");
		// Not "edge": nothing is put in (or read from) the Cache API there.
		expect(second.headers.get("x-cache-tier")).toBe("redis");
		await second.body?.cancel();
	});

	it("is on for a custom domain", async () => {
		clearMemoryTier();
		const bindings: Partial<Env> = { ...env, CACHE_MEMORY_TTL_MS: "0" };
		const host = `https://api-${crypto.randomUUID().slice(0, 8)}.gitinsight.test`;
		const health = await send(bindings, `${host}/health`);
		expect(((await health.json()) as { cache: { edge: string } }).cache.edge).toBe("on");
		const path = "/api/v1/fast/leaderboard?limit=4";
		const token = await hs256Token({ role: "user" });
		const first = await send(bindings, `${host}${path}`, { authorization: `Bearer ${token}` });
		await first.body?.cancel();
		const second = await send(bindings, `${host}${path}`, { authorization: `Bearer ${token}` });
		expect(second.headers.get("x-cache-tier")).toBe("edge");
		await second.body?.cancel();
		// (test/cache.test.ts finds the stored entry under a URL on the Worker's hostname.)
	});
});

describe("GLOBAL_HUB_LOCATION", () => {
	it("takes a Durable Object location hint or nothing; anything else is refused, naming the var", async () => {
		expect(getConfig({ ...env, GLOBAL_HUB_LOCATION: "weur" }).GLOBAL_HUB_LOCATION).toBe("weur");
		expect(getConfig({ ...env, GLOBAL_HUB_LOCATION: "" }).GLOBAL_HUB_LOCATION).toBeUndefined();
		expect(configProblem({ ...env, GLOBAL_HUB_LOCATION: "mars" })?.message).toMatch(
			/GLOBAL_HUB_LOCATION: must be one of wnam/,
		);
		// Events reach shards got with the hint (workerd accepts it; it places nothing locally).
		const hinted = { ...env, GLOBAL_HUB_LOCATION: "weur" };
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request("http://gitinsight.test/api/v1/events", {
				method: "POST",
				headers: {
					authorization: `Bearer ${await hs256Token({ sub: "hinted", role: "service" })}`,
					"content-type": "application/json",
				},
				body: JSON.stringify({ type: "x-hint.test", data: { n: 1 } }),
			}),
			hinted,
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(202);
		expect(((await res.json()) as { seq: { global: number[] } }).seq.global).toHaveLength(4);
	});
});

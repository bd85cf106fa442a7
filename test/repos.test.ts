// GET /api/v1/fast/repositories/{id}/summary and /by-name/{owner}/{name}/summary through the
// real Worker: auth before cache, the seed's payload, cache headers, ETag/304, bad input, and
// the Redis-down and Postgres-down paths.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { asc, sql } from "drizzle-orm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { createDb } from "../src/db/client";
import { repositories } from "../src/db/schema";
import worker from "../src/index";
import { call, errorBody, hs256Token } from "./helpers";

const BASE = "/api/v1/fast/repositories";
let token: string;
let adminToken: string;
let sample: { id: string; fullName: string; stars: number }[];

beforeAll(async () => {
	token = await hs256Token({ sub: "repos-test" });
	adminToken = await hs256Token({ sub: "repos-ops", role: "admin" });
	sample = await createDb(env)
		.select({ id: repositories.id, fullName: repositories.fullName, stars: repositories.stars })
		.from(repositories)
		.orderBy(asc(repositories.id))
		.limit(12);
});

function repo(i: number) {
	const r = sample[i];
	if (!r) throw new Error(`seed has no repository #${i}`);
	return r;
}

async function callWith(overrides: Partial<Env>, path: string, headers: Record<string, string> = {}) {
	const ctx = createExecutionContext();
	const res = await worker.fetch(
		new Request(`http://gitinsight.test${path}`, {
			headers: { authorization: `Bearer ${token}`, ...headers },
		}),
		{ ...env, ...overrides },
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return res;
}

describe("repository summary", () => {
	it("requires a token, also for a cached repository", async () => {
		const path = `${BASE}/${repo(0).id}/summary`;
		expect((await call(path, { token })).status).toBe(200);
		const res = await call(path);
		expect(res.status).toBe(401);
		expect(res.headers.get("x-cache")).toBeNull();
		expect(await res.text()).not.toContain(repo(0).fullName);
	});

	it("answers the seed's payload, matching the database", async () => {
		const r = repo(1);
		const res = await call(`${BASE}/${r.id}/summary`, { token });
		expect(res.status).toBe(200);
		const body = (await res.json()) as Record<string, unknown>;
		expect(Object.keys(body).sort()).toEqual(
			[
				"analysis_status",
				"forks",
				"full_name",
				"id",
				"insight_count",
				"language",
				"last_updated",
				"name",
				"stars",
				"trending_score",
			].sort(),
		);
		expect(body).toMatchObject({ id: r.id, full_name: r.fullName, stars: r.stars });
		expect(body.name).toBe(r.fullName.split("/")[1]);
		expect(body.last_updated).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
		const [row] = await createDb(env)
			.execute<{ insight_count: number }>(sql`select insight_count from repositories where id = ${r.id}`)
			.then((x) => x.rows);
		expect(body.insight_count).toBe(row?.insight_count);
	});

	it("misses once, then hits, with Age, ETag, private Cache-Control, and 304 on If-None-Match", async () => {
		const path = `${BASE}/${repo(2).id}/summary`;
		const first = await call(path, { token });
		expect(first.headers.get("x-cache")).toBe("MISS");
		expect(first.headers.get("x-cache-tier")).toBe("origin");
		expect(first.headers.get("cache-control")).toBe("private, max-age=300");
		expect(first.headers.get("vary")).toContain("Authorization");
		const etag = first.headers.get("etag");
		expect(etag).toMatch(/^W\/".+"$/);
		const second = await call(path, { token });
		expect(second.headers.get("x-cache")).toBe("HIT");
		expect(["memory", "edge"]).toContain(second.headers.get("x-cache-tier"));
		expect(Number(second.headers.get("age"))).toBeGreaterThanOrEqual(0);
		expect(await second.text()).toBe(await first.text());
		const notModified = await call(path, { token, headers: { "if-none-match": etag ?? "" } });
		expect(notModified.status).toBe(304);
		expect(await notModified.text()).toBe("");
		const changed = await call(path, { token, headers: { "if-none-match": 'W/"something-else"' } });
		expect(changed.status).toBe(200);
	});

	it("wrote the entry to Redis (L2) on the origin load", async () => {
		const r = repo(3);
		await call(`${BASE}/${r.id}/summary`, { token });
		const redis = new Redis({
			url: inject("upstashUrl"),
			token: inject("upstashToken"),
			enableTelemetry: false,
		});
		const key = `${inject("redisKeyPrefix")}summary:${r.id}`;
		await expect
			.poll(async () => redis.get<{ b: string }>(key))
			.toMatchObject({ b: expect.stringContaining(r.id) });
	});

	it("goes to the origin for an admin's Cache-Control: no-cache and max-age=0", async () => {
		const path = `${BASE}/${repo(4).id}/summary`;
		await call(path, { token });
		for (const cc of ["no-cache", "max-age=0"]) {
			const res = await call(path, { token: adminToken, headers: { "cache-control": cc } });
			expect(res.headers.get("x-cache")).toBe("MISS");
			expect(res.headers.get("x-cache-tier")).toBe("origin");
		}
		const ok = await call(path, { token, headers: { "cache-control": "max-age=300" } });
		expect(ok.headers.get("x-cache")).toBe("HIT");
	});

	it("answers a user's no-cache, max-age=0 and max-age=1 with a copy up to 5 s old", async () => {
		const path = `${BASE}/${repo(3).id}/summary`;
		const first = await call(path, { token: adminToken, headers: { "cache-control": "no-cache" } });
		expect(first.headers.get("x-cache")).toBe("MISS");
		for (const cc of ["no-cache", "max-age=0", "max-age=1", "no-cache, max-age=0"]) {
			const res = await call(path, { token, headers: { "cache-control": cc } });
			expect(res.headers.get("x-cache"), cc).toBe("HIT");
			expect(Number(res.headers.get("age"))).toBeLessThanOrEqual(5);
		}
	});

	it("treats ids case-insensitively as one entry", async () => {
		const r = repo(5);
		await call(`${BASE}/${r.id}/summary`, { token });
		const upper = await call(`${BASE}/${r.id.toUpperCase()}/summary`, { token });
		expect(upper.status).toBe(200);
		expect(upper.headers.get("x-cache")).toBe("HIT");
	});

	it("answers 404 for an unknown id, and caches that briefly", async () => {
		const path = `${BASE}/00000000-0000-0000-0000-000000000000/summary`;
		const res = await call(path, { token });
		expect(res.status).toBe(404);
		expect((await errorBody(res)).code).toBe("not_found");
		const again = await call(path, { token });
		expect(again.status).toBe(404);
		expect(again.headers.get("x-cache")).toBe("HIT");
	});

	it.each([
		["not a uuid", "not-a-uuid"],
		["a uuid with a trailing character", "550e8400-e29b-41d4-a716-4466554400001"],
		["SQL", "1%27%20OR%201%3D1--"],
		["unicode", "%F0%9F%92%A9"],
		["a NUL byte", "%00"],
		["a very long id", "a".repeat(3000)],
	])("answers 400 naming repo_id for %s", async (_name, id) => {
		const res = await call(`${BASE}/${id}/summary`, { token });
		expect(res.status).toBe(400);
		const err = await errorBody(res);
		expect(err.code).toBe("invalid_parameter");
		expect(err.message).toContain("repo_id");
		expect(err.details?.[0]?.parameter).toBe("repo_id");
	});

	it("keeps serving from the edge and the origin when Redis is down", async () => {
		const r = repo(6);
		const down = { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" };
		const first = await callWith(down, `${BASE}/${r.id}/summary`);
		expect(first.status).toBe(200);
		expect(first.headers.get("x-cache-tier")).toBe("origin");
		const second = await callWith(down, `${BASE}/${r.id}/summary`);
		expect(second.status).toBe(200);
		expect(second.headers.get("x-cache")).toBe("HIT");
	});

	it("serves a kept copy when Postgres is down, and 503 with Retry-After when it has none", async () => {
		const r = repo(7);
		await call(`${BASE}/${r.id}/summary`, { token });
		const pgDown = { NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" };
		const kept = await callWith(pgDown, `${BASE}/${r.id}/summary`, {
			authorization: `Bearer ${adminToken}`,
			"cache-control": "no-cache",
		});
		expect(kept.status).toBe(200);
		expect(kept.headers.get("x-cache")).toBe("STALE");
		const none = await callWith(pgDown, `${BASE}/${repo(8).id}/summary`);
		expect(none.status).toBe(503);
		expect(none.headers.get("retry-after")).toBe("5");
		expect((await errorBody(none)).code).toBe("service_unavailable");
	});
});

describe("repository summary by name", () => {
	it("answers the same payload as by id, case-insensitively", async () => {
		const r = repo(9);
		const byId = await (await call(`${BASE}/${r.id}/summary`, { token })).json();
		const [owner, name] = r.fullName.split("/");
		const byName = await call(`${BASE}/by-name/${owner?.toUpperCase()}/${name}/summary`, { token });
		expect(byName.status).toBe(200);
		expect(await byName.json()).toEqual(byId);
	});

	it("answers 404 for an unknown name and 400 for an invalid one", async () => {
		expect((await call(`${BASE}/by-name/nobody-here/nothing-here/summary`, { token })).status).toBe(404);
		const bad = await call(`${BASE}/by-name/-bad-/x/summary`, { token });
		expect(bad.status).toBe(400);
		expect((await errorBody(bad)).details?.[0]?.parameter).toBe("owner");
		const badName = await call(`${BASE}/by-name/ok/${"n".repeat(101)}/summary`, { token });
		expect((await errorBody(badName)).details?.[0]?.parameter).toBe("name");
	});

	it("requires a token", async () => {
		const [owner, name] = repo(9).fullName.split("/");
		expect((await call(`${BASE}/by-name/${owner}/${name}/summary`)).status).toBe(401);
	});
});

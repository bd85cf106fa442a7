// POST /api/v1/events and /batch through the real Worker: the 202 answer and seqs, idempotency
// on id (one delivery, the original seqs), batches, validation and the body rules (415, 413,
// 400), roles, and the summary cache invalidated by an event.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { LIMITS } from "../src/realtime/protocol";
import type { RepoHub } from "../src/realtime/repo-hub.do";
import { call, errorBody, hs256Token } from "./helpers";
import { GLOBAL, postEvent, repoStream, seededRepos, service, settle, TestSocket } from "./realtime-client";

let repos: string[];
let token: string;
const repo = (i: number) => repos[i] ?? "";
const hubOf = (id: string) => env.REPO_HUB.get(env.REPO_HUB.idFromName(id));

interface Delivery {
	id: string;
	status: "accepted" | "duplicate";
	seq: { repository: number | null; global: number[] };
}

beforeAll(async () => {
	repos = await seededRepos(80, 12);
	token = await hs256Token({ sub: "events-viewer" });
});

describe("POST /api/v1/events", () => {
	it("answers 202 with the id and the seq in the repository hub and in every global shard", async () => {
		const res = await postEvent({ type: "analysis_started", repository_id: repo(0), data: { queued: true } });
		expect(res.status).toBe(202);
		const body = (await res.json()) as Delivery;
		expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
		expect(body.status).toBe("accepted");
		expect(body.seq.repository).toBeGreaterThan(0);
		expect(body.seq.global).toHaveLength(4);
	});

	it("is idempotent on id: a retried POST is delivered once and answers the original seqs", async () => {
		const s = await TestSocket.open(repoStream(repo(1)), { token });
		await s.nextOf("welcome");
		const event = { id: "retry-me-1", type: "analysis_completed", repository_id: repo(1), data: { n: 1 } };
		const first = (await (await postEvent(event)).json()) as Delivery;
		const again = await postEvent(event);
		expect(again.status).toBe(202);
		const second = (await again.json()) as Delivery;
		expect(second).toEqual({ ...first, status: "duplicate" });
		expect(first.status).toBe("accepted");
		await s.next((m) => "id" in m && m.id === "retry-me-1");
		await postEvent({ type: "insight_added", repository_id: repo(1), data: {} });
		await s.next((m) => m.type === "insight_added");
		expect(s.events().filter((e) => e.id === "retry-me-1")).toHaveLength(1);
		s.close();
	});

	it("accepts custom x- types without a repository (global shards only)", async () => {
		const res = await postEvent({ type: "x-maintenance", data: { window: "02:00" } });
		expect(res.status).toBe(202);
		const body = (await res.json()) as Delivery;
		expect(body.seq.repository).toBeNull();
		expect(body.seq.global.every((n) => n > 0)).toBe(true);
	});

	it("events about one repository sent at once reach every shard once; shard calls and Redis invalidations coalesced", async () => {
		const id = repo(9);
		const shard0 = await TestSocket.open(`${GLOBAL}?shard=0`);
		await shard0.nextOf("welcome");
		const stats = (hub: RepoHub) => ({ ...hub.forwarded, invalidations: hub.invalidations });
		const before = await runInDurableObject(hubOf(id), stats);
		const n = 40;
		const answers = await Promise.all(
			Array.from({ length: n }, async (_, i) => {
				const res = await postEvent({
					id: `together-${i}`,
					type: "insight_added",
					repository_id: id,
					data: { i },
				});
				expect(res.status).toBe(202);
				return (await res.json()) as Delivery;
			}),
		);
		expect(answers.every((a) => a.status === "accepted" && a.seq.global.length === 4)).toBe(true);
		// Per hub, the seqs are distinct and without gaps: nothing else published meanwhile.
		const contiguous = (seqs: number[]) => {
			const sorted = [...seqs].sort((a, b) => a - b);
			expect(new Set(sorted).size).toBe(n);
			expect((sorted.at(-1) ?? 0) - (sorted[0] ?? 0)).toBe(n - 1);
		};
		contiguous(answers.map((a) => a.seq.repository ?? 0));
		for (let k = 0; k < 4; k++) contiguous(answers.map((a) => a.seq.global[k] ?? 0));
		// Shard 0 broadcast each event once, with the seq its answer named.
		const last = Math.max(...answers.map((a) => a.seq.global[0] ?? 0));
		await shard0.next((m) => "seq" in m && m.seq === last);
		await settle();
		const seen = shard0.events().filter((e) => String(e.id).startsWith("together-"));
		expect(seen.map((e) => e.seq)).toEqual(
			answers.map((a) => a.seq.global[0]).sort((a, b) => (a ?? 0) - (b ?? 0)),
		);
		const after = await runInDurableObject(hubOf(id), stats);
		expect(after.events - before.events).toBe(4 * n);
		// One call per shard per round trip, not per event; so for the Redis invalidations.
		expect(after.calls - before.calls).toBeLessThan(4 * n);
		expect(after.invalidations.requests - before.invalidations.requests).toBe(n);
		expect(after.invalidations.calls - before.invalidations.calls).toBeLessThan(n);
		shard0.close();
	});

	it.each([
		[
			"an unknown type",
			{ type: "analysis_exploded", repository_id: "00000000-0000-0000-0000-000000000001", data: {} },
			"type",
		],
		["a known type without repository_id", { type: "insight_added", data: {} }, "repository_id"],
		["a bad repository_id", { type: "insight_added", repository_id: "r1", data: {} }, "repository_id"],
		["a bad timestamp", { type: "x-a", timestamp: "yesterday", data: {} }, "timestamp"],
		["data that is not an object", { type: "x-a", data: [1] }, "data"],
		["an unknown field", { type: "x-a", data: {}, user_id: "u" }, ""],
		["a bad id", { id: "has space", type: "x-a", data: {} }, "id"],
		["an uppercase custom type", { type: "x-Deploy", data: {} }, "type"],
	])("answers 400 for %s", async (_name, body, parameter) => {
		const res = await postEvent(body);
		expect(res.status).toBe(400);
		const err = await errorBody(res);
		expect(err.code).toBe("invalid_parameter");
		if (parameter) expect(err.details?.map((d) => d.parameter)).toContain(parameter);
	});

	it("answers 400 for malformed JSON, 415 for another media type, 413 over 64 KB", async () => {
		const bad = await postEvent("{not json");
		expect(bad.status).toBe(400);
		expect((await errorBody(bad)).code).toBe("bad_request");
		const text = await call("/api/v1/events", {
			method: "POST",
			token: await service(),
			headers: { "content-type": "text/plain" },
			body: "{}",
		});
		expect(text.status).toBe(415);
		expect((await errorBody(text)).code).toBe("unsupported_media_type");
		const big = await postEvent({ type: "x-big", data: { blob: "x".repeat(LIMITS.eventBytes) } });
		expect(big.status).toBe(413);
		expect((await errorBody(big)).code).toBe("payload_too_large");
		const chunked = await call("/api/v1/events", {
			method: "POST",
			token: await service(),
			headers: { "content-type": "application/json; charset=utf-8" },
			body: new Blob([JSON.stringify({ type: "x-big", data: { blob: "y".repeat(70_000) } })]).stream(),
		});
		expect(chunked.status).toBe(413);
	});

	it("is for the service role only", async () => {
		const body = JSON.stringify({ type: "x-a", data: {} });
		const headers = { "content-type": "application/json" };
		expect((await call("/api/v1/events", { method: "POST", body, headers })).status).toBe(401);
		for (const role of ["user", "admin"]) {
			const res = await call("/api/v1/events", {
				method: "POST",
				body,
				headers,
				token: await hs256Token({ role }),
			});
			expect(res.status, role).toBe(403);
		}
	});
});

describe("POST /api/v1/events/batch", () => {
	it("publishes up to 100 events with per-event results, in order, deduplicating ids", async () => {
		const [a, b] = [repo(2), repo(3)];
		const sa = await TestSocket.open(repoStream(a), { token });
		const sb = await TestSocket.open(repoStream(b), { token });
		await sa.nextOf("welcome");
		await sb.nextOf("welcome");
		const events = [
			{ id: "batch-1", type: "analysis_started", repository_id: a, data: {} },
			{ id: "batch-2", type: "analysis_started", repository_id: b, data: {} },
			{ id: "batch-3", type: "insight_added", repository_id: a, data: { k: 1 } },
			{ id: "batch-1", type: "analysis_started", repository_id: a, data: {} },
			{ id: "batch-4", type: "x-note", data: {} },
		];
		const res = await postEvent({ events }, "/api/v1/events/batch");
		expect(res.status).toBe(202);
		const body = (await res.json()) as { accepted: number; duplicates: number; results: Delivery[] };
		expect(body).toMatchObject({ accepted: 4, duplicates: 1 });
		const [r1, r2, r3, r4, r5] = body.results;
		expect(r1?.seq.repository).toBe((r3?.seq.repository ?? 0) - 1);
		expect(r4).toEqual({ ...r1, status: "duplicate" });
		expect(r2?.seq.repository).toBeGreaterThan(0);
		expect(r5?.seq.repository).toBeNull();
		expect(r5?.seq.global[0]).toBe((r1?.seq.global[0] ?? 0) + 3);
		await sa.next((m) => "id" in m && m.id === "batch-3");
		await sb.next((m) => "id" in m && m.id === "batch-2");
		await settle();
		expect(sa.events().map((e) => e.id)).toEqual(["batch-1", "batch-3"]);
		expect(sb.events().map((e) => e.id)).toEqual(["batch-2"]);
		const retry = (await (await postEvent({ events }, "/api/v1/events/batch")).json()) as {
			duplicates: number;
		};
		expect(retry.duplicates).toBe(5);
		sa.close();
		sb.close();
	});

	it("refuses more than 100 events, an invalid event (naming it), and an event over 64 KB", async () => {
		const many = Array.from({ length: 101 }, () => ({ type: "x-a", data: {} }));
		expect((await postEvent({ events: many }, "/api/v1/events/batch")).status).toBe(400);
		const invalid = await postEvent(
			{
				events: [
					{ type: "x-a", data: {} },
					{ type: "nope", data: {} },
				],
			},
			"/api/v1/events/batch",
		);
		expect(invalid.status).toBe(400);
		expect((await errorBody(invalid)).details?.map((d) => d.parameter)).toContain("events.1.type");
		const big = await postEvent(
			{ events: [{ type: "x-a", data: { b: "x".repeat(LIMITS.eventBytes) } }] },
			"/api/v1/events/batch",
		);
		expect(big.status).toBe(413);
	});
});

describe("cache invalidation", () => {
	it("an event about a repository makes its next summary read come from the origin", async () => {
		const id = repo(4);
		const path = `/api/v1/fast/repositories/${id}/summary`;
		expect((await call(path, { token })).status).toBe(200);
		const hit = await call(path, { token });
		expect(hit.headers.get("x-cache")).toBe("HIT");
		const redis = new Redis({
			url: inject("upstashUrl"),
			token: inject("upstashToken"),
			enableTelemetry: false,
		});
		const key = `${inject("redisKeyPrefix")}summary:${id}`;
		await expect.poll(() => redis.exists(key)).toBe(1);
		const res = await postEvent({
			type: "repository_updated",
			repository_id: id.toUpperCase(),
			data: { stars: 1 },
		});
		expect(res.status).toBe(202);
		expect(await redis.exists(key)).toBe(0);
		const after = await call(path, { token });
		expect(after.status).toBe(200);
		expect(after.headers.get("x-cache")).toBe("MISS");
		expect(after.headers.get("x-cache-tier")).toBe("origin");
	});
});

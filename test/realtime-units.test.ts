// Pure real-time logic: filters and tags, the token bucket, catch-up planning, client frame
// parsing and close codes, event normalisation, routing and result merging, the event rules.
import { describe, expect, it } from "vitest";
import { Coalescer } from "../src/realtime/coalesce";
import { attachmentFor, capOf, holdersOf, isAttachment, welcomeFor } from "../src/realtime/connection";
import { ALL, matches, subscribe, tagsFor, unsubscribe } from "../src/realtime/filter";
import { TokenBucket } from "../src/realtime/flood";
import { ConnectInfo, EventInput, LIMITS, ServerMessage } from "../src/realtime/protocol";
import { groupByRepository, mergeResults, producerOf, toHubEvent } from "../src/realtime/publish";
import { asReplayFrame, planCatchUp } from "../src/realtime/replay";
import { exceeds, parseCommand, reciprocalCode } from "../src/realtime/wire";

describe("filters", () => {
	it("tags a connection by its scope", () => {
		expect(tagsFor("*")).toEqual(["t:*"]);
		expect(tagsFor(["insight_added", "x-a"])).toEqual(["t:insight_added", "t:x-a"]);
	});

	it("subscribes and unsubscribes within the scope", () => {
		let f = ALL;
		const step = (r: ReturnType<typeof subscribe>) => {
			if (!r.ok) throw new Error(r.message);
			f = r.filter;
		};
		step(unsubscribe(f, ["insight_added", "insight_added"]));
		expect(f).toEqual({ mode: "all", except: ["insight_added"] });
		expect(matches(f, "*", "insight_added")).toBe(false);
		expect(matches(f, "*", "x-anything")).toBe(true);
		step(subscribe(f, "*", ["insight_added"]));
		expect(f).toEqual(ALL);
		step(unsubscribe(f, ["*"]));
		expect(matches(f, "*", "analysis_started")).toBe(false);
		step(subscribe(f, "*", ["analysis_started", "x-b"]));
		expect(f).toEqual({ mode: "only", types: ["analysis_started", "x-b"] });
		step(unsubscribe(f, ["x-b"]));
		expect(f).toEqual({ mode: "only", types: ["analysis_started"] });
		step(subscribe(f, "*", ["*"]));
		expect(f).toEqual(ALL);
	});

	it("refuses types outside the scope and filters that grow past the bound", () => {
		expect(subscribe(ALL, ["analysis_completed"], ["insight_added"])).toMatchObject({
			ok: false,
			code: "outside_scope",
		});
		expect(matches(ALL, ["analysis_completed"], "insight_added")).toBe(false);
		const many = Array.from({ length: 33 }, (_, i) => `x-t${i}`);
		expect(unsubscribe(ALL, many)).toMatchObject({ ok: false, code: "too_many_filters" });
	});
});

describe("token bucket", () => {
	it("allows the burst, then the refill rate", () => {
		const b = new TokenBucket(3, 2, 0);
		expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
		expect(b.take(400)).toBe(false);
		expect(b.take(500)).toBe(true);
		expect(b.take(10_000) && b.take(10_000) && b.take(10_000)).toBe(true);
		expect(b.take(10_000)).toBe(false);
	});

	it("takes n tokens only when n are left (replayed bytes)", () => {
		const b = new TokenBucket(1000, 100, 0);
		expect(b.take(0, 600)).toBe(true);
		expect(b.take(0, 600)).toBe(false);
		expect(b.available(0)).toBe(400);
		expect(b.take(2000, 600)).toBe(true);
		expect(b.available(2000)).toBe(0);
	});
});

describe("catch-up", () => {
	it("replays, does nothing, or resets", () => {
		expect(planCatchUp(5, { head: 5, oldest: 1 })).toEqual({ kind: "none" });
		expect(planCatchUp(0, { head: 0, oldest: 1 })).toEqual({ kind: "none" });
		expect(planCatchUp(0, { head: 3, oldest: 1 })).toEqual({ kind: "replay", after: 0 });
		expect(planCatchUp(9, { head: 20, oldest: 10 })).toEqual({ kind: "replay", after: 9 });
		expect(planCatchUp(8, { head: 20, oldest: 10 })).toEqual({ kind: "reset", reason: "gap_too_old" });
		expect(planCatchUp(21, { head: 20, oldest: 10 })).toEqual({ kind: "reset", reason: "unknown_seq" });
		expect(planCatchUp(3, { head: 7, oldest: 8 })).toEqual({ kind: "reset", reason: "gap_too_old" });
	});

	it("marks a stored frame as a replay without re-serialising it", () => {
		const frame = JSON.stringify({ type: "x-a", id: "1", seq: 1, timestamp: "t", data: { a: "}" } });
		expect(JSON.parse(asReplayFrame(frame))).toEqual({ ...JSON.parse(frame), replay: true });
	});
});

describe("client frames", () => {
	it("measures frames in bytes", () => {
		expect(exceeds("a".repeat(4096), 4096)).toBe(false);
		expect(exceeds("a".repeat(4097), 4096)).toBe(true);
		expect(exceeds("é".repeat(2049), 4096)).toBe(true);
		expect(exceeds("é".repeat(2048), 4096)).toBe(false);
		expect(exceeds(new ArrayBuffer(4097), 4096)).toBe(true);
	});

	it("parses commands into a typed union or a typed error, keeping the id", () => {
		expect(parseCommand('{"type":"subscribe","events":["insight_added"],"id":"a"}')).toEqual({
			ok: true,
			command: { type: "subscribe", events: ["insight_added"], id: "a" },
		});
		expect(parseCommand('{"type":"resume","since":4}')).toMatchObject({ ok: true, command: { since: 4 } });
		expect(parseCommand("nope")).toMatchObject({ ok: false, code: "invalid_json" });
		expect(parseCommand("null")).toMatchObject({ ok: false, code: "invalid_message" });
		expect(parseCommand('{"type":"jump","id":7}')).toMatchObject({
			ok: false,
			code: "unknown_command",
			id: 7,
		});
		expect(parseCommand('{"type":"subscribe","events":[]}')).toMatchObject({
			ok: false,
			code: "invalid_message",
		});
		expect(parseCommand('{"type":"resume","since":1.5}')).toMatchObject({
			ok: false,
			message: expect.stringContaining("since"),
		});
		expect(parseCommand(new ArrayBuffer(2))).toMatchObject({ ok: false, code: "unsupported_data" });
	});

	it("reciprocates a close with a sendable code", () => {
		expect([1000, 1001, 1005, 1006, 1015, 4001, 2000].map(reciprocalCode)).toEqual([
			1000, 1001, 1000, 1000, 1000, 4001, 1000,
		]);
	});

	it("types every frame a hub sends", () => {
		expect(
			ServerMessage.safeParse({ type: "reset", reason: "gap_too_old", seq: 4, oldest_seq: 2 }).success,
		).toBe(true);
		expect(
			ServerMessage.safeParse({ type: "insight_added", id: "e", seq: 1, timestamp: "t", data: {} }).success,
		).toBe(true);
		expect(ServerMessage.safeParse({ type: "reset", seq: 4 }).success).toBe(false);
		expect(
			ServerMessage.safeParse({ type: "surprise", id: "e", seq: 1, timestamp: "t", data: {} }).success,
		).toBe(false);
	});
});

describe("events", () => {
	const repoId = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

	it("applies the type rule: known types need a repository, x- types may omit it", () => {
		expect(EventInput.safeParse({ type: "x-deploy.v2_done", data: {} }).success).toBe(true);
		expect(EventInput.safeParse({ type: "analysis_failed", data: {} }).success).toBe(false);
		expect(EventInput.safeParse({ type: "welcome", data: {} }).success).toBe(false);
		expect(EventInput.parse({ type: "x-a" })).toMatchObject({ data: {} });
	});

	it("fills in id and timestamp, lower-cases the repository id, and keys the event by producer", async () => {
		const now = new Date("2026-11-24T10:00:00Z");
		const e = toHubEvent(
			EventInput.parse({ type: "insight_added", repository_id: repoId, data: { a: 1 } }),
			now,
			"pipeline",
		);
		expect(e).toEqual({
			id: expect.stringMatching(/^[0-9a-f-]{36}$/),
			key: JSON.stringify(["pipeline", repoId.toLowerCase(), e.id]),
			type: "insight_added",
			repository_id: repoId.toLowerCase(),
			timestamp: "2026-11-24T10:00:00.000Z",
			data: { a: 1 },
		});
		const t = toHubEvent(
			EventInput.parse({ id: "k", type: "x-a", timestamp: "2026-11-24T12:00:00+02:00" }),
			now,
			"pipeline",
		);
		expect(t).toEqual({
			id: "k",
			key: JSON.stringify(["pipeline", null, "k"]),
			type: "x-a",
			timestamp: "2026-11-24T10:00:00.000Z",
			data: {},
		});
		// A subject that is long or has other characters is named by its hash.
		expect(await producerOf("svc-a")).toBe("svc-a");
		expect(await producerOf("a b")).toMatch(/^sha256:[0-9a-f]{64}$/);
		expect(await producerOf("x".repeat(129))).toMatch(/^sha256:[0-9a-f]{64}$/);
	});

	it("groups by repository and merges each hub's results per event", () => {
		const ev = (id: string, repository_id?: string) => ({
			id,
			type: "x-a",
			timestamp: "t",
			data: {},
			repository_id,
		});
		const events = [ev("a", "r1"), ev("b", "r2"), ev("c"), ev("d", "r1")];
		const groups = groupByRepository(events);
		expect([...groups].map(([r, l]) => [r, l.map((x) => x.index)])).toEqual([
			["r1", [0, 3]],
			["r2", [1]],
		]);
		const merged = mergeResults(
			4,
			[
				{
					indexes: [0, 3],
					results: [
						{ id: "a", seq: 7, duplicate: true },
						{ id: "d", seq: 8, duplicate: false },
					],
				},
				{ indexes: [1], results: [{ id: "b", seq: 2, duplicate: false }] },
			],
			[["a", "b", "c", "d"].map((id, i) => ({ id, seq: 10 + i, duplicate: id === "a" }))],
			events.map((e) => e.id),
		);
		expect(merged).toEqual([
			{ id: "a", status: "duplicate", seq: { repository: 7, global: [10] } },
			{ id: "b", status: "accepted", seq: { repository: 2, global: [11] } },
			{ id: "c", status: "accepted", seq: { repository: null, global: [12] } },
			{ id: "d", status: "accepted", seq: { repository: 8, global: [13] } },
		]);
	});
});

describe("connections", () => {
	it("count a socket under its caller and, for IPv6, its /48, each against its own cap", () => {
		expect(holdersOf({ caller: "sub:a" })).toEqual(["sub:a"]);
		expect(holdersOf({ caller: "ip6:2001:db8:1:2::/64", site: "ip6:2001:db8:1::/48" })).toEqual([
			"ip6:2001:db8:1:2::/64",
			"site|ip6:2001:db8:1::/48",
		]);
		// Sockets accepted before callers were recorded count under "".
		expect(holdersOf({})).toEqual([""]);
		expect(capOf("ip:203.0.113.1")).toBe(LIMITS.socketsPerCaller);
		expect(capOf("site|ip6:2001:db8:1::/48")).toBe(LIMITS.socketsPerSite);
		expect(LIMITS.socketsPerSite).toBe(16 * LIMITS.socketsPerCaller);
	});

	it("keeps the attachment well under the 16 KB limit at its bounds", () => {
		const info = ConnectInfo.parse({
			hub: "global",
			shard: 63,
			shards: 64,
			sub: "s".repeat(1024),
			caller: `sub:${"s".repeat(1024)}`,
			roles: ["user", "admin", "service"],
			scope: Array.from({ length: 8 }, (_, i) => `x-${"t".repeat(60)}${i}`),
			since: null,
			protocol: "gitinsight.v1",
		});
		const att = attachmentFor(info, 123_456_789, Date.now());
		att.filter = { mode: "only", types: Array.from({ length: 32 }, (_, i) => `x-${"f".repeat(60)}${i}`) };
		expect(new TextEncoder().encode(JSON.stringify(att)).byteLength).toBeLessThan(8 * 1024);
		expect(isAttachment(att)).toBe(true);
		expect(isAttachment({ v: 2 })).toBe(false);
		expect(welcomeFor(info, att)).toMatchObject({
			type: "welcome",
			hub: "global",
			shard: 63,
			seq: 123_456_789,
		});
	});
});

describe("coalescing calls to a global shard", () => {
	/** A receiver whose calls stay open until released, recording what each call carried. */
	function receiver() {
		const calls: { items: number[]; release: (fail?: Error) => void }[] = [];
		const send = (items: number[]) =>
			new Promise<string[]>((resolve, reject) => {
				calls.push({
					items,
					release: (fail) => (fail ? reject(fail) : resolve(items.map((n) => `r${n}`))),
				});
			});
		return { calls, send };
	}
	const turn = () => new Promise((r) => setTimeout(r, 0));

	it("keeps one call in flight; what arrives meanwhile goes in the next call, in order", async () => {
		const { calls, send } = receiver();
		const c = new Coalescer({ send, maxItems: 100 });
		const a = c.submit([1]);
		const b = c.submit([2, 3]);
		const d = c.submit([4]);
		await turn();
		expect(calls.map((x) => x.items)).toEqual([[1]]);
		expect(c.waiting).toBe(2);
		calls[0]?.release();
		await turn();
		expect(calls.map((x) => x.items)).toEqual([[1], [2, 3, 4]]);
		calls[1]?.release();
		expect(await a).toEqual(["r1"]);
		expect(await b).toEqual(["r2", "r3"]);
		expect(await d).toEqual(["r4"]);
	});

	it("puts at most maxItems in a call, never splitting a submission", async () => {
		const { calls, send } = receiver();
		const c = new Coalescer({ send, maxItems: 3 });
		const all = [c.submit([0]), c.submit([1, 2]), c.submit([3]), c.submit([4, 5, 6, 7]), c.submit([8])];
		for (let i = 0; i < 4; i++) {
			await turn();
			calls[i]?.release();
		}
		await Promise.all(all);
		expect(calls.map((x) => x.items)).toEqual([[0], [1, 2, 3], [4, 5, 6, 7], [8]]);
	});

	it("fails only the submissions of a failed call; the next call goes out", async () => {
		const { calls, send } = receiver();
		const c = new Coalescer({ send, maxItems: 100 });
		const first = c.submit([1]);
		const second = c.submit([2]);
		const third = c.submit([3]);
		await turn();
		calls[0]?.release();
		await turn();
		calls[1]?.release(new Error("shard overloaded"));
		await expect(second).rejects.toThrow("shard overloaded");
		await expect(third).rejects.toThrow("shard overloaded");
		expect(await first).toEqual(["r1"]);
		const fourth = c.submit([4]);
		await turn();
		calls[2]?.release();
		expect(await fourth).toEqual(["r4"]);
	});

	it("refuses an answer that does not have one result per item", async () => {
		const c = new Coalescer({ send: async (items: number[]) => items.slice(1), maxItems: 10 });
		await expect(c.submit([1, 2])).rejects.toThrow("expected 2 results, got 1");
	});
});

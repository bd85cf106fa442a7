// Hub state through the real Worker: filters (scope tags + subscribe/unsubscribe), replay after
// a reconnect with since= and with the resume command, reset when the gap is older than the log,
// state rebuilt from getWebSockets() + attachments after the hub is evicted, the global shards,
// and the SQLite log's bounds.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { getConfig } from "../src/env";
import { EventLog } from "../src/realtime/event-log";
import { ALIVE_REPORT_MS, type Hub } from "../src/realtime/hub";
import {
	type Attachment,
	CONNECT_HEADER,
	type ConnectInfo,
	type HubEvent,
	LIMITS,
	type ServerMessage,
} from "../src/realtime/protocol";
import { hs256Token } from "./helpers";
import { GLOBAL, postEvent, repoStream, seededRepos, settle, TestSocket } from "./realtime-client";

let repos: string[];
let token: string;
const repo = (i: number) => repos[i] ?? "";
const hubOf = (id: string) => env.REPO_HUB.get(env.REPO_HUB.idFromName(id));

beforeAll(async () => {
	repos = await seededRepos(40, 20);
	token = await hs256Token({ sub: "replay-user" });
});

async function publish(id: string, type: string, n = 1): Promise<number[]> {
	const seqs: number[] = [];
	for (let i = 0; i < n; i++) {
		const res = await postEvent({ type, repository_id: id, data: { i } });
		expect(res.status).toBe(202);
		seqs.push(((await res.json()) as { seq: { repository: number } }).seq.repository);
	}
	return seqs;
}

async function open(path: string) {
	const s = await TestSocket.open(path, { token });
	const welcome = await s.nextOf("welcome");
	return { s, welcome };
}

describe("filters", () => {
	it("unsubscribe and subscribe change what a connection receives", async () => {
		const { s } = await open(repoStream(repo(0)));
		s.send({ type: "unsubscribe", id: 1, events: ["insight_added"] });
		expect(await s.nextOf("ack")).toMatchObject({
			id: 1,
			filter: { mode: "all", except: ["insight_added"] },
		});
		await publish(repo(0), "insight_added");
		await publish(repo(0), "analysis_started");
		await s.next((m) => m.type === "analysis_started");
		expect(s.events().map((e) => e.type)).toEqual(["analysis_started"]);
		s.send({ type: "unsubscribe", id: 2, events: ["*"] });
		s.send({ type: "subscribe", id: 3, events: ["insight_added"] });
		expect(await s.next((m) => m.type === "ack" && m.id === 3)).toMatchObject({
			filter: { mode: "only", types: ["insight_added"] },
		});
		await publish(repo(0), "analysis_started");
		await publish(repo(0), "insight_added");
		await s.next((m) => m.type === "insight_added");
		expect(s.events().map((e) => e.type)).toEqual(["analysis_started", "insight_added"]);
		s.close();
	});

	it("types= sets the scope: the socket's tags, outside which subscribe is refused", async () => {
		const { s, welcome } = await open(repoStream(repo(1), "?types=analysis_completed,x-deploy"));
		expect(welcome.scope).toEqual(["analysis_completed", "x-deploy"]);
		const tags = await runInDurableObject(hubOf(repo(1)), (_h, state) =>
			state.getWebSockets().map((ws) => state.getTags(ws)),
		);
		expect(tags).toEqual([["t:analysis_completed", "t:x-deploy"]]);
		s.send({ type: "subscribe", id: "w", events: ["insight_added"] });
		expect(await s.nextOf("error")).toMatchObject({ id: "w", code: "outside_scope" });
		await publish(repo(1), "insight_added");
		await publish(repo(1), "analysis_completed");
		await s.next((m) => m.type === "analysis_completed");
		expect(s.events().map((e) => e.type)).toEqual(["analysis_completed"]);
		s.close();
	});
});

describe("replay", () => {
	it("a reconnect with since= gets what it missed, in order, then live events", async () => {
		const id = repo(2);
		const first = await open(repoStream(id));
		const [a, b] = await publish(id, "analysis_started", 2);
		await first.s.next((m) => "seq" in m && m.seq === b);
		first.s.close();
		await first.s.closed;
		const missed = await publish(id, "insight_added", 3);
		const { s, welcome } = await open(repoStream(id, `?since=${b}`));
		expect(welcome.seq).toBe(missed[2]);
		const replayed = [await s.next(), await s.next(), await s.next()];
		expect(replayed.map((m) => ("seq" in m ? m.seq : null))).toEqual(missed);
		expect(replayed.every((m) => "replay" in m && m.replay === true)).toBe(true);
		const [live] = await publish(id, "analysis_completed");
		const next = await s.next();
		expect(next).toMatchObject({ type: "analysis_completed", seq: live });
		expect("replay" in next).toBe(false);
		expect(a).toBe((b ?? 0) - 1);
		s.close();
	});

	it("the resume command replays on a live connection and acks the count", async () => {
		const id = repo(3);
		const seqs = await publish(id, "insight_added", 4);
		const { s } = await open(repoStream(id));
		s.send({ type: "resume", id: "r", since: seqs[1] });
		const ack = await s.nextOf("ack");
		expect(ack).toMatchObject({ id: "r", command: "resume", replayed: 2, seq: seqs[3] });
		expect(s.events().map((e) => e.seq)).toEqual(seqs.slice(2));
		s.close();
	});

	it("replay honours the connection's scope", async () => {
		const id = repo(4);
		const [first] = await publish(id, "analysis_started");
		await publish(id, "insight_added", 2);
		const [wanted] = await publish(id, "analysis_completed");
		const { s } = await open(repoStream(id, `?since=${(first ?? 1) - 1}&types=analysis_completed`));
		expect(await s.next()).toMatchObject({ seq: wanted, replay: true });
		s.close();
	});

	it("sends a reset when the gap is older than the log or the seq was never issued", async () => {
		const id = repo(5);
		const seqs = await publish(id, "repository_updated", 4);
		// Age the log: as if the hub had pruned everything but the last two events.
		await runInDurableObject(hubOf(id), (_h, state) => {
			state.storage.sql.exec("DELETE FROM hub_events WHERE seq <= ?", seqs[1]);
		});
		const old = await open(repoStream(id, `?since=${seqs[0]}`));
		expect(await old.s.next()).toEqual({
			type: "reset",
			reason: "gap_too_old",
			seq: seqs[3],
			oldest_seq: seqs[2],
		});
		old.s.close();
		const edge = await open(repoStream(id, `?since=${seqs[1]}`));
		expect(await edge.s.next()).toMatchObject({ seq: seqs[2], replay: true });
		edge.s.close();
		const ahead = await open(repoStream(id, `?since=${(seqs[3] ?? 0) + 10}`));
		expect(await ahead.s.next()).toMatchObject({ type: "reset", reason: "unknown_seq" });
		// After a reset the connection is live.
		const [live] = await publish(id, "analysis_started");
		expect(await ahead.s.next()).toMatchObject({ seq: live });
		ahead.s.close();
	});
});

describe("unsent backlog cap", () => {
	it("past LIMITS.unsentEvents, publish() broadcasts inside the call; every event still arrives once, in order", async () => {
		const id = repo(10);
		const a = await open(repoStream(id));
		const total = LIMITS.unsentEvents + 44;
		const seqs = await runInDurableObject(hubOf(id), (hub: Hub) =>
			// All in one turn: no timer can fire in between.
			Array.from({ length: total }, (_, n) => hub.publish([queuedEvent(n)])[0]?.seq ?? 0),
		);
		await a.s.next((m) => "seq" in m && m.seq === seqs.at(-1), 10_000);
		expect(a.s.events().map((e) => e.seq)).toEqual(seqs);
		// Two broadcasts: the capped backlog in the call, the rest from the timer.
		const flushes = await awaitReports(id, "publish", 2);
		expect(flushes.map((f) => f.published)).toEqual([LIMITS.unsentEvents, total - LIMITS.unsentEvents]);
		a.s.close();
	});
});

describe("broadcast under load", () => {
	it("concurrent publishes reach every socket once, in seq order, joiners from their welcome on", async () => {
		const id = repo(7);
		const early = await open(repoStream(id));
		// Two waves of 12 concurrent POSTs (the hub logs each at once and broadcasts what has piled
		// up together); between them, while the first wave lands, a second socket joins and the
		// first sends a resume command.
		const wave = () =>
			Array.from({ length: 12 }, (_, i) => publish(id, i % 2 ? "insight_added" : "analysis_started"));
		const first = wave();
		await early.s.nextEvent();
		const late = await open(repoStream(id));
		early.s.send({ type: "resume", id: "mid", since: early.welcome.seq });
		const second = wave();
		const seqs = (await Promise.all([...first, ...second])).flat().sort((a, b) => a - b);
		const last = seqs.at(-1) ?? 0;
		await early.s.next((m) => "seq" in m && m.seq === last && !("replay" in m));
		await late.s.next((m) => "seq" in m && m.seq === last);
		// The first socket: every seq once live, in order; the resume replayed exactly what had
		// been sent before it (the hub flushes before answering), after those live frames.
		const isReplay = (m: object) => "replay" in m;
		expect(
			early.s
				.events()
				.filter((e) => !isReplay(e))
				.map((e) => e.seq),
		).toEqual(seqs);
		const ackAt = early.s.frames.findIndex((m) => m.type === "ack");
		const ack = early.s.frames[ackAt];
		if (ack?.type !== "ack") throw new Error("no resume ack");
		expect(ack.seq).toBeGreaterThan(early.welcome.seq);
		const replayed = early.s
			.events()
			.filter(isReplay)
			.map((e) => e.seq);
		expect(replayed).toEqual(seqs.filter((q) => q <= ack.seq));
		expect(ack).toMatchObject({ command: "resume", replayed: replayed.length });
		const liveBeforeAck = early.s.frames
			.slice(0, ackAt)
			.flatMap((m) => ("data" in m && !isReplay(m) ? [m.seq] : []));
		expect(liveBeforeAck).toEqual(seqs.filter((q) => q <= ack.seq));
		// The joiner: nothing at or before its welcome seq, everything after it, in order.
		expect(late.s.events().map((e) => e.seq)).toEqual(seqs.filter((q) => q > late.welcome.seq));
		early.s.close();
		late.s.close();
	});
});

const queuedEvent = (n: number): HubEvent => ({
	id: `queued-${n}-${crypto.randomUUID()}`,
	type: "insight_added",
	timestamp: new Date().toISOString(),
	data: { n },
});

/** A hub's datapoints of one action in the AE stand-in (the dataset the hubs write to), oldest first. */
async function hubReports(
	hub: string,
	action: "alive" | "publish",
): Promise<{ sockets: number; published: number }[]> {
	const dataset = getConfig(env).AE_DATASET;
	const res = await fetch(inject("aeSqlUrl"), {
		method: "POST",
		headers: { authorization: `Bearer ${inject("aeApiToken")}` },
		body: `SELECT double1 AS sockets, double2 AS published FROM ${dataset} WHERE blob1 = 'hub' AND blob4 = '${hub}' AND blob5 = '${action}' ORDER BY double4 FORMAT JSON`,
	});
	expect(res.status).toBe(200);
	return ((await res.json()) as { data: { sockets: number; published: number }[] }).data;
}

/** Polls hubReports until it has `count` rows (the DO's sink flushes in the background). */
async function awaitReports(hub: string, action: "alive" | "publish", count: number) {
	let reports = await hubReports(hub, action);
	for (let i = 0; reports.length < count && i < 60; i++) {
		await settle(50);
		reports = await hubReports(hub, action);
	}
	return reports;
}

describe("queued broadcasts", () => {
	it("are sent before a socket joins and before a command is answered", async () => {
		const id = repo(8);
		const a = await open(repoStream(id));
		const info: ConnectInfo = {
			hub: "repository",
			repository_id: id,
			sub: "queued-user",
			caller: "sub:queued-user",
			roles: ["user"],
			scope: "*",
			since: null,
			protocol: null,
		};
		const { b, seqs } = await runInDurableObject(hubOf(id), (hub: Hub, state) => {
			// Logged, not yet sent (the broadcast waits for a timer turn)…
			const [first] = hub.publish([queuedEvent(1)]);
			// …so a joining socket must not be welcomed at a head it was never sent up to…
			const res = hub.fetch(
				new Request("http://hub/", {
					headers: { upgrade: "websocket", [CONNECT_HEADER]: JSON.stringify(info) },
				}),
			);
			const [second] = hub.publish([queuedEvent(2)]);
			// …and a command's answer (pong, with the head's seq) must not overtake queued events.
			const serverA = state
				.getWebSockets()
				.find((ws) => (ws.deserializeAttachment() as Attachment).sub === "replay-user");
			hub.webSocketMessage(serverA as WebSocket, JSON.stringify({ type: "ping", id: "p" }));
			if (!res.webSocket) throw new Error(`no socket: ${res.status}`);
			return { b: new TestSocket(res.webSocket, res), seqs: [first?.seq ?? 0, second?.seq ?? 0] };
		});
		const [first, second] = seqs as [number, number];
		const welcome = await b.nextOf("welcome");
		expect(welcome.seq).toBe(first);
		await b.next((m) => "seq" in m && m.seq === second);
		expect(b.events().map((e) => e.seq)).toEqual([second]);
		const pong = await a.s.nextOf("pong");
		expect(pong.seq).toBe(second);
		expect(a.s.events().map((e) => e.seq)).toEqual([first, second]);
		// The queued event went out before the pong, not just eventually.
		const at = (match: (m: ServerMessage) => boolean) => a.s.frames.findIndex(match);
		expect(at((m) => "data" in m && m.seq === second)).toBeLessThan(at((m) => m.type === "pong"));
		a.s.close();
		b.close();
	});
});

describe("hibernation", () => {
	it("rebuilds per-socket state from getWebSockets() and attachments after eviction", async () => {
		const id = repo(6);
		const all = await open(repoStream(id));
		const some = await open(repoStream(id));
		some.s.send({ type: "unsubscribe", id: 1, events: ["insight_added"] });
		await some.s.nextOf("ack");
		const [before] = await publish(id, "analysis_started");
		await all.s.next((m) => "seq" in m && m.seq === before);
		const stub = hubOf(id);
		await evictDurableObject(stub);
		const atts = await runInDurableObject(stub, (_h, state) =>
			state.getWebSockets().map((ws) => ws.deserializeAttachment() as Attachment),
		);
		expect(atts).toHaveLength(2);
		expect(atts.map((a) => a.filter)).toContainEqual({ mode: "all", except: ["insight_added"] });
		expect(atts.every((a) => a.sub === "replay-user" && a.roles.includes("user"))).toBe(true);
		await evictDurableObject(stub);
		const [x, y] = [...(await publish(id, "insight_added")), ...(await publish(id, "analysis_completed"))];
		expect(x).toBe((before ?? 0) + 1);
		await all.s.next((m) => "seq" in m && m.seq === y);
		await some.s.next((m) => "seq" in m && m.seq === y);
		expect(all.s.events().map((e) => e.seq)).toEqual([before, x, y]);
		expect(some.s.events().map((e) => e.seq)).toEqual([before, y]);
		some.s.send({ type: "ping", id: "after" });
		expect(await some.s.nextOf("pong")).toMatchObject({ id: "after", seq: y });
		all.s.close();
		some.s.close();
	});
});

describe("alive reports", () => {
	it("while sockets are open, an hourly alarm reports the hub's sockets; it stops when none are", async () => {
		const id = repo(9);
		const stub = hubOf(id);
		const alarmAt = () => runInDurableObject(stub, (_h, state) => state.storage.getAlarm());
		const a = await open(repoStream(id));
		const b = await open(repoStream(id));
		let at = await alarmAt();
		for (let i = 0; at === null && i < 50; i++) at = await alarmAt();
		expect(at).toBeGreaterThan(Date.now() + ALIVE_REPORT_MS - 60_000);
		expect(at).toBeLessThanOrEqual(Date.now() + ALIVE_REPORT_MS);

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		// Reported (the sink is flushed in the background: wait for it) and set again.
		expect(await awaitReports(id, "alive", 1)).toEqual([{ sockets: 2, published: 0 }]);
		expect(await alarmAt()).toBeGreaterThan(Date.now() + ALIVE_REPORT_MS - 60_000);

		a.s.close();
		b.s.close();
		await Promise.all([a.s.closed, b.s.closed]);
		// No socket left: the next alarm reports nothing and sets no new one.
		for (
			let i = 0;
			i < 40 && (await runInDurableObject(stub, (_h, state) => state.getWebSockets().length)) > 0;
			i++
		)
			await settle(50);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await alarmAt()).toBeNull();
		await settle(200);
		expect(await hubReports(id, "alive")).toHaveLength(1);
	});
});

describe("global stream", () => {
	it("spreads connections over shards; resume works on the shard from the welcome", async () => {
		const { s, welcome } = await open(GLOBAL);
		expect(welcome).toMatchObject({ hub: "global", shards: 4 });
		const shard = welcome.shard ?? -1;
		expect(shard).toBeGreaterThanOrEqual(0);
		const res = await postEvent({
			id: `glob-${crypto.randomUUID()}`,
			type: "x-deploy.finished",
			data: { ok: true },
		});
		const body = (await res.json()) as { id: string; seq: { repository: null; global: number[] } };
		expect(body.seq.repository).toBeNull();
		expect(body.seq.global).toHaveLength(4);
		const event = await s.next((m) => "id" in m && m.id === body.id);
		expect(event).toMatchObject({ type: "x-deploy.finished", seq: body.seq.global[shard] });
		s.close();
		const since = (body.seq.global[shard] ?? 1) - 1;
		const again = await open(`${GLOBAL}?shard=${shard}&since=${since}`);
		expect(again.welcome.shard).toBe(shard);
		expect(await again.s.next()).toMatchObject({ id: body.id, replay: true });
		again.s.close();
		const lost = await open(`${GLOBAL}?since=${since}`);
		expect(await lost.s.next()).toMatchObject({ type: "reset", reason: "unknown_seq" });
		lost.s.close();
	});
});

describe("event log bounds", () => {
	const event = (i: number): HubEvent => ({
		id: `b-${i}`,
		type: "x-t",
		timestamp: "2026-01-01T00:00:00Z",
		data: {},
	});

	it("keeps at least minEvents, at most maxEvents, drops old ones, and dedupes within its window", async () => {
		const stub = env.REPO_HUB.get(env.REPO_HUB.idFromName("log-bounds-test"));
		await runInDurableObject(stub, (_h, state) => {
			const bounds = {
				minEvents: 3,
				maxAgeMs: 1000,
				maxEvents: 6,
				dedupeMaxAgeMs: 1000,
				dedupeMaxIds: 8,
				replayMaxBytes: 400,
				pruneStep: 1,
			};
			const log = new EventLog(state.storage, bounds);
			const t0 = Date.now();
			for (let i = 1; i <= 10; i++) log.append([event(i)], t0);
			expect(log.window()).toEqual({ head: 10, oldest: 5 });
			expect(log.append([event(3)], t0).results).toEqual([{ id: "b-3", seq: 3, duplicate: true }]);
			expect(log.append([event(1)], t0).results[0]).toMatchObject({ seq: 11, duplicate: false });
			expect(log.window()).toEqual({ head: 11, oldest: 6 });
			expect(log.catchUp(4)).toEqual({ kind: "reset", reason: "gap_too_old" });
			expect(log.catchUp(5)).toEqual({ kind: "reset", reason: "too_much_to_replay" });
			expect(log.catchUp(9)).toEqual({ kind: "replay", after: 9, bytes: expect.any(Number) });
			// Much later, everything but the last minEvents is past maxAgeMs.
			log.append([event(12)], t0 + 120_000);
			expect(log.window()).toEqual({ head: 12, oldest: 10 });
			expect([...log.after(10)].map((r) => r.seq)).toEqual([11, 12]);
			expect(log.claimTicket("j1", t0 + 60_000, t0)).toBe(true);
			expect(log.claimTicket("j1", t0 + 60_000, t0)).toBe(false);
			expect(log.claimTicket("j1", t0 + 60_000, t0 + 61_000)).toBe(true);
		});
	});

	it("logs a batch exactly as it would log its events one by one (seqs, duplicates, rows)", async () => {
		const rows = (state: DurableObjectState) =>
			state.storage.sql
				.exec<{ seq: number; id: string; type: string; frame: string }>(
					"SELECT seq, id, type, frame FROM hub_events ORDER BY seq",
				)
				.toArray()
				.map((r) => ({ ...r }));
		// Repeats inside a batch, across batches, and of ids logged one at a time.
		const batches = [[1], [2, 3, 2, 4], [1, 5], [6, 7, 8, 6, 1, 9], [10]].map((b) => b.map(event));
		const run = (name: string, split: boolean) =>
			runInDurableObject(env.REPO_HUB.get(env.REPO_HUB.idFromName(name)), (_h, state) => {
				const log = new EventLog(state.storage);
				const results = batches.flatMap((b) =>
					split ? b.flatMap((e) => log.append([e], 1_000).results) : log.append(b, 1_000).results,
				);
				return {
					results,
					rows: rows(state),
					ids: state.storage.sql.exec("SELECT id FROM hub_event_ids").toArray().length,
				};
			});
		const one = await run("log-batch-test-single", true);
		const batched = await run("log-batch-test-batched", false);
		expect(batched).toEqual(one);
		expect(batched.rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => `b-${i}`));
		expect(batched.results.filter((r) => r.duplicate).map((r) => r.seq)).toEqual([2, 1, 6, 1]);
		expect(JSON.parse(batched.rows[3]?.frame ?? "{}")).toMatchObject({ id: "b-4", seq: 4 });
	});

	it("prunes by count once per pruneStep seqs and never holds more than the bounds", async () => {
		const stub = env.REPO_HUB.get(env.REPO_HUB.idFromName("log-prune-step-test"));
		await runInDurableObject(stub, (_h, state) => {
			const bounds = {
				minEvents: 2,
				maxAgeMs: 60 * 60_000,
				maxEvents: 8,
				dedupeMaxAgeMs: 60 * 60_000,
				dedupeMaxIds: 10,
				replayMaxBytes: 1_000_000,
				pruneStep: 4,
			};
			const counts = () => ({
				events: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM hub_events").one().n,
				ids: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM hub_event_ids").one().n,
			});
			const log = new EventLog(state.storage, bounds);
			const t0 = Date.now();
			const seen: { events: number; ids: number }[] = [];
			for (let i = 1; i <= 30; i++) {
				// Singles and a batch of three (a batch may cross a step boundary).
				log.append(i % 5 === 0 ? [event(i), event(100 + i), event(200 + i)] : [event(i)], t0);
				seen.push(counts());
			}
			expect(Math.max(...seen.map((c) => c.events))).toBeLessThanOrEqual(8);
			expect(Math.min(...seen.slice(10).map((c) => c.events))).toBeGreaterThanOrEqual(8 - 4 + 1);
			expect(Math.max(...seen.map((c) => c.ids))).toBeLessThanOrEqual(10);
			// The log is contiguous up to the head, and a new EventLog (a restart) finds the same head.
			const { head, oldest } = log.window();
			expect(head).toBe(42);
			expect([...log.after(oldest - 1)].map((r) => r.seq)).toEqual(
				Array.from({ length: head - oldest + 1 }, (_, k) => oldest + k),
			);
			expect(new EventLog(state.storage, bounds).head).toBe(42);
			// Bounds under which pruning could eat the newest ids (and so the head) are refused.
			expect(() => new EventLog(state.storage, { ...bounds, dedupeMaxIds: 4 })).toThrow(/bounds do not hold/);
			expect(() => new EventLog(state.storage, { ...bounds, maxEvents: 4 })).toThrow(/bounds do not hold/);
			// Ids within the dedupe window are still recognised.
			expect(log.append([event(30)], t0).results[0]).toMatchObject({ duplicate: true });
		});
	});
});

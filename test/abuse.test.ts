// Attacks performed against the real stack (the Worker and its Durable Objects in workerd, the
// stand-ins, Postgres and Redis), each asserting its bound while a legitimate client is served.
//   replay flood: sockets sending `resume` from the start of a 1 MB log at their full command
//   budget; a viewer on the same hub still gets every new event within 500 ms, and what the
//   attackers are sent stays within the per-connection and per-hub replay budgets.
//   socket hoarding: one caller opens sockets up to its per-hub cap; the next is refused 429 in
//   the envelope while other callers still connect and are served, and a closed socket frees
//   its place (repository stream by token subject, global stream by client address).
//   cache bypass: anonymous no-cache / max-age=1 for one key reach Postgres once; every search
//   and leaderboard statement runs under a statement_timeout that Postgres enforces itself; q
//   is bounded after normalisation; leaderboard limits are cut from one cached ranking.
//   Redis key space: a scan of distinct anonymous searches and leaderboards lands in the
//   namespaces' fixed slots.
//   public global stream: anonymous viewers get only the public part of an event's data, live
//   and replayed, while the repository stream (token) gets all of it.
//   ticket replay: a used ticket stays used through the clock tolerance after its expiry.
//   /health flood: the backends are probed once per isolate per HEALTH_CACHE_MS.
//   security headers: HSTS, nosniff, no framing on every response, errors and pages included.
//   secret rotation: what the previous JWT_SECRET signed verifies while JWT_SECRET_PREVIOUS holds
//   it, and not after; tickets name their key.
//   event-id pre-emption: ids are deduped per producer and repository.
//   everlasting tokens: a token valid for more than 30 days is refused.
//   /metrics from many isolates: a colo's isolates share one AE snapshot per TTL (Cache API).
//   reconnect storm: every socket of a hub dropped at once (a deploy) comes back with jittered
//   backoff and since=, within the replay budgets, and misses nothing.
//   JWKS storm: tokens with random kids, and a provider that is down, cost one JWKS fetch per
//   isolate per cooldown; tokens with the provider's real kid keep being accepted.
// (A repository stream of this file's own, so other files' tests do not share the attacked hub;
// the global stream runs the same hub code.)
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { sql } from "drizzle-orm";
import { importJWK, SignJWT } from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { boundedRead, createDb, createPool } from "../src/db/client";
import { getConfig } from "../src/env";
import { ApiError } from "../src/errors";
import worker from "../src/index";
import { kidOf } from "../src/lib/digest";
import { verifyToken } from "../src/middleware/auth";
import { resetJwksState } from "../src/middleware/jwks";
import { LIMITS } from "../src/realtime/protocol";
import { AUDIENCE, call, errorBody, hs256Token, ISSUER, idpToken } from "./helpers";
import {
	GLOBAL,
	type OpenOptions,
	postEvent,
	repoStream,
	seededRepos,
	TestSocket,
	upgradeRequest,
} from "./realtime-client";

let repo: string;
let hoarded: string;
let stormy: string;
let token: string;

beforeAll(async () => {
	[repo = "", hoarded = "", stormy = ""] = await seededRepos(250, 3);
	token = await hs256Token({ sub: "abuse-viewer" });
});

/** Closes the sockets and waits for each close handshake (none is left open at teardown). */
async function closeAll(sockets: TestSocket[]): Promise<void> {
	for (const s of sockets) s.close();
	await Promise.all(sockets.map((s) => s.closed));
}

const REPLAY_MARK = ',"replay":true}';

/** Bytes of the replayed frames a socket receives, as the hub stores them (without the mark). */
function countReplays(s: TestSocket): { bytes: number; frames: number } {
	const seen = { bytes: 0, frames: 0 };
	s.ws.addEventListener("message", (e) => {
		const text = String(e.data);
		if (text.endsWith(REPLAY_MARK)) {
			seen.bytes += text.length - REPLAY_MARK.length + 1;
			seen.frames++;
		}
	});
	return seen;
}

describe("replay flood", () => {
	it("resume spam at the full command budget: bounded replay per socket and per hub, viewers served", async () => {
		// A log of ~1 MB: 400 events of ~2.6 KB.
		const pad = "x".repeat(2500);
		let first = 0;
		for (let b = 0; b < 4; b++) {
			const events = Array.from({ length: 100 }, (_, i) => ({
				type: "insight_added",
				repository_id: repo,
				data: { n: b * 100 + i, pad },
			}));
			const res = await postEvent({ events }, "/api/v1/events/batch");
			expect(res.status).toBe(202);
			const body = (await res.json()) as { results: { seq: { repository: number } }[] };
			if (b === 0) first = body.results[0]?.seq.repository ?? 0;
		}
		const viewer = await TestSocket.open(repoStream(repo), { token });
		await viewer.nextOf("welcome");
		const arrived = new Map<string, number>();
		viewer.ws.addEventListener("message", (e) => {
			const m = JSON.parse(String(e.data)) as { id?: string };
			if (m.id?.startsWith("live-")) arrived.set(m.id, Date.now());
		});
		// Budgets refill from the moment each socket connects.
		const started = Date.now();
		const attackers = await Promise.all(
			Array.from({ length: 5 }, async (_, k) => {
				const s = await TestSocket.open(repoStream(repo), {
					token: await hs256Token({ sub: `attacker-${k}` }),
				});
				await s.nextOf("welcome");
				return { s, replays: countReplays(s) };
			}),
		);

		const resume = (n: number) => {
			for (const a of attackers) a.s.send({ type: "resume", id: `r${n}`, since: first - 1 });
		};
		// The full burst at once, then the refill rate (10 commands/s) for 3 s.
		for (let n = 0; n < LIMITS.commandBurst; n++) resume(n);
		const sent = new Map<string, number>();
		for (let tick = 0; tick < 30; tick++) {
			resume(100 + tick);
			const id = `live-${tick}`;
			sent.set(id, Date.now());
			const res = await postEvent({ id, type: "analysis_started", repository_id: repo, data: { tick } });
			expect(res.status).toBe(202);
			await new Promise((r) => setTimeout(r, 100));
		}
		await viewer.next((m) => "id" in m && m.id === "live-29", 5_000);
		const elapsedS = (Date.now() - started) / 1000;

		const latencies = [...sent].map(([id, at]) => (arrived.get(id) ?? Number.POSITIVE_INFINITY) - at);
		latencies.sort((a, b) => a - b);
		const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] ?? Number.POSITIVE_INFINITY;
		expect(p99).toBeLessThanOrEqual(500);

		// Each socket: its burst plus its refill; all together: the hub's burst plus its refill.
		const perSocket = LIMITS.replayBurstBytes + (LIMITS.replayBytesPerMinute * elapsedS) / 60;
		const perHub = LIMITS.hubReplayBurstBytes + LIMITS.hubReplayBytesPerSecond * elapsedS;
		let total = 0;
		for (const a of attackers) {
			expect(a.replays.bytes).toBeLessThanOrEqual(perSocket);
			total += a.replays.bytes;
			// The bound engaged: past its budget a resume is answered with a reset.
			expect(
				a.s.frames.some((m) => m.type === "reset" && "reason" in m && m.reason === "too_much_to_replay"),
			).toBe(true);
		}
		expect(total).toBeLessThanOrEqual(perHub);
		// Without the budgets this would be 5 sockets × 50 resumes × ~1 MB.
		expect(total).toBeGreaterThan(0);
		console.log(
			`replay flood: viewer p99 ${p99} ms; attackers sent ${(total / 2 ** 20).toFixed(1)} MiB of replay in ${elapsedS.toFixed(1)} s (bound ${(perHub / 2 ** 20).toFixed(1)} MiB)`,
		);
		viewer.close();
		for (const a of attackers) a.s.close();
	}, 30_000);
});

describe("socket hoarding", () => {
	/** Opens `n` sockets with the same options, a few at a time. */
	async function openMany(path: string, opts: OpenOptions, n: number): Promise<TestSocket[]> {
		const out: TestSocket[] = [];
		for (let i = 0; i < n; i += 20) {
			const wave = Array.from({ length: Math.min(20, n - i) }, () => TestSocket.open(path, opts));
			out.push(...(await Promise.all(wave)));
		}
		return out;
	}

	async function expectCapped(path: string, opts: OpenOptions): Promise<void> {
		const res = await exports.default.fetch(upgradeRequest(path, opts));
		expect(res.status).toBe(429);
		expect(res.webSocket).toBeFalsy();
		expect(res.headers.get("retry-after")).toBe("30");
		const err = await errorBody(res);
		expect(err.code).toBe("rate_limited");
		expect(err.message).toContain(String(LIMITS.socketsPerCaller));
	}

	it("a token subject at its cap on a repository hub gets 429; others connect and are served", async () => {
		const hoarder = { token: await hs256Token({ sub: "hoarder" }) };
		const held = await openMany(repoStream(hoarded), hoarder, LIMITS.socketsPerCaller);
		await expectCapped(repoStream(hoarded), hoarder);
		// Another caller on the same hub is still accepted and gets the hub's events.
		const viewer = await TestSocket.open(repoStream(hoarded), { token });
		await viewer.nextOf("welcome");
		const res = await postEvent({ id: "hoard-1", type: "analysis_started", repository_id: hoarded });
		expect(res.status).toBe(202);
		expect((await viewer.nextEvent((e) => e.id === "hoard-1")).repository_id).toBe(hoarded);
		// The cap is per hub: the hoarder may still open a stream of another repository.
		const elsewhere = await TestSocket.open(repoStream(repo), hoarder);
		await elsewhere.nextOf("welcome");
		// Closing one socket frees its place (the close handshake completes after the count drops).
		const [first] = held;
		first?.close();
		await first?.closed;
		const again = await TestSocket.open(repoStream(hoarded), hoarder);
		await again.nextOf("welcome");
		await expectCapped(repoStream(hoarded), hoarder);
		await closeAll([...held, viewer, elsewhere, again]);
	}, 30_000);

	it("anonymous sockets are counted by client address on the public global stream", async () => {
		const path = `${GLOBAL}?shard=0`;
		const from = (ip: string): OpenOptions => ({ headers: { "cf-connecting-ip": ip } });
		const held = await openMany(path, from("198.51.100.7"), LIMITS.socketsPerCaller);
		await expectCapped(path, from("198.51.100.7"));
		// The same /64 is the same caller; another address is not.
		const v6 = await openMany(path, from("2001:db8:1:2::1"), LIMITS.socketsPerCaller);
		await expectCapped(path, from("2001:db8:1:2:ffff::9"));
		const other = await TestSocket.open(path, from("198.51.100.8"));
		expect((await other.nextOf("welcome")).shard).toBe(0);
		// An IPv6 caller's socket also counts for its /48 (LIMITS.socketsPerSite on the hub).
		const shard0 = env.GLOBAL_HUB.get(env.GLOBAL_HUB.idFromName("global:0"));
		const sites = await runInDurableObject(shard0, (_hub, state) =>
			state.getWebSockets().map((ws) => (ws.deserializeAttachment() as { site?: string }).site),
		);
		expect(sites.filter((x) => x === "ip6:2001:db8:1::/48")).toHaveLength(LIMITS.socketsPerCaller);
		await closeAll([...held, ...v6, other]);
	}, 60_000);
});

describe("cache bypass into Postgres", () => {
	/** One request through the Worker with `overrides` on its env (config is parsed per env). */
	async function fetchWith(overrides: Partial<Env>, path: string, headers: Record<string, string> = {}) {
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request(`http://gitinsight.test${path}`, { headers }),
			{ ...env, ...overrides },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		return res;
	}

	it("anonymous no-cache and max-age=1 for one key reach Postgres once; an admin's still do", async () => {
		const path = `/api/v1/fast/search?q=${encodeURIComponent(`api bypass-${crypto.randomUUID()}`)}`;
		const statuses: string[] = [];
		for (let i = 0; i < 30; i++) {
			const cc = ["no-cache", "max-age=0", "max-age=1", "no-cache, no-store"][i % 4] ?? "no-cache";
			const res = await call(path, { headers: { "cache-control": cc, "cf-connecting-ip": "192.0.2.44" } });
			expect(res.status).toBe(200);
			statuses.push(res.headers.get("x-cache") ?? "");
		}
		// The first loads from Postgres; the other 29 are answered from the copy it stored.
		expect(statuses[0]).toBe("MISS");
		expect(statuses.filter((x) => x === "MISS")).toHaveLength(1);
		const admin = await hs256Token({ sub: "abuse-ops", role: "admin" });
		const forced = await call(path, { token: admin, headers: { "cache-control": "no-cache" } });
		expect(forced.headers.get("x-cache")).toBe("MISS");
	});

	it("no-cache with no-store, once the copy is past the floor: one load refreshes it for everyone", async () => {
		const path = `/api/v1/fast/search?q=${encodeURIComponent(`api nostore-${crypto.randomUUID()}`)}`;
		const headers = { "cache-control": "no-cache, no-store", "cf-connecting-ip": "192.0.2.45" };
		expect((await call(path, { headers })).headers.get("x-cache")).toBe("MISS");
		// Past the 5 s floor, no-store would make every request load again without storing.
		await new Promise((resolve) => setTimeout(resolve, 5_200));
		const statuses: string[] = [];
		for (let i = 0; i < 10; i++) statuses.push((await call(path, { headers })).headers.get("x-cache") ?? "");
		expect(statuses.filter((x) => x === "MISS")).toHaveLength(1);
	}, 20_000);

	it("Postgres cancels a read at the statement timeout; the Worker answers 503 and keeps serving", async () => {
		// The guard itself, on the real driver and Postgres: a 10 s statement is cancelled at 300 ms.
		const db = createDb(env);
		const started = Date.now();
		await expect(boundedRead(db, sql`SELECT pg_sleep(10) AS slept`, 300)).rejects.toMatchObject({
			code: "57014",
		});
		expect(Date.now() - started).toBeLessThan(3_000);
		const { rows } = await db.execute<{ n: number }>(
			sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state = 'active'`,
		);
		expect(rows[0]?.n).toBe(0);
		// Search and leaderboard statements run under it: with a 1 ms budget every cold read is cut.
		const tiny = { SQL_STATEMENT_TIMEOUT_MS: "1" };
		const q = `/api/v1/fast/search?q=${encodeURIComponent(`cancel-${crypto.randomUUID()} api`)}`;
		const cut = await fetchWith(tiny, q);
		expect(cut.status).toBe(503);
		expect((await errorBody(cut)).code).toBe("service_unavailable");
		expect((await fetchWith({}, q)).status).toBe(200);
		// A leaderboard read held up by a lock: cut at a 300 ms budget, not at the 5 s origin timeout.
		const board = "/api/v1/fast/leaderboard?category=popular&timeframe=week&language=Haskell";
		const { pool, close } = createPool(env);
		const holder = await pool.connect();
		try {
			await holder.query("BEGIN");
			await holder.query("LOCK TABLE leaderboard_snapshots IN ACCESS EXCLUSIVE MODE");
			const at = Date.now();
			const held = await fetchWith({ SQL_STATEMENT_TIMEOUT_MS: "300" }, board);
			expect(held.status).toBe(503);
			expect(Date.now() - at).toBeLessThan(2_000);
		} finally {
			await holder.query("ROLLBACK");
			holder.release();
			await close();
		}
		expect((await fetchWith({}, board)).status).toBe(200);
	});

	it("q is bounded after NFKC normalisation (U+FDFA is 18 characters)", async () => {
		const res = await call(`/api/v1/fast/search?q=${encodeURIComponent("\uFDFA".repeat(20))}`);
		expect(res.status).toBe(400);
		expect(JSON.stringify(await errorBody(res))).toContain("after Unicode NFKC normalisation");
		const fine = await call(`/api/v1/fast/search?q=${encodeURIComponent("\uFDFA".repeat(14))}`);
		expect(fine.status).toBe(200);
	});

	it("every leaderboard limit is cut from one cached ranking: no Postgres read per limit", async () => {
		const board = "/api/v1/fast/leaderboard?category=quality&timeframe=month&language=Rust";
		const whole = await call(`${board}&limit=100`);
		expect(whole.status).toBe(200);
		const all = (await whole.json()) as { entries: { id: string }[] };
		// Postgres unreachable from here on: each of these limits is answered from the whole board.
		const pgDown = { NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" };
		for (const limit of [1, 2, 3, 7, 10, 25, 50, 99]) {
			const res = await fetchWith(pgDown, `${board}&limit=${limit}`);
			expect(res.status, `limit=${limit}`).toBe(200);
			const body = (await res.json()) as { entries: { id: string }[] };
			expect(body.entries.map((e) => e.id)).toEqual(all.entries.slice(0, limit).map((e) => e.id));
		}
	});
});

describe("Redis key space", () => {
	it("distinct anonymous searches and leaderboards are stored in a fixed set of slots", async () => {
		const raw = new Redis({
			url: inject("upstashUrl"),
			token: inject("upstashToken"),
			enableTelemetry: false,
		});
		const run = crypto.randomUUID().slice(0, 8);
		for (let i = 0; i < 40; i++) {
			const from = { headers: { "cf-connecting-ip": "203.0.113.99" } };
			expect((await call(`/api/v1/fast/search?q=scan-${run}-${i}`, from)).status).toBe(200);
			expect((await call(`/api/v1/fast/leaderboard?language=Scan${run}${i}`, from)).status).toBe(200);
		}
		const prefix = inject("redisKeyPrefix");
		for (const [space, slots] of [
			["search", 4096],
			["leaderboard", 1024],
		] as const) {
			const keys: string[] = [];
			let cursor = "0";
			do {
				const [next, found] = await raw.scan(cursor, { match: `${prefix}${space}:*`, count: 1000 });
				keys.push(...found);
				cursor = String(next);
			} while (cursor !== "0");
			expect(keys.length).toBeGreaterThan(0);
			for (const key of keys) {
				const slot = Number(key.slice(`${prefix}${space}:slot:`.length));
				expect(key.startsWith(`${prefix}${space}:slot:`), key).toBe(true);
				expect(slot).toBeLessThan(slots);
			}
		}
	});
});

describe("JWKS fetch storms", () => {
	const base = new URL(inject("jwksUrl")).origin;
	const fetchesOf = async (name: string) =>
		((await (await fetch(`${base}/jwks-count/${name}`)).json()) as { count: number }).count;

	/** A token signed with the provider's RS256 key but naming a kid it does not have. */
	async function randomKidToken(): Promise<string> {
		const jwk = inject("jwksPrivateKeys").RS256;
		return new SignJWT({ role: "user" })
			.setProtectedHeader({ alg: "RS256", kid: crypto.randomUUID(), typ: "JWT" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject("storm")
			.setIssuedAt()
			.setExpirationTime("5m")
			.sign(await importJWK(jwk, "RS256"));
	}

	async function me(bindings: Partial<Env>, token: string): Promise<Response> {
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request("http://gitinsight.test/api/v1/me", { headers: { authorization: `Bearer ${token}` } }),
			{ ...env, ...bindings },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		return res;
	}

	it("60 unknown kids, 20 at a time: one fetch; the real kid is still accepted", async () => {
		resetJwksState();
		const name = `storm-${crypto.randomUUID()}`;
		const bindings = { JWT_JWKS_URL: `${base}/jwks/${name}.json` };
		const legit = await idpToken("RS256", { sub: "storm-legit" });
		expect((await me(bindings, legit)).status).toBe(200);
		for (let wave = 0; wave < 3; wave++) {
			const answers = await Promise.all(
				Array.from({ length: 20 }, async () => me(bindings, await randomKidToken())),
			);
			for (const res of answers) {
				expect(res.status).toBe(401);
				expect((await errorBody(res)).message).toBe("no key matches the token");
			}
			expect((await me(bindings, legit)).status).toBe(200);
		}
		expect(await fetchesOf(name)).toBe(1);
	});

	it("a provider that is down: one failed fetch per cooldown, every token 503 with Retry-After", async () => {
		resetJwksState();
		const name = `down-${crypto.randomUUID()}`;
		const bindings = { JWT_JWKS_URL: `${base}/jwks-down/${name}.json` };
		const answers = await Promise.all(
			Array.from({ length: 30 }, async (_, i) =>
				me(bindings, i % 2 ? await randomKidToken() : await idpToken("ES256")),
			),
		);
		for (const res of answers) {
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("5");
			expect((await errorBody(res)).code).toBe("service_unavailable");
		}
		expect(await fetchesOf(name)).toBe(1);
		// HS256 tokens do not need the provider and are still served.
		expect((await me(bindings, await hs256Token({ sub: "storm-hs" }))).status).toBe(200);
	});
});

describe("the public global stream", () => {
	it("carries only the allow-listed scalar data of an event, live and replayed; the repository stream all of it", async () => {
		const path = `${GLOBAL}?shard=1`;
		const anonymous = await TestSocket.open(path);
		const welcome = await anonymous.nextOf("welcome");
		const member = await TestSocket.open(repoStream(hoarded), { token });
		await member.nextOf("welcome");
		const id = `public-${crypto.randomUUID()}`;
		const data = {
			insights_added: 5,
			analysis_duration: "4m32s",
			status: "done",
			title: "t".repeat(300),
			access_token: "s3cr3t",
			owner_email: "someone@example.com",
			progress: { done: 3 },
			score: Number.NaN,
		};
		const res = await postEvent({ id, type: "analysis_completed", repository_id: hoarded, data });
		expect(res.status).toBe(202);
		const live = await anonymous.nextEvent((e) => e.id === id);
		expect(live.data).toEqual({ status: "done", insights_added: 5, analysis_duration: "4m32s" });
		expect(live.repository_id).toBe(hoarded);
		const full = await member.nextEvent((e) => e.id === id);
		expect(full.data).toMatchObject({
			access_token: "s3cr3t",
			owner_email: "someone@example.com",
			title: data.title,
		});
		// What the shard logged is the public part too: a replay shows no more.
		const late = await TestSocket.open(`${path}&since=${welcome.seq}`);
		const replayed = await late.nextEvent((e) => e.id === id);
		expect(replayed.replay).toBe(true);
		expect(JSON.stringify(replayed)).not.toContain("s3cr3t");
		expect(replayed.data).toEqual(live.data);
		await closeAll([anonymous, member, late]);
	});
});

describe("stream tickets", () => {
	it("a used ticket cannot be presented again in the 5 s of clock tolerance after it expires", async () => {
		const exp = Math.floor(Date.now() / 1000) + 1;
		const ticket = await new SignJWT({ roles: ["user"], tgt: `repository:${hoarded}` })
			.setProtectedHeader({ alg: "HS256", typ: "gi-stream-ticket+jwt" })
			.setIssuer(ISSUER)
			.setAudience(`${AUDIENCE}#stream-ticket`)
			.setSubject("ticket-replayer")
			.setJti(crypto.randomUUID())
			.setIssuedAt()
			.setExpirationTime(exp)
			.sign(new TextEncoder().encode(inject("jwtSecret")));
		const first = await TestSocket.open(repoStream(hoarded, `?ticket=${ticket}`));
		await first.nextOf("welcome");
		// Past exp, inside the tolerance: the signature and claims still verify.
		await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 1_500));
		const again = await exports.default.fetch(upgradeRequest(repoStream(hoarded, `?ticket=${ticket}`)));
		expect(again.status).toBe(401);
		expect((await errorBody(again)).message).toBe("the ticket was already used");
		await closeAll([first]);
	});
});

describe("/health flood", () => {
	it("60 requests, 20 at a time: the backends are probed once; every answer is served", async () => {
		const base = new URL(inject("jwksUrl")).origin;
		const name = `health-${crypto.randomUUID()}`;
		// A fresh env object: its own parsed config, so its own probe memo.
		const flooded = { ...env, PYTHON_API_URL: `${base}/python-counted/${name}` };
		const checkedAt = new Set<string>();
		for (let wave = 0; wave < 3; wave++) {
			const answers = await Promise.all(
				Array.from({ length: 20 }, async () => {
					const ctx = createExecutionContext();
					const res = await worker.fetch(new Request("http://gitinsight.test/health"), flooded, ctx);
					await waitOnExecutionContext(ctx);
					return res;
				}),
			);
			for (const res of answers) {
				expect(res.status).toBe(200);
				const body = (await res.json()) as { status: string; checked_at: string };
				expect(body.status).toBe("healthy");
				checkedAt.add(body.checked_at);
			}
		}
		const probes = ((await (await fetch(`${base}/jwks-count/python-${name}`)).json()) as { count: number })
			.count;
		expect(probes).toBe(1);
		expect(checkedAt.size).toBe(1);
	});
});

describe("security headers", () => {
	it("every response carries HSTS, nosniff and a refusal to be framed; the pages keep their own CSP", async () => {
		const user = await hs256Token({ sub: "headers" });
		const answers: [string, Response][] = [
			["search", await call("/api/v1/fast/search?q=api")],
			["400", await call("/api/v1/fast/search")],
			["401", await call(`/api/v1/fast/repositories/${hoarded}/summary`)],
			["404", await call("/nope")],
			["405", await call("/health", { method: "DELETE" })],
			["summary", await call(`/api/v1/fast/repositories/${hoarded}/summary`, { token: user })],
			["health", await call("/health")],
			["openapi", await call("/openapi.json")],
			["docs", await call("/docs")],
			["live", await call("/live")],
		];
		for (const [what, res] of answers) {
			expect(res.headers.get("strict-transport-security"), what).toBe("max-age=31536000; includeSubDomains");
			expect(res.headers.get("x-content-type-options"), what).toBe("nosniff");
			expect(res.headers.get("x-frame-options"), what).toBe("DENY");
			expect(res.headers.get("content-security-policy"), what).toContain("frame-ancestors 'none'");
			await res.body?.cancel();
		}
		const [, docs] = answers.find(([what]) => what === "docs") ?? [];
		expect(docs?.headers.get("content-security-policy")).toContain("script-src 'unsafe-inline'");
		const [, json] = answers.find(([what]) => what === "search") ?? [];
		expect(json?.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
	});
});

describe("JWT_SECRET rotation", () => {
	const secret = () =>
		Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");

	async function send(bindings: Partial<Env>, request: Request): Promise<Response> {
		const ctx = createExecutionContext();
		const res = await worker.fetch(request, { ...env, ...bindings }, ctx);
		await waitOnExecutionContext(ctx);
		return res;
	}
	const meWith = (bindings: Partial<Env>, token: string) =>
		send(
			bindings,
			new Request("http://gitinsight.test/api/v1/me", { headers: { authorization: `Bearer ${token}` } }),
		);

	it("tokens and tickets of the old secret verify during the rotation, and stop after it", async () => {
		const [old, next] = [secret(), secret()];
		const before = { JWT_SECRET: old };
		const during = { JWT_SECRET: next, JWT_SECRET_PREVIOUS: old };
		const after = { JWT_SECRET: next };
		// A token without a kid (as other issuers sign), and a ticket issued before the rotation.
		const token = await hs256Token({ sub: "rotating" }, { secret: old });
		const issued = await send(
			before,
			new Request("http://gitinsight.test/api/v1/stream/tickets", {
				method: "POST",
				headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
				body: JSON.stringify({ repository_id: hoarded }),
			}),
		);
		expect(issued.status).toBe(201);
		const { ticket } = (await issued.json()) as { ticket: string };
		const [header = ""] = ticket.split(".");
		expect(JSON.parse(atob(header.replaceAll("-", "+").replaceAll("_", "/")))).toMatchObject({
			kid: await kidOf(old),
		});

		expect((await meWith(during, token)).status).toBe(200);
		expect((await meWith(during, await hs256Token({ sub: "new" }, { secret: next }))).status).toBe(200);
		const upgrade = await send(during, upgradeRequest(repoStream(hoarded, `?ticket=${ticket}`)));
		expect(upgrade.status).toBe(101);
		upgrade.webSocket?.accept();
		upgrade.webSocket?.close(1000, "done");

		const refused = await meWith(after, token);
		expect(refused.status).toBe(401);
		expect((await errorBody(refused)).message).toBe("token signature is invalid");
	});

	it("another issuer's kid is tried against the keys; a forged signature is refused", async () => {
		const current = inject("jwtSecret");
		const sign = (kid: string, key: string) =>
			new SignJWT({ role: "user" })
				.setProtectedHeader({ alg: "HS256", typ: "JWT", kid })
				.setIssuer(ISSUER)
				.setAudience(AUDIENCE)
				.setSubject("kid-test")
				.setIssuedAt()
				.setExpirationTime("5m")
				.sign(new TextEncoder().encode(key));
		const forged = await call("/api/v1/me", { token: await sign("hs-unknownkey0000", secret()) });
		expect(forged.status).toBe(401);
		expect((await errorBody(forged)).message).toBe("token signature is invalid");
		expect((await call("/api/v1/me", { token: await sign("issuer-v1", current) })).status).toBe(200);
		expect((await call("/api/v1/me", { token: await sign(await kidOf(current), current) })).status).toBe(200);
	});
});

describe("event ids", () => {
	async function post(
		token: string,
		body: unknown,
	): Promise<{ status: string; seq: { repository: number | null; global: number[] } }> {
		const res = await call("/api/v1/events", {
			method: "POST",
			token,
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		});
		expect(res.status).toBe(202);
		return (await res.json()) as { status: string; seq: { repository: number | null; global: number[] } };
	}

	it("are deduped per producer and repository: one service cannot pre-empt another's", async () => {
		const [a, b] = await Promise.all([
			hs256Token({ sub: "producer-a", role: "service" }),
			hs256Token({ sub: "producer-b", role: "service" }),
		]);
		const id = `shared-${crypto.randomUUID()}`;
		const event = { id, type: "analysis_started", repository_id: hoarded };
		const first = await post(a, event);
		expect(first.status).toBe("accepted");
		// The same id from another producer is its own event…
		const other = await post(b, event);
		expect(other.status).toBe("accepted");
		expect(other.seq.repository).toBeGreaterThan(first.seq.repository ?? 0);
		// …while a retry by the same producer is a duplicate with the first seqs.
		const retry = await post(a, event);
		expect(retry).toEqual({ ...first, status: "duplicate" });
		// One id about two repositories: two events, on the repository hubs and on the shards.
		const elsewhere = await post(a, { ...event, repository_id: repo });
		expect(elsewhere.status).toBe("accepted");
		expect(elsewhere.seq.global.every((seq, n) => seq !== first.seq.global[n])).toBe(true);
	});
});

describe("repeated bad tokens", () => {
	it("a refused token is remembered: the next looks at it (limiter, cache options, auth) do not verify again", async () => {
		const config = getConfig(env);
		const forged = await hs256Token(
			{ sub: "forged" },
			{ secret: "not-the-secret-0123456789abcdefghijklmnop" },
		);
		const first = await verifyToken(forged, config).catch((err: unknown) => err);
		expect(first).toBeInstanceOf(ApiError);
		expect((first as ApiError).code).toBe("unauthorized");
		// The same refusal object: answered from the memo, with no second signature check.
		await expect(verifyToken(forged, config)).rejects.toBe(first);
		const res = await call("/api/v1/me", { token: forged });
		expect(res.status).toBe(401);
		expect((await errorBody(res)).message).toBe("token signature is invalid");
	});
});

describe("token lifetime", () => {
	it("a token valid for more than 30 days is refused; 30 days is accepted", async () => {
		const long = await call("/api/v1/me", { token: await hs256Token({ sub: "forever" }, { ttl: "31d" }) });
		expect(long.status).toBe(401);
		expect((await errorBody(long)).message).toBe("token lifetime exceeds 30 days");
		// Without iat the lifetime counts from now.
		const noIat = await new SignJWT({ role: "user" })
			.setProtectedHeader({ alg: "HS256", typ: "JWT" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject("no-iat")
			.setExpirationTime("400d")
			.sign(new TextEncoder().encode(inject("jwtSecret")));
		expect((await call("/api/v1/me", { token: noIat })).status).toBe(401);
		// An iat in the future does not lengthen it.
		const backdated = await new SignJWT({ role: "user" })
			.setProtectedHeader({ alg: "HS256", typ: "JWT" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject("future-iat")
			.setIssuedAt(Math.floor(Date.now() / 1000) + 3649 * 86_400)
			.setExpirationTime(Math.floor(Date.now() / 1000) + 3650 * 86_400)
			.sign(new TextEncoder().encode(inject("jwtSecret")));
		expect((await call("/api/v1/me", { token: backdated })).status).toBe(401);
		const month = await call("/api/v1/me", { token: await hs256Token({ sub: "month" }, { ttl: "30d" }) });
		expect(month.status).toBe(200);
	});
});

describe("/metrics and the Cloudflare API quota", () => {
	it("isolates of one colo share a snapshot: 5 cold isolates cost one AE read per TTL", async () => {
		// A SQL API URL of this test's own (the stand-in counts calls per account id).
		const account = `quota${crypto.randomUUID().replaceAll("-", "")}`;
		const sqlUrl = inject("aeSqlUrl").replace("/accounts/local/", `/accounts/${account}/`);
		const calls = async () =>
			((await (await fetch(`${new URL(sqlUrl).origin}/__sql-count/${account}`)).json()) as { count: number })
				.count;
		const metricsToken = "quota-test-metrics-token-0123456789";
		// Each env object is its own parsed config: an isolate of its own, as far as the snapshot goes.
		const isolates = Array.from({ length: 5 }, () => ({
			...env,
			AE_SQL_URL: sqlUrl,
			METRICS_TOKEN: metricsToken,
			METRICS_CACHE_TTL_MS: "10000",
		}));
		const texts: string[] = [];
		for (const isolate of isolates) {
			const ctx = createExecutionContext();
			const res = await worker.fetch(
				new Request("http://gitinsight.test/metrics", {
					headers: { authorization: `Bearer ${metricsToken}` },
				}),
				isolate,
				ctx,
			);
			expect(res.status).toBe(200);
			texts.push(await res.text());
			await waitOnExecutionContext(ctx);
		}
		const perSnapshot = await calls();
		// One snapshot is at most 6 queries (one per part); five unshared isolates would be 30.
		expect(perSnapshot).toBeGreaterThan(0);
		expect(perSnapshot).toBeLessThanOrEqual(6);
		// The first isolate read AE; the other four took its snapshot from the colo's cache.
		expect(texts.every((t) => t.includes("gitinsight_metrics_source_up 1"))).toBe(true);
		const queries = perSnapshot;
		const again = { ...env, AE_SQL_URL: sqlUrl, METRICS_TOKEN: metricsToken, METRICS_CACHE_TTL_MS: "0" };
		const ctx = createExecutionContext();
		await (
			await worker.fetch(
				new Request("http://gitinsight.test/metrics", {
					headers: { authorization: `Bearer ${metricsToken}` },
				}),
				again,
				ctx,
			)
		).text();
		await waitOnExecutionContext(ctx);
		// Without a TTL nothing is shared: a full read of its own (the same number of queries).
		expect(await calls()).toBe(2 * queries);
	});
});

describe("reconnect storm", () => {
	it("200 sockets dropped at once (a deploy) come back with jittered since= reconnects; none misses an event", async () => {
		const pad = "y".repeat(1000);
		const post = async (n: number) => {
			const res = await postEvent({
				id: `storm-${n}-${crypto.randomUUID()}`,
				type: "insight_added",
				repository_id: stormy,
				data: { n, pad },
			});
			expect(res.status).toBe(202);
		};
		for (let n = 0; n < 20; n++) await post(n);
		const tokens = await Promise.all(Array.from({ length: 20 }, (_, k) => hs256Token({ sub: `storm-${k}` })));
		interface Viewer {
			socket: TestSocket;
			seen: Set<number>;
			last: number;
			reconnectedAt?: number;
			replayBytes: number;
			resets: number;
		}
		const track = (v: Viewer, s: TestSocket) => {
			s.ws.addEventListener("message", (e) => {
				const text = String(e.data);
				const m = JSON.parse(text) as { type: string; seq?: number; replay?: boolean };
				if (m.type === "reset") v.resets++;
				if (m.seq !== undefined && m.type === "insight_added") {
					v.seen.add(m.seq);
					v.last = Math.max(v.last, m.seq);
				}
				if (m.replay) v.replayBytes += text.length;
			});
		};
		const viewers: Viewer[] = [];
		for (let i = 0; i < 200; i += 20) {
			const wave = await Promise.all(
				Array.from({ length: 20 }, async (_, k) => {
					const socket = await TestSocket.open(repoStream(stormy), { token: tokens[k] ?? "" });
					const welcome = await socket.nextOf("welcome");
					const v: Viewer = { socket, seen: new Set(), last: welcome.seq, replayBytes: 0, resets: 0 };
					track(v, socket);
					return v;
				}),
			);
			viewers.push(...wave);
		}
		const before = viewers[0]?.last ?? 0;
		// The deploy: the hub closes every socket with 1001 (going away).
		const stub = env.REPO_HUB.get(env.REPO_HUB.idFromName(stormy));
		const droppedAt = Date.now();
		await runInDurableObject(stub, (_hub, state) => {
			for (const ws of state.getWebSockets()) ws.close(1001, "deploy");
		});
		// Each client: full-jitter backoff for its first attempt, random(0, 500 ms), then since=.
		const back = viewers.map(async (v, i) => {
			const closed = await v.socket.closed;
			expect(closed.code).toBe(1001);
			await new Promise((resolve) => setTimeout(resolve, Math.random() * 500));
			const socket = await TestSocket.open(repoStream(stormy, `?since=${v.last}`), {
				token: tokens[i % 20] ?? "",
			});
			track(v, socket);
			v.socket = socket;
			await socket.nextOf("welcome");
			v.reconnectedAt = Date.now();
		});
		// Events keep coming during the storm.
		for (let n = 20; n < 30; n++) {
			await post(n);
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
		await Promise.all(back);
		await post(30);
		const head = before + 11;
		await Promise.all(
			viewers.map((v) => v.socket.next((m) => "seq" in m && m.seq === head && "data" in m, 5_000)),
		);
		const elapsedS = (Date.now() - droppedAt) / 1000;
		const times = viewers.map((v) => (v.reconnectedAt ?? 0) - droppedAt).sort((a, b) => a - b);
		// Spread by the jitter, all back well within a second or two.
		expect(times.at(-1)).toBeLessThan(3_000);
		// Nothing lost: every viewer has every seq after the one it was at when dropped (or a reset).
		for (const v of viewers) {
			if (v.resets > 0) continue;
			for (let seq = before + 1; seq <= head; seq++) expect(v.seen.has(seq), `seq ${seq}`).toBe(true);
		}
		// Replays within the hub's budget: its burst plus its refill over the storm.
		const replayed = viewers.reduce((a, v) => a + v.replayBytes, 0);
		expect(replayed).toBeLessThanOrEqual(
			LIMITS.hubReplayBurstBytes + LIMITS.hubReplayBytesPerSecond * elapsedS,
		);
		console.log(
			`reconnect storm: 200 sockets back in ${times[0]}-${times.at(-1)} ms (median ${times[100]} ms), ${(replayed / 1024).toFixed(0)} KiB replayed, ${viewers.filter((v) => v.resets > 0).length} resets`,
		);
		await closeAll(viewers.map((v) => v.socket));
	}, 30_000);
});

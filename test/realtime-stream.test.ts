// The streams through the real Worker: connect and receive a service's event, the subprotocol
// and ticket flows, every refusal before the upgrade (426, 401/403, Origin, 400, 404), and the
// socket's behaviour on bad, oversized and flooding client frames.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { AUDIENCE, call, errorBody, hs256Token, ISSUER } from "./helpers";
import {
	GLOBAL,
	ORIGIN,
	postEvent,
	repoStream,
	seededRepos,
	settle,
	TestSocket,
	upgradeRequest,
} from "./realtime-client";

let repos: string[];
let token: string;
const repo = (i: number) => repos[i] ?? "";

beforeAll(async () => {
	repos = await seededRepos(0, 20);
	token = await hs256Token({ sub: "stream-user" });
});

const upgrade = (path: string, opts: Parameters<typeof upgradeRequest>[1] = {}) =>
	exports.default.fetch(upgradeRequest(path, opts));

describe("repository stream", () => {
	it("welcomes, then delivers an event a service POSTs, as the seed's message plus seq and id", async () => {
		const s = await TestSocket.open(repoStream(repo(0)), { token });
		const welcome = await s.nextOf("welcome");
		expect(welcome).toMatchObject({
			hub: "repository",
			repository_id: repo(0),
			scope: "*",
			seq: expect.any(Number),
		});
		expect(welcome.heartbeat).toEqual({ send: '{"type":"ping"}', expect: '{"type":"pong"}' });
		const posted = await postEvent({
			id: "evt-stream-1",
			type: "analysis_completed",
			repository_id: repo(0).toUpperCase(),
			timestamp: "2025-08-16T10:30:00Z",
			data: { insights_added: 5, analysis_duration: "4m32s" },
		});
		expect(posted.status).toBe(202);
		const answer = (await posted.json()) as { seq: { repository: number } };
		const event = await s.nextEvent();
		expect(event).toEqual({
			type: "analysis_completed",
			id: "evt-stream-1",
			seq: answer.seq.repository,
			repository_id: repo(0),
			timestamp: "2025-08-16T10:30:00.000Z",
			data: { insights_added: 5, analysis_duration: "4m32s" },
		});
		expect(event.seq).toBe(welcome.seq + 1);
		s.close();
		expect(await s.closed).toMatchObject({ code: 1000 });
	});

	it("takes the token as a subprotocol and echoes only gitinsight.v1", async () => {
		const s = await TestSocket.open(repoStream(repo(1)), {
			protocols: ["gitinsight.v1", `bearer.${token}`],
			headers: { origin: ORIGIN },
		});
		expect(s.response.headers.get("sec-websocket-protocol")).toBe("gitinsight.v1");
		await s.nextOf("welcome");
		s.close();
	});

	it("answers the JSON heartbeat without waking the hub (auto-response)", async () => {
		const s = await TestSocket.open(repoStream(repo(2)), { token });
		await s.nextOf("welcome");
		s.send('{"type":"ping"}');
		expect(await s.nextOf("pong")).toEqual({ type: "pong" });
		const stub = env.REPO_HUB.get(env.REPO_HUB.idFromName(repo(2)));
		const stamp = await runInDurableObject(stub, (_hub, state) => {
			const [ws] = state.getWebSockets();
			return ws ? state.getWebSocketAutoResponseTimestamp(ws) : null;
		});
		expect(stamp).toBeInstanceOf(Date);
		s.send({ type: "ping", id: "p1" });
		expect(await s.nextOf("pong")).toMatchObject({ id: "p1", seq: expect.any(Number) });
		s.close();
	});
});

describe("refusals before the upgrade", () => {
	it("answers a plain GET with 426 in the error envelope", async () => {
		for (const path of [repoStream(repo(0)), GLOBAL]) {
			const res = await call(path, { token });
			expect(res.status).toBe(426);
			expect(res.headers.get("upgrade")).toBe("websocket");
			expect((await errorBody(res)).code).toBe("upgrade_required");
		}
	});

	it("answers 401 without a credential and for a bad token", async () => {
		const none = await upgrade(repoStream(repo(0)));
		expect(none.status).toBe(401);
		expect(none.headers.get("www-authenticate")).toContain("Bearer");
		expect((await errorBody(none)).code).toBe("unauthorized");
		const forged = await hs256Token({ sub: "x" }, { secret: "not-the-secret-not-the-secret-not-the-secret" });
		expect(
			(await upgrade(repoStream(repo(0)), { protocols: ["gitinsight.v1", `bearer.${forged}`] })).status,
		).toBe(401);
		const expired = await hs256Token({ sub: "x" }, { ttl: Math.floor(Date.now() / 1000) - 120 });
		expect((await upgrade(repoStream(repo(0)), { token: expired })).status).toBe(401);
	});

	it("refuses a token in the URL", async () => {
		const res = await upgrade(repoStream(repo(0), `?token=${token}`));
		expect(res.status).toBe(400);
		expect((await errorBody(res)).message).toContain("ticket");
	});

	it("checks Origin against CORS_ORIGINS; no Origin (a non-browser client) is allowed", async () => {
		const evil = { origin: "https://evil.example" };
		const bad = await upgrade(repoStream(repo(0)), { token, headers: evil });
		expect(bad.status).toBe(403);
		expect((await errorBody(bad)).code).toBe("forbidden");
		expect((await upgrade(GLOBAL, { headers: evil })).status).toBe(403);
		expect((await upgrade(GLOBAL, { headers: { origin: "null" } })).status).toBe(403);
		const good = await TestSocket.open(GLOBAL, { headers: { origin: ORIGIN } });
		good.close();
		const noOrigin = await TestSocket.open(repoStream(repo(0)), { token });
		noOrigin.close();
	});

	it("needs gitinsight.v1 among offered subprotocols", async () => {
		const res = await upgrade(repoStream(repo(0)), { protocols: [`bearer.${token}`] });
		expect(res.status).toBe(400);
		expect((await errorBody(res)).message).toContain("gitinsight.v1");
	});

	it("answers 400 for a bad id or query, 404 for an unknown repository", async () => {
		expect((await upgrade(repoStream("not-a-uuid"), { token })).status).toBe(400);
		for (const q of ["?since=-1", "?since=abc", "?types=bogus", "?types=a,b,c,d,e,f,g,h,i"]) {
			const res = await upgrade(repoStream(repo(0), q), { token });
			expect(res.status, q).toBe(400);
			expect((await errorBody(res)).code).toBe("invalid_parameter");
		}
		const missing = await upgrade(repoStream("00000000-0000-0000-0000-00000000abcd"), { token });
		expect(missing.status).toBe(404);
	});
});

describe("tickets", () => {
	async function ticketFor(id: string, bearer = token) {
		const res = await call("/api/v1/stream/tickets", {
			method: "POST",
			token: bearer,
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ repository_id: id }),
		});
		expect(res.status).toBe(201);
		return (await res.json()) as { ticket: string; url: string; expires_in: number; expires_at: string };
	}

	it("issues a 60 s ticket that opens the stream once", async () => {
		const t = await ticketFor(repo(3));
		expect(t.expires_in).toBe(60);
		expect(t.url).toBe(repoStream(repo(3), `?ticket=${t.ticket}`));
		const s = await TestSocket.open(t.url, { headers: { origin: ORIGIN } });
		expect(await s.nextOf("welcome")).toMatchObject({ repository_id: repo(3) });
		const again = await upgrade(t.url);
		expect(again.status).toBe(401);
		expect((await errorBody(again)).message).toContain("already used");
		s.close();
	});

	it("refuses a ticket for another repository (403), an expired or forged one (401)", async () => {
		const t = await ticketFor(repo(4));
		const other = await upgrade(repoStream(repo(5), `?ticket=${t.ticket}`));
		expect(other.status).toBe(403);
		const now = Math.floor(Date.now() / 1000);
		const sign = (secret: string, exp: number) =>
			new SignJWT({ roles: ["user"], tgt: `repository:${repo(4)}` })
				.setProtectedHeader({ alg: "HS256", typ: "gi-stream-ticket+jwt" })
				.setIssuer(ISSUER)
				.setAudience(`${AUDIENCE}#stream-ticket`)
				.setSubject("someone")
				.setJti(crypto.randomUUID())
				.setIssuedAt(now - 120)
				.setExpirationTime(exp)
				.sign(new TextEncoder().encode(secret));
		const expired = await upgrade(
			repoStream(repo(4), `?ticket=${await sign(inject("jwtSecret"), now - 60)}`),
		);
		expect(expired.status).toBe(401);
		expect((await errorBody(expired)).message).toBe("ticket expired");
		const forged = await sign("x".repeat(40), now + 60);
		expect((await upgrade(repoStream(repo(4), `?ticket=${forged}`))).status).toBe(401);
	});

	it("keeps tickets and bearer tokens apart", async () => {
		const t = await ticketFor(repo(6));
		expect((await call("/api/v1/me", { token: t.ticket })).status).toBe(401);
		expect((await upgrade(repoStream(repo(6), `?ticket=${token}`))).status).toBe(401);
	});

	it("needs authentication and a JSON body", async () => {
		const post = (init: RequestInit & { token?: string }) =>
			call("/api/v1/stream/tickets", { method: "POST", ...init });
		expect((await post({ body: "{}" })).status).toBe(401);
		expect(
			(await post({ token, body: "repository_id=x", headers: { "content-type": "text/plain" } })).status,
		).toBe(415);
		const bad = await post({
			token,
			body: '{"repository_id":"nope"}',
			headers: { "content-type": "application/json" },
		});
		expect(bad.status).toBe(400);
		expect((await errorBody(bad)).details?.[0]?.parameter).toBe("repository_id");
	});
});

describe("client frames", () => {
	it("answers invalid and unknown commands with an error frame and keeps the socket", async () => {
		const s = await TestSocket.open(repoStream(repo(7)), { token });
		await s.nextOf("welcome");
		const cases: [string | ArrayBuffer, string][] = [
			["not json", "invalid_json"],
			["[1,2]", "invalid_message"],
			['{"type":"dance","id":"d1"}', "unknown_command"],
			['{"type":"subscribe","events":["nope"]}', "invalid_message"],
			['{"type":"resume","since":-4}', "invalid_message"],
			[new TextEncoder().encode("binary").buffer as ArrayBuffer, "unsupported_data"],
		];
		for (const [frame, code] of cases) {
			s.ws.send(frame);
			expect(await s.nextOf("error"), String(frame)).toMatchObject({ code });
		}
		s.send({ type: "dance", id: "d2" });
		expect(await s.nextOf("error")).toMatchObject({ id: "d2", code: "unknown_command" });
		s.send({ type: "ping", id: 9 });
		expect(await s.nextOf("pong")).toMatchObject({ id: 9 });
		await postEvent({ type: "insight_added", repository_id: repo(7), data: {} });
		expect(await s.next((m) => m.type === "insight_added")).toBeTruthy();
		s.close();
	});

	it("closes an oversized frame with 1009 and keeps serving the others", async () => {
		const big = await TestSocket.open(repoStream(repo(8)), { token });
		const other = await TestSocket.open(repoStream(repo(8)), { token });
		await big.nextOf("welcome");
		await other.nextOf("welcome");
		big.send({ type: "ping", pad: "x".repeat(5000) });
		expect(await big.closed).toMatchObject({ code: 1009 });
		await postEvent({ type: "analysis_started", repository_id: repo(8), data: {} });
		expect(await other.next((m) => m.type === "analysis_started")).toBeTruthy();
		other.close();
	});

	it("closes a flooding client with 1008 and keeps serving the others", async () => {
		const flood = await TestSocket.open(repoStream(repo(9)), { token });
		const calm = await TestSocket.open(repoStream(repo(9)), { token });
		await flood.nextOf("welcome");
		await calm.nextOf("welcome");
		for (let i = 0; i < 60; i++) flood.send({ type: "ping", id: i });
		expect(await flood.closed).toMatchObject({ code: 1008 });
		expect(flood.frames.filter((m) => m.type === "pong").length).toBeLessThanOrEqual(21);
		calm.send({ type: "ping", id: "calm" });
		expect(await calm.nextOf("pong")).toMatchObject({ id: "calm" });
		await settle(50);
		calm.close();
	});
});

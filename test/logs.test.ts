// The access log: one JSON line per request with the request id, route pattern, status and
// timing; never the raw path, query string, tokens or bodies.
import { afterEach, describe, expect, it, vi } from "vitest";
import { call, hs256Token } from "./helpers";

afterEach(() => vi.restoreAllMocks());

function requestLines(spy: { mock: { calls: unknown[][] } }): Record<string, unknown>[] {
	return (
		spy.mock.calls
			.map((args) => args[0])
			.filter((line): line is Record<string, unknown> => typeof line === "object" && line !== null)
			.filter((line) => line.msg === "request")
			// What Workers Logs receives: the object serialised as JSON.
			.map((line) => JSON.parse(JSON.stringify(line)) as Record<string, unknown>)
	);
}

describe("access log", () => {
	it("writes one structured line per request, with the id it echoes and the route pattern", async () => {
		const spy = vi.spyOn(console, "log");
		const token = await hs256Token({ sub: "log-test-subject" });
		const secretish = "ticket=abc.def.ghi&api_key=hunter2";
		const res = await call(`/api/v1/fast/repositories/not-a-uuid-7f3a/summary?${secretish}`, {
			token,
			headers: { "x-request-id": "req-logs-0001" },
		});
		expect(res.status).toBe(400);
		expect(res.headers.get("x-request-id")).toBe("req-logs-0001");
		const lines = requestLines(spy);
		expect(lines).toHaveLength(1);
		const [line] = lines;
		expect(line).toMatchObject({
			level: "warn",
			msg: "request",
			request_id: "req-logs-0001",
			method: "GET",
			route: "/api/v1/fast/repositories/:repo_id/summary",
			status: 400,
			error_code: "invalid_parameter",
		});
		expect(typeof line?.duration_ms).toBe("number");
		const text = JSON.stringify(spy.mock.calls);
		for (const leak of ["not-a-uuid-7f3a", "hunter2", "abc.def.ghi", token, "log-test-subject", "Bearer"]) {
			expect(text).not.toContain(leak);
		}
	});

	it("logs successes at info with the cache result, and unknown paths as unmatched", async () => {
		const spy = vi.spyOn(console, "log");
		await (await call("/api/v1/fast/leaderboard?category=popular")).arrayBuffer();
		await (await call("/nothing/here/12345")).arrayBuffer();
		const [ok, missing] = requestLines(spy);
		expect(ok).toMatchObject({
			level: "info",
			route: "/api/v1/fast/leaderboard",
			status: 200,
			caller: "anonymous",
		});
		expect(["hit", "miss", "stale"]).toContain(ok?.cache);
		expect(missing).toMatchObject({ route: "unmatched", status: 404, error_code: "not_found" });
		expect(JSON.stringify(missing)).not.toContain("12345");
	});
});

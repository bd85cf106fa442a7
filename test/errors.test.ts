// The one error envelope: unknown routes, request ids, and no 500 for bad input.
import { describe, expect, it } from "vitest";
import { call, errorBody, hs256Token } from "./helpers";

describe("error envelope", () => {
	it("answers unknown routes with 404 in the envelope", async () => {
		const res = await call("/no/such/route?x=1");
		expect(res.status).toBe(404);
		expect(res.headers.get("content-type")).toMatch(/^application\/json/);
		const err = await errorBody(res);
		expect(err).toMatchObject({ code: "not_found" });
		expect(err.request_id).toMatch(/^[0-9a-f-]{36}$/);
		expect(res.headers.get("x-request-id")).toBe(err.request_id);
	});

	it("keeps a well-formed incoming X-Request-Id and replaces a hostile one", async () => {
		const kept = await call("/nope", { headers: { "x-request-id": "trace-abc.123:xyz" } });
		expect(kept.headers.get("x-request-id")).toBe("trace-abc.123:xyz");
		expect((await errorBody(kept)).request_id).toBe("trace-abc.123:xyz");
		const replaced = await call("/nope", { headers: { "x-request-id": "<script>alert(1)</script>" } });
		expect(replaced.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
	});

	it.each([
		["a lone percent", "/%"],
		["a truncated escape", "/api/v1/%E0%A4%A"],
		["an 8,000-character segment", `/${"a".repeat(8000)}`],
		["dot segments", "/api/v1/me/../admin/config"],
		["a NUL byte", "/health/%00"],
		["an emoji and control characters", "/api/v1/%F0%9F%92%A9?q=%00%01"],
	])("never answers 5xx for a strange path: %s", async (_name, path) => {
		const res = await call(path);
		expect(res.status).toBeGreaterThanOrEqual(400);
		expect(res.status).toBeLessThan(500);
		expect((await errorBody(res)).code).toBeTypeOf("string");
	});
});

describe("methods", () => {
	it("answers 405 with Allow for a path that exists with other methods", async () => {
		for (const [method, path, allow] of [
			["DELETE", "/health", "GET, HEAD, OPTIONS"],
			["POST", "/api/v1/fast/search?q=x", "GET, HEAD, OPTIONS"],
			["PUT", "/api/v1/fast/repositories/3f7e2d1c-0000-4000-8000-000000000000/summary", "GET, HEAD, OPTIONS"],
			["GET", "/api/v1/events", "OPTIONS, POST"],
			["GET", "/api/v1/events/batch", "OPTIONS, POST"],
		] as const) {
			// Protected paths check the token and role first (401/403), then the method.
			const role = path.startsWith("/api/v1/events") ? "service" : "user";
			const res = await call(path, { method, token: await hs256Token({ role }) });
			expect(res.status, `${method} ${path}`).toBe(405);
			expect(res.headers.get("allow")).toBe(allow);
			const error = await errorBody(res);
			expect(error.code).toBe("method_not_allowed");
			expect(error.request_id).toBe(res.headers.get("x-request-id"));
		}
	});

	it("keeps 404 for paths no method has", async () => {
		const res = await call("/api/v1/nothing-here", { method: "DELETE" });
		expect(res.status).toBe(404);
		expect(res.headers.get("allow")).toBeNull();
		expect((await errorBody(res)).code).toBe("not_found");
	});
});

describe("repeated query parameters", () => {
	it.each([
		["search", "/api/v1/fast/search?q=rust&limit=1&limit=100", "limit", "user"],
		["search (q)", "/api/v1/fast/search?q=rust&q=go", "q", "user"],
		["leaderboard", "/api/v1/fast/leaderboard?category=popular&category=trending", "category", "user"],
		["stream", "/api/v1/stream/global/activity?since=1&since=2", "since", "user"],
	])("are refused with 400 naming them, not guessed: %s", async (_name, path, parameter, role) => {
		const res = await call(path, {
			token: await hs256Token({ role }),
			headers: path.includes("/stream/") ? { upgrade: "websocket" } : {},
		});
		expect(res.status).toBe(400);
		const error = await errorBody(res);
		expect(error.code).toBe("invalid_parameter");
		expect(error.message).toBe(`query parameter given more than once: ${parameter}`);
		expect(error.details).toEqual([{ parameter, message: "given more than once" }]);
	});

	it("still take one of each, in any order, with unknown extras ignored as before", async () => {
		const res = await call("/api/v1/fast/search?limit=2&q=rust&utm_source=x", {
			token: await hs256Token({ role: "user" }),
		});
		expect(res.status).toBe(200);
		await res.body?.cancel();
	});
});

// CORS through the real Worker: allowed origins get the headers (simple requests and
// preflights), others get none, and the WebSocket Origin check uses the same list.
import { describe, expect, it } from "vitest";
import { call, errorBody } from "./helpers";

const ALLOWED = "http://localhost:8787"; // wrangler.toml CORS_ORIGINS
const OTHER = "https://evil.example";

describe("CORS", () => {
	it("answers a preflight from an allowed origin with 204 and the allowed methods and headers", async () => {
		const res = await call("/api/v1/fast/search?q=x", {
			method: "OPTIONS",
			headers: {
				origin: ALLOWED,
				"access-control-request-method": "GET",
				"access-control-request-headers": "authorization, if-none-match",
			},
		});
		expect(res.status).toBe(204);
		expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
		expect(res.headers.get("access-control-allow-methods")).toContain("GET");
		expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
		expect(res.headers.get("access-control-max-age")).toBe("600");
		expect(res.headers.get("access-control-allow-credentials")).toBeNull();
		expect(res.headers.get("vary")).toMatch(/origin/i);
	});

	it("gives a preflight from another origin no allow headers", async () => {
		const res = await call("/api/v1/fast/search?q=x", {
			method: "OPTIONS",
			headers: { origin: OTHER, "access-control-request-method": "GET" },
		});
		expect(res.headers.get("access-control-allow-origin")).toBeNull();
	});

	it("adds the allow and expose headers to answers for an allowed origin, errors included", async () => {
		const ok = await call("/api/v1/fast/leaderboard", { headers: { origin: ALLOWED } });
		expect(ok.status).toBe(200);
		expect(ok.headers.get("access-control-allow-origin")).toBe(ALLOWED);
		const exposed = ok.headers.get("access-control-expose-headers")?.toLowerCase() ?? "";
		for (const h of ["x-request-id", "x-cache", "retry-after", "ratelimit-remaining", "etag"]) {
			expect(exposed).toContain(h);
		}
		await ok.body?.cancel();

		const err = await call("/api/v1/fast/repositories/not-a-number/summary", {
			headers: { origin: ALLOWED },
		});
		expect(err.status).toBeGreaterThanOrEqual(400);
		expect(err.headers.get("access-control-allow-origin")).toBe(ALLOWED);
		expect((await errorBody(err)).request_id).toBe(err.headers.get("x-request-id"));
	});

	it("adds nothing for another origin, and still answers (CORS is the browser's check)", async () => {
		const res = await call("/api/v1/fast/leaderboard", { headers: { origin: OTHER } });
		expect(res.status).toBe(200);
		expect(res.headers.get("access-control-allow-origin")).toBeNull();
		await res.body?.cancel();
	});

	it("refuses a WebSocket upgrade from an origin outside the list with 403", async () => {
		const res = await call("/api/v1/stream/global/activity", {
			headers: { origin: OTHER, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" },
		});
		expect(res.status).toBe(403);
		expect((await errorBody(res)).code).toBe("forbidden");
	});
});

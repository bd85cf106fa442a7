// JWT authentication and role checks through the real Worker entry point.
import { SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { AUDIENCE, call, errorBody, hs256Token, ISSUER, idpToken } from "./helpers";

const ME = "/api/v1/me";
const ADMIN = "/api/v1/admin/config";

async function expect401(res: Response, description?: string) {
	expect(res.status).toBe(401);
	expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="gitinsight-edge"/);
	const err = await errorBody(res);
	expect(err.code).toBe("unauthorized");
	expect(err.request_id).toBe(res.headers.get("x-request-id"));
	if (description) expect(err.message).toBe(description);
}

describe("authentication", () => {
	it("answers 401 with a bare challenge when no token is sent", async () => {
		const res = await call(ME);
		await expect401(res, "authentication required");
		expect(res.headers.get("www-authenticate")).toBe('Bearer realm="gitinsight-edge"');
	});

	it("accepts a valid HS256 token and exposes the principal", async () => {
		const res = await call(ME, { token: await hs256Token({ sub: "alice", role: "user" }) });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ sub: "alice", roles: ["user"], verified_with: "hs256" });
	});

	it.each(["RS256", "ES256", "EdDSA"] as const)(
		"accepts a %s token verified against the JWKS",
		async (alg) => {
			const res = await call(ME, { token: await idpToken(alg, { roles: ["user", "admin"] }) });
			expect(res.status).toBe(200);
			expect(await res.json()).toEqual({
				sub: `idp-${alg}`,
				roles: ["user", "admin"],
				verified_with: "jwks",
			});
		},
	);

	it("rejects an expired token beyond the clock tolerance", async () => {
		const res = await call(ME, { token: await hs256Token({}, { ttl: Math.floor(Date.now() / 1000) - 120 }) });
		await expect401(res, "token expired");
		expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
	});

	it("tolerates a small clock skew on exp and nbf", async () => {
		const now = Math.floor(Date.now() / 1000);
		const token = await hs256Token({ nbf: now + 10 }, { ttl: now + 60 });
		expect((await call(ME, { token })).status).toBe(200);
		const justExpired = await hs256Token({}, { ttl: now - 10 });
		expect((await call(ME, { token: justExpired })).status).toBe(200);
	});

	it("rejects a token that is not yet valid", async () => {
		const token = await hs256Token({ nbf: Math.floor(Date.now() / 1000) + 600 });
		await expect401(await call(ME, { token }), "token not yet valid");
	});

	it("rejects a wrong issuer or audience", async () => {
		const secret = new TextEncoder().encode((await import("vitest")).inject("jwtSecret"));
		const sign = (iss: string, aud: string) =>
			new SignJWT({ role: "user" })
				.setProtectedHeader({ alg: "HS256" })
				.setIssuer(iss)
				.setAudience(aud)
				.setSubject("x")
				.setExpirationTime("5m")
				.sign(secret);
		await expect401(
			await call(ME, { token: await sign("https://evil.example", AUDIENCE) }),
			"token claim 'iss' is invalid",
		);
		await expect401(
			await call(ME, { token: await sign(ISSUER, "other-api") }),
			"token claim 'aud' is invalid",
		);
	});

	it("rejects a token signed with another secret, and a tampered payload", async () => {
		const forged = await hs256Token({ role: "admin" }, { secret: "x".repeat(40) });
		await expect401(await call(ADMIN, { token: forged }), "token signature is invalid");

		const [header, , signature] = (await hs256Token({ role: "user" })).split(".");
		const payload = btoa(
			JSON.stringify({ role: "admin", sub: "mallory", iss: ISSUER, aud: AUDIENCE, exp: 9e9 }),
		)
			.replaceAll("=", "")
			.replaceAll("+", "-")
			.replaceAll("/", "_");
		await expect401(
			await call(ADMIN, { token: `${header}.${payload}.${signature}` }),
			"token signature is invalid",
		);
	});

	it("rejects alg=none", async () => {
		const token = new UnsecuredJWT({ role: "admin" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject("x")
			.encode();
		await expect401(await call(ADMIN, { token }), "token algorithm is not allowed");
	});

	it("rejects tokens without exp or sub", async () => {
		const secret = new TextEncoder().encode((await import("vitest")).inject("jwtSecret"));
		const noExp = await new SignJWT({ role: "user" })
			.setProtectedHeader({ alg: "HS256" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject("x")
			.sign(secret);
		await expect401(await call(ME, { token: noExp }), "token has no expiry");
		const noSub = await new SignJWT({ role: "user" })
			.setProtectedHeader({ alg: "HS256" })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setExpirationTime("5m")
			.sign(secret);
		await expect401(await call(ME, { token: noSub }), "token has no subject");
	});

	it.each([
		["garbage", "Bearer not-a-jwt"],
		["three empty parts", "Bearer .."],
		["a non-bearer scheme", "Basic dXNlcjpwYXNz"],
		["an empty bearer", "Bearer "],
		["control characters", "Bearer a\tb"],
		["a huge token", `Bearer ${"a".repeat(6000)}.${"b".repeat(6000)}.c`],
	])("rejects %s with 401, never 500", async (_name, header) => {
		const res = await call(ME, { headers: { authorization: header } });
		await expect401(res);
	});

	it("rejects an asymmetric token whose kid is unknown", async () => {
		const token = await idpToken("ES256");
		const [h, p, s] = token.split(".");
		const header = JSON.parse(atob(h ?? "")) as Record<string, string>;
		const other = btoa(JSON.stringify({ ...header, kid: "unknown-kid" })).replaceAll("=", "");
		await expect401(await call(ME, { token: `${other}.${p}.${s}` }));
	});
});

describe("roles", () => {
	it("gives 403 with an insufficient_scope challenge when the role does not match", async () => {
		const res = await call(ADMIN, { token: await hs256Token({ role: "user" }) });
		expect(res.status).toBe(403);
		expect(res.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
		const err = await errorBody(res);
		expect(err.code).toBe("forbidden");
		expect(err.message).toContain("admin");
	});

	it("lets an admin through", async () => {
		const res = await call(ADMIN, { token: await hs256Token({ role: "admin", sub: "root" }) });
		expect(res.status).toBe(200);
		const body = (await res.json()) as {
			auth: { hs256: boolean; jwks: boolean };
			redis: { configured: boolean };
		};
		expect(body.auth).toMatchObject({ hs256: true, jwks: true });
		expect(body.redis.configured).toBe(true);
		expect(JSON.stringify(body)).not.toMatch(/secret|token|password/i);
	});

	it("ignores unknown role names and treats a token without roles as a user", async () => {
		const res = await call(ME, {
			token: await hs256Token({ role: undefined, roles: ["superuser", "service"] }),
		});
		expect(await res.json()).toMatchObject({ roles: ["service"] });
		const plain = await call(ADMIN, { token: await hs256Token({ role: "superuser" }) });
		expect(plain.status).toBe(403);
	});
});

describe("verified-token memo", () => {
	it("never carries a verification over to another configuration", async () => {
		const { env } = await import("cloudflare:workers");
		const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
		const worker = (await import("../src/index")).default;
		const token = await hs256Token({ sub: "memo" });
		expect((await call(ME, { token })).status).toBe(200);
		expect((await call(ME, { token })).status).toBe(200);
		const ctx = createExecutionContext();
		const res = await worker.fetch(
			new Request(`http://gitinsight.test${ME}`, { headers: { authorization: `Bearer ${token}` } }),
			{ ...env, JWT_SECRET: "another-secret-of-at-least-thirty-two-chars" },
			ctx,
		);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(401);
	});
});

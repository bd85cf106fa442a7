// Shared test helpers: signing tokens the way real issuers do, and calling the Worker through
// its real entry point (exports.default.fetch runs the full middleware stack inside workerd).
import { exports } from "cloudflare:workers";
import { importJWK, type JWTPayload, SignJWT } from "jose";
import { inject } from "vitest";
import type { ErrorBody } from "../src/errors";

export const ISSUER = "https://auth.gitinsight.dev";
export const AUDIENCE = "gitinsight-edge";

export type Claims = JWTPayload & { role?: string; roles?: string[] };

/** A token as `npm run token` issues it: HS256, iss/aud/sub/exp set. */
export async function hs256Token(claims: Claims = {}, opts: { secret?: string; ttl?: string | number } = {}) {
	const secret = new TextEncoder().encode(opts.secret ?? inject("jwtSecret"));
	return new SignJWT({ role: "user", ...claims })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setIssuer(ISSUER)
		.setAudience(AUDIENCE)
		.setSubject(claims.sub ?? "test-user")
		.setIssuedAt()
		.setExpirationTime(opts.ttl ?? "5m")
		.sign(secret);
}

/** A token from the test identity provider, whose public keys the JWKS stand-in serves. */
export async function idpToken(alg: "RS256" | "ES256" | "EdDSA", claims: Claims = {}) {
	const jwk = inject("jwksPrivateKeys")[alg];
	const key = await importJWK(jwk, alg);
	return new SignJWT({ role: "user", ...claims })
		.setProtectedHeader({ alg, kid: jwk.kid, typ: "JWT" })
		.setIssuer(ISSUER)
		.setAudience(AUDIENCE)
		.setSubject(claims.sub ?? `idp-${alg}`)
		.setIssuedAt()
		.setExpirationTime("5m")
		.sign(key);
}

export function call(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
	const headers = new Headers(init.headers);
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	return exports.default.fetch(new Request(`http://gitinsight.test${path}`, { ...init, headers }));
}

export async function errorBody(res: Response): Promise<ErrorBody["error"]> {
	const body = (await res.json()) as ErrorBody;
	return body.error;
}

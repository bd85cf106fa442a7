// Bearer JWT authentication (jose) and role checks.
//   HS256 tokens are verified with JWT_SECRET, or JWT_SECRET_PREVIOUS during a rotation
//   (src/middleware/hs256.ts; services, local tools); RS256/ES256/EdDSA tokens
//   with the identity provider's JWKS at JWT_JWKS_URL. The algorithm list is fixed per key type,
//   so an HS256 token can never be checked against a public key (key confusion), and "none" is
//   never accepted. iss, aud, exp and nbf are checked with a small clock tolerance.
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from "jose";
import type { AppEnv, Config } from "../env";
import { ApiError } from "../errors";
import { verifyHs256 } from "./hs256";
import { jwksFor } from "./jwks";

export const ROLES = ["user", "admin", "service"] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
	sub: string;
	roles: Role[];
	/** How the token was verified. */
	via: "hs256" | "jwks";
}

const ASYMMETRIC_ALGS = ["RS256", "ES256", "EdDSA"];
const CLOCK_TOLERANCE_S = 30;
/** The longest a token may be valid for (exp − iat): 30 days. */
export const MAX_TOKEN_LIFETIME_S = 30 * 86_400;
const REALM = 'Bearer realm="gitinsight-edge"';

function unauthorized(description: string): ApiError {
	return new ApiError("unauthorized", description, {
		headers: { "WWW-Authenticate": `${REALM}, error="invalid_token", error_description="${description}"` },
	});
}

function rolesOf(payload: JWTPayload): Role[] {
	const raw = Array.isArray(payload.roles)
		? payload.roles
		: payload.role !== undefined
			? [payload.role]
			: ["user"];
	return ROLES.filter((r) => raw.includes(r));
}

function describe(err: unknown): ApiError {
	if (err instanceof errors.JWTExpired) return unauthorized("token expired");
	if (err instanceof errors.JWTClaimValidationFailed) {
		return unauthorized(
			err.claim === "nbf" ? "token not yet valid" : `token claim '${err.claim}' is invalid`,
		);
	}
	if (err instanceof errors.JWKSTimeout || (err instanceof TypeError && !(err instanceof errors.JOSEError))) {
		// The identity provider is unreachable: not the caller's fault.
		return new ApiError("service_unavailable", "token keys are temporarily unavailable", {
			headers: { "Retry-After": "5" },
		});
	}
	if (err instanceof errors.JWSSignatureVerificationFailed) return unauthorized("token signature is invalid");
	if (err instanceof errors.JWKSNoMatchingKey) return unauthorized("no key matches the token");
	if (err instanceof errors.JOSEAlgNotAllowed) return unauthorized("token algorithm is not allowed");
	return unauthorized("token is malformed");
}

// Isolate-scoped memo of tokens already verified, per parsed config (so a token is never
// accepted under a configuration other than the one that verified it). An entry lives until
// the token's exp, at most VERIFIED_TTL_MS. This spares the signature check on every request of
// a client that reuses its token. A refusal (401) is remembered for REFUSED_TTL_MS, so a client
// that repeats a bad token (and the limiter and the cache options, which each look at it) costs
// one check, not one per look; 503s (keys unavailable) are never remembered.
const VERIFIED_TTL_MS = 60_000;
const REFUSED_TTL_MS = 10_000;
const VERIFIED_MAX = 10_000;
type Verified = { principal: Principal; until: number } | { refused: ApiError; until: number };
const verified = new WeakMap<Config, Map<string, Verified>>();

/** Verifies a compact JWS and returns its principal; throws ApiError (401/503). */
export async function verifyToken(token: string, config: Config): Promise<Principal> {
	const now = Date.now();
	let memo = verified.get(config);
	if (!memo) {
		memo = new Map();
		verified.set(config, memo);
	}
	const hit = memo.get(token);
	if (hit && hit.until > now) {
		if ("refused" in hit) throw hit.refused;
		return hit.principal;
	}
	if (memo.size >= VERIFIED_MAX) memo.clear();
	try {
		const { principal, expMs } = await verifySignature(token, config);
		memo.set(token, { principal, until: Math.min(expMs, now + VERIFIED_TTL_MS) });
		return principal;
	} catch (err) {
		if (err instanceof ApiError && err.code === "unauthorized") {
			memo.set(token, { refused: err, until: now + REFUSED_TTL_MS });
		}
		throw err;
	}
}

async function verifySignature(
	token: string,
	config: Config,
): Promise<{ principal: Principal; expMs: number }> {
	let alg: string | undefined;
	let kid: string | undefined;
	try {
		({ alg, kid } = decodeProtectedHeader(token));
	} catch {
		throw unauthorized("token is malformed");
	}
	const common = {
		issuer: config.JWT_ISSUER,
		audience: config.JWT_AUDIENCE,
		clockTolerance: CLOCK_TOLERANCE_S,
	};
	let payload: JWTPayload;
	let via: Principal["via"];
	try {
		if (alg === "HS256" && config.JWT_SECRET) {
			({ payload } = await verifyHs256(token, config, kid, common));
			via = "hs256";
		} else if (alg && ASYMMETRIC_ALGS.includes(alg) && config.JWT_JWKS_URL) {
			({ payload } = await jwtVerify(token, jwksFor(config.JWT_JWKS_URL), {
				...common,
				algorithms: ASYMMETRIC_ALGS,
			}));
			via = "jwks";
		} else {
			throw unauthorized("token algorithm is not allowed");
		}
	} catch (err) {
		throw err instanceof ApiError ? err : describe(err);
	}
	if (typeof payload.exp !== "number") throw unauthorized("token has no expiry");
	// A token is good for at most MAX_TOKEN_LIFETIME_S from when it was issued (from now when it
	// does not say): a leaked token with an exp years away would otherwise work for years.
	// (An iat in the future does not lengthen it: the lifetime counts from now at the latest.)
	const nowS = Date.now() / 1000;
	const issuedAt = typeof payload.iat === "number" ? Math.min(payload.iat, nowS) : nowS;
	if (payload.exp - issuedAt > MAX_TOKEN_LIFETIME_S + CLOCK_TOLERANCE_S) {
		throw unauthorized(`token lifetime exceeds ${MAX_TOKEN_LIFETIME_S / 86_400} days`);
	}
	if (typeof payload.sub !== "string" || payload.sub === "") throw unauthorized("token has no subject");
	return { principal: { sub: payload.sub, roles: rolesOf(payload), via }, expMs: payload.exp * 1000 };
}

export function bearerToken(c: Context<AppEnv>): string | undefined {
	const header = c.req.header("authorization");
	if (!header) return undefined;
	const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
	if (!match?.[1]) throw unauthorized("authorization header must be 'Bearer <token>'");
	return match[1];
}

/** Requires a valid token whose roles include one of `allowed`; sets c.get("principal"). */
export function requireRole(...allowed: Role[]) {
	return createMiddleware<AppEnv>(async (c, next) => {
		const token = bearerToken(c);
		if (!token) {
			throw new ApiError("unauthorized", "authentication required", {
				headers: { "WWW-Authenticate": REALM },
			});
		}
		const principal = await verifyToken(token, c.get("deps").config);
		if (!principal.roles.some((r) => allowed.includes(r))) {
			throw new ApiError("forbidden", `this endpoint requires the ${allowed.join(" or ")} role`, {
				headers: { "WWW-Authenticate": `${REALM}, error="insufficient_scope"` },
			});
		}
		c.set("principal", principal);
		await next();
	});
}

/**
 * Whether the caller holds an admin or service token (already verified by requireRole, else
 * verified here, memoised; an invalid token counts as none). Such callers get their
 * Cache-Control to the letter (readOptionsOf).
 */
export async function privilegedCaller(c: Context<AppEnv>): Promise<boolean> {
	let principal: Principal | undefined = c.get("principal");
	if (!principal) {
		try {
			const token = bearerToken(c);
			principal = token ? await verifyToken(token, c.get("deps").config) : undefined;
		} catch {
			principal = undefined;
		}
	}
	return principal?.roles.some((r) => r === "admin" || r === "service") ?? false;
}

/** Any authenticated caller. */
export const requireAuth = () => requireRole(...ROLES);

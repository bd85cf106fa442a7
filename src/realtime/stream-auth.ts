// Who may open a stream, decided before the upgrade. Browsers cannot set Authorization on a
// WebSocket, so a token also arrives as a subprotocol (`bearer.<jwt>` next to `gitinsight.v1`;
// only `gitinsight.v1` is echoed) or as a short-lived ticket in the query string: an HS256 JWT
// this service signs (typ gi-stream-ticket+jwt, its own audience so it is never a bearer
// token and a bearer token is never a ticket), bound to the caller's sub and one stream, valid
// 60 s and single-use (the target hub records its jti). Long-lived tokens in URLs are refused.
import type { Context } from "hono";
import { decodeProtectedHeader, errors, type JWTPayload, SignJWT } from "jose";
import type { AppEnv, Config } from "../env";
import { ApiError } from "../errors";
import { bearerToken, type Principal, ROLES, type Role, verifyToken } from "../middleware/auth";
import { signingKey, verifyHs256 } from "../middleware/hs256";
import { LIMITS, SUBPROTOCOL } from "./protocol";

const TICKET_TYP = "gi-stream-ticket+jwt";
/** Clock skew a ticket's exp is allowed; its used-ticket row must outlive exp by as much. */
const TICKET_CLOCK_TOLERANCE_S = 5;
const REALM = 'Bearer realm="gitinsight-edge"';
const URL_TOKEN_PARAMS = ["token", "access_token", "jwt", "bearer", "authorization"];

export interface Ticket {
	ticket: string;
	expires_at: string;
}

export interface StreamCaller {
	principal: Principal;
	/** Set when a ticket was used: the hub must claim it (single use). */
	ticket?: { jti: string; expMs: number };
}

function notConfigured(): ApiError {
	return new ApiError("service_unavailable", "stream tickets are not configured", {
		headers: { "Retry-After": "60" },
	});
}

const ticketAudience = (config: Config) => `${config.JWT_AUDIENCE}#stream-ticket`;

export async function issueTicket(
	config: Config,
	principal: Principal,
	target: string,
	nowMs: number,
): Promise<Ticket> {
	const signing = await signingKey(config);
	if (!signing) throw notConfigured();
	const exp = Math.floor(nowMs / 1000) + LIMITS.ticketTtlSeconds;
	const ticket = await new SignJWT({ roles: principal.roles, tgt: target })
		.setProtectedHeader({ alg: "HS256", typ: TICKET_TYP, kid: signing.kid })
		.setIssuer(config.JWT_ISSUER)
		.setAudience(ticketAudience(config))
		.setSubject(principal.sub)
		.setJti(crypto.randomUUID())
		.setIssuedAt(Math.floor(nowMs / 1000))
		.setExpirationTime(exp)
		.sign(signing.secret);
	return { ticket, expires_at: new Date(exp * 1000).toISOString() };
}

function unauthorized(description: string): ApiError {
	return new ApiError("unauthorized", description, {
		headers: { "WWW-Authenticate": `${REALM}, error="invalid_token", error_description="${description}"` },
	});
}

async function verifyTicket(ticket: string, config: Config, target: string): Promise<StreamCaller> {
	if (!config.JWT_SECRET) throw notConfigured();
	let payload: JWTPayload;
	try {
		const { kid } = decodeProtectedHeader(ticket);
		({ payload } = await verifyHs256(ticket, config, kid, {
			typ: TICKET_TYP,
			issuer: config.JWT_ISSUER,
			audience: ticketAudience(config),
			clockTolerance: TICKET_CLOCK_TOLERANCE_S,
			requiredClaims: ["exp", "sub", "jti"],
		}));
	} catch (err) {
		if (err instanceof ApiError) throw err;
		throw unauthorized(err instanceof errors.JWTExpired ? "ticket expired" : "ticket is invalid");
	}
	if (payload.tgt !== target) {
		throw new ApiError("forbidden", "the ticket was issued for another stream", {
			headers: { "WWW-Authenticate": `${REALM}, error="insufficient_scope"` },
		});
	}
	const roles = Array.isArray(payload.roles)
		? ROLES.filter((r: Role) => (payload.roles as unknown[]).includes(r))
		: [];
	return {
		principal: { sub: String(payload.sub), roles, via: "hs256" },
		// Kept as used until the ticket cannot verify anywhere: exp plus the clock tolerance (and
		// a second of margin), so it cannot be presented again in the tolerance window.
		ticket: { jti: String(payload.jti), expMs: ((payload.exp ?? 0) + TICKET_CLOCK_TOLERANCE_S + 1) * 1000 },
	};
}

/** The subprotocols a client offered (Sec-WebSocket-Protocol, comma-separated). */
export function offeredProtocols(c: Context<AppEnv>): string[] {
	return (c.req.header("sec-websocket-protocol") ?? "")
		.split(",")
		.map((p) => p.trim())
		.filter(Boolean);
}

/** The subprotocol to echo (null when none was offered); 400 when ours is not among them. */
export function chooseProtocol(offered: string[]): string | null {
	if (offered.length === 0) return null;
	if (!offered.includes(SUBPROTOCOL)) {
		throw new ApiError("bad_request", `offer the '${SUBPROTOCOL}' subprotocol`);
	}
	return SUBPROTOCOL;
}

/** 403 for a browser Origin outside CORS_ORIGINS; requests without Origin are not browsers. */
export function checkOrigin(c: Context<AppEnv>): void {
	const origin = c.req.header("origin");
	if (origin !== undefined && !c.var.deps.config.CORS_ORIGINS.includes(origin)) {
		throw new ApiError("forbidden", "this origin may not open streams");
	}
}

/** 400 for a long-lived token in the URL (where it gets logged): checked before anything else. */
export function refuseUrlTokens(c: Context<AppEnv>): void {
	const url = new URL(c.req.url);
	if (URL_TOKEN_PARAMS.some((p) => url.searchParams.has(p))) {
		throw new ApiError(
			"bad_request",
			"tokens are not accepted in the URL: use a ticket (POST /api/v1/stream/tickets)",
		);
	}
}

/**
 * The caller of an authenticated stream: Authorization header (non-browser clients), else a
 * `bearer.<jwt>` subprotocol, else `?ticket=`. 401 without any. (The route has already refused a
 * token in the URL: refuseUrlTokens.)
 */
export async function streamCaller(
	c: Context<AppEnv>,
	target: string,
	offered: string[],
): Promise<StreamCaller> {
	const url = new URL(c.req.url);
	const config = c.var.deps.config;
	const token = bearerToken(c) ?? offered.find((p) => p.startsWith("bearer."))?.slice("bearer.".length);
	if (token) return { principal: await verifyToken(token, config) };
	const ticket = url.searchParams.get("ticket");
	if (ticket) return verifyTicket(ticket, config, target);
	throw new ApiError("unauthorized", "authentication required: a bearer.<token> subprotocol or a ticket", {
		headers: { "WWW-Authenticate": REALM },
	});
}

// JWT attacks against every kind of protected route, through the real Worker entry point.
// test/auth.test.ts covers the basics on /me and /admin (HS256 expiry and skew, iss/aud,
// another secret, an HS256 tampered payload, UnsecuredJWT, no exp/sub, a few garbage headers, an
// unknown ES256 kid); this suite extends them to the JWKS path and to the attacks that matter:
// alg none in its spellings, HS/RS key confusion with the IdP's public key material, embedded
// and foreign keys, algorithm swaps, tampered and stripped signatures, role escalation, stream
// tickets used as bearer tokens, and garbage. Every case, on the summary route, /me, the admin
// routes (config, system stats), events (service role) and a repository stream (Authorization
// and the bearer.<jwt> subprotocol): 401 (never 500, never 429: each request comes from its own
// client address), the error envelope with code "unauthorized", and a WWW-Authenticate challenge
// naming invalid_token. Past 400 lines on purpose: it is one table of attacks.
import {
	base64url,
	exportJWK,
	exportSPKI,
	generateKeyPair,
	importJWK,
	type JWK,
	type JWTPayload,
	SignJWT,
	UnsecuredJWT,
} from "jose";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { AUDIENCE, hs256Token, ISSUER, idpToken } from "./helpers";
import { expectEnvelope, raw } from "./hostile-helpers";

/** A repository id nobody has: the authorised control answers 404 after authentication. */
const UNKNOWN_REPO = "00000000-0000-4000-8000-00000000dead";
const now = () => Math.floor(Date.now() / 1000);
const enc = (value: unknown) => base64url.encode(JSON.stringify(value));
const secret = () => new TextEncoder().encode(inject("jwtSecret"));

interface Route {
	name: string;
	/** The role the positive control needs, and the answer it then gets. */
	role: "user" | "admin" | "service";
	ok: number;
	send(authorization: string | undefined, protocols?: string): Promise<Response>;
}

const json = { "content-type": "application/json" };
const withAuth = (authorization: string | undefined, extra: Record<string, string> = {}) =>
	authorization === undefined ? extra : { ...extra, authorization };

const ROUTES: Route[] = [
	{
		name: "summary",
		role: "user",
		ok: 404,
		send: (a) => raw(`/api/v1/fast/repositories/${UNKNOWN_REPO}/summary`, { headers: withAuth(a) }),
	},
	{ name: "me", role: "user", ok: 200, send: (a) => raw("/api/v1/me", { headers: withAuth(a) }) },
	{
		name: "admin",
		role: "admin",
		ok: 200,
		send: (a) => raw("/api/v1/admin/config", { headers: withAuth(a) }),
	},
	{
		name: "stats",
		role: "admin",
		ok: 200,
		send: (a) => raw("/api/v1/system/stats", { headers: withAuth(a) }),
	},
	{
		name: "events",
		role: "service",
		ok: 202,
		send: (a) =>
			raw("/api/v1/events", {
				method: "POST",
				headers: withAuth(a, json),
				body: JSON.stringify({ type: "x-jwt-attack-control", data: {} }),
			}),
	},
	{
		name: "stream",
		role: "user",
		ok: 404,
		send: (a, protocols) =>
			raw(`/api/v1/stream/repository/${UNKNOWN_REPO}/updates`, {
				headers: withAuth(a, {
					upgrade: "websocket",
					...(protocols ? { "sec-websocket-protocol": protocols } : {}),
				}),
			}),
	},
];

// ---- key material an attacker has: the IdP's public keys, fetched from its JWKS ----------------

let publicJwks: JWK[];
let rsaPublicPem: string;

beforeAll(async () => {
	const res = await fetch(inject("jwksUrl"));
	expect(res.status).toBe(200);
	publicJwks = ((await res.json()) as { keys: JWK[] }).keys;
	const rsa = publicJwks.find((k) => k.kty === "RSA");
	if (!rsa) throw new Error("the JWKS stand-in has no RSA key");
	const key = await importJWK(rsa, "RS256", { extractable: true });
	if (!(key instanceof CryptoKey)) throw new Error("the RSA JWK did not import as a CryptoKey");
	rsaPublicPem = await exportSPKI(key);
});

const jwkOf = (kty: string): JWK => {
	const key = publicJwks.find((k) => k.kty === kty);
	if (!key) throw new Error(`no ${kty} key in the JWKS`);
	return key;
};

const validClaims = (extra: JWTPayload = {}): JWTPayload => ({
	role: "user",
	sub: "mallory",
	iss: ISSUER,
	aud: AUDIENCE,
	iat: now(),
	exp: now() + 300,
	...extra,
});

/** An HS256-style signature over header.payload with any key bytes (for confusion attacks). */
async function hmac(header: object, payload: object, key: Uint8Array, hash = "SHA-256"): Promise<string> {
	const input = `${enc(header)}.${enc(payload)}`;
	const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]);
	const sig = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(input)));
	return `${input}.${base64url.encode(sig)}`;
}

/** A token signed with the IdP's real private key (any header, any claims). */
async function idpSigned(alg: "RS256" | "ES256" | "EdDSA", header: object, claims: JWTPayload) {
	const jwk = inject("jwksPrivateKeys")[alg];
	return new SignJWT(claims)
		.setProtectedHeader({ alg, kid: jwk.kid, typ: "JWT", ...header })
		.sign(await importJWK(jwk, alg));
}

/** Re-encodes the payload of a signed token, keeping its header and signature. */
function tamper(token: string, change: (claims: JWTPayload) => JWTPayload): string {
	const [h, p, s] = token.split(".");
	const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p ?? ""))) as JWTPayload;
	return `${h}.${enc(change(claims))}.${s}`;
}

function randomSegment(bytes: number): string {
	return base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)));
}

// ---- the cases ---------------------------------------------------------------------------------

interface Case {
	name: string;
	/**
	 * TOKEN_CASES: a bearer token, sent as `Bearer <token>` (and, on the stream, also as a
	 * bearer.<token> subprotocol); HEADER_CASES: the whole Authorization value.
	 */
	make(): Promise<string>;
	/** The exact error message, where the cause is unambiguous. */
	message?: string;
}

const token = (t: string | Promise<string>): Promise<string> => Promise.resolve(t);
const header = token;

const BAD_HEADER = "authorization header must be 'Bearer <token>'";
const NO_KEY = "no key matches the token";
const NOT_ALLOWED = "token algorithm is not allowed";
const BAD_SIGNATURE = "token signature is invalid";
const MALFORMED = "token is malformed";

const TOKEN_CASES: Case[] = [
	// alg none, in every spelling, with and without the trailing dot, even with a signature.
	{
		name: "alg none (UnsecuredJWT, trailing dot), roles escalated",
		message: NOT_ALLOWED,
		make: () => token(new UnsecuredJWT(validClaims({ roles: ["user", "admin", "service"] })).encode()),
	},
	...(["none", "None", "NONE", "nOnE"] as const).flatMap((alg): Case[] => [
		{
			name: `alg "${alg}" without a signature, trailing dot`,
			message: NOT_ALLOWED,
			make: () => token(`${enc({ alg, typ: "JWT" })}.${enc(validClaims({ role: "admin" }))}.`),
		},
		{
			name: `alg "${alg}" without the trailing dot`,
			message: MALFORMED,
			make: () => token(`${enc({ alg, typ: "JWT" })}.${enc(validClaims({ role: "service" }))}`),
		},
	]),
	{
		name: "alg none carrying a valid HS256 signature",
		message: NOT_ALLOWED,
		make: async () => {
			const [, p, s] = (await hs256Token({ role: "admin" })).split(".");
			return `${enc({ alg: "none" })}.${p}.${s}`;
		},
	},
	{
		name: "no alg in the header",
		message: NOT_ALLOWED,
		make: async () => token(await hmac({ typ: "JWT" }, validClaims(), secret())),
	},
	{
		name: "alg that is not a string",
		message: NOT_ALLOWED,
		make: async () => token(await hmac({ alg: ["HS256"] }, validClaims(), secret())),
	},
	{
		name: "alg hs256 (wrong case) with the right secret",
		message: NOT_ALLOWED,
		make: async () => token(await hmac({ alg: "hs256" }, validClaims(), secret())),
	},
	{
		name: "HS512 with the right secret",
		message: NOT_ALLOWED,
		make: async () => token(await hmac({ alg: "HS512" }, validClaims(), secret(), "SHA-512")),
	},
	// HS/RS key confusion: HMAC keyed with the IdP's public key material.
	{
		name: "HS256 keyed with the RSA public key PEM (kid of the RSA key), role admin",
		message: BAD_SIGNATURE,
		make: async () =>
			token(
				await hmac(
					{ alg: "HS256", kid: jwkOf("RSA").kid },
					validClaims({ role: "admin" }),
					new TextEncoder().encode(rsaPublicPem),
				),
			),
	},
	{
		name: "HS256 keyed with the RSA public key PEM plus a newline",
		message: BAD_SIGNATURE,
		make: async () =>
			token(await hmac({ alg: "HS256" }, validClaims(), new TextEncoder().encode(`${rsaPublicPem}\n`))),
	},
	{
		name: "HS256 keyed with the RSA modulus bytes",
		message: BAD_SIGNATURE,
		make: async () =>
			token(await hmac({ alg: "HS256" }, validClaims(), base64url.decode(jwkOf("RSA").n ?? ""))),
	},
	{
		name: "HS256 keyed with the JWKS JSON of the RSA key",
		message: BAD_SIGNATURE,
		make: async () =>
			token(
				await hmac({ alg: "HS256" }, validClaims(), new TextEncoder().encode(JSON.stringify(jwkOf("RSA")))),
			),
	},
	{
		name: "HS256 keyed with the EC public key's x coordinate",
		message: BAD_SIGNATURE,
		make: async () =>
			token(await hmac({ alg: "HS256" }, validClaims(), base64url.decode(jwkOf("EC").x ?? ""))),
	},
	{
		name: "RS256 header over an HMAC signature keyed with the RSA public key PEM",
		message: BAD_SIGNATURE,
		make: async () => {
			const forged = await hmac(
				{ alg: "RS256", kid: jwkOf("RSA").kid },
				validClaims({ role: "admin" }),
				new TextEncoder().encode(rsaPublicPem),
			);
			return forged;
		},
	},
	// Asymmetric algorithm games.
	{
		name: "PS256 signed with the IdP's RSA key (algorithm not on the list)",
		message: NOT_ALLOWED,
		make: async () => {
			const jwk = inject("jwksPrivateKeys").RS256;
			const key = await importJWK({ ...jwk, alg: "PS256" }, "PS256");
			return token(new SignJWT(validClaims()).setProtectedHeader({ alg: "PS256", kid: jwk.kid }).sign(key));
		},
	},
	{
		name: "an ES256 signature relabelled RS256",
		message: NO_KEY,
		make: async () => {
			const [, p, s] = (await idpToken("ES256")).split(".");
			return `${enc({ alg: "RS256", kid: jwkOf("EC").kid })}.${p}.${s}`;
		},
	},
	{
		name: "an attacker's own RSA key embedded as jwk/jku/x5u, kid of the real key",
		message: BAD_SIGNATURE,
		make: async () => {
			const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
			return token(
				new SignJWT(validClaims({ role: "admin" }))
					.setProtectedHeader({
						alg: "RS256",
						kid: jwkOf("RSA").kid,
						jwk: await exportJWK(publicKey),
						jku: "https://evil.example/jwks.json",
						x5u: "https://evil.example/cert.pem",
					})
					.sign(privateKey),
			);
		},
	},
	// kid games.
	...[
		["an unknown kid", "no-such-key"],
		["a path-traversal kid", "../../../../etc/passwd"],
		["a SQL-ish kid", "' OR 1=1 --"],
		["a 4 KB kid", "k".repeat(4096)],
		["the EdDSA key's kid on an RS256 token", "test-eddsa"],
	].map(
		([name, kid]): Case => ({
			name: `RS256 with ${name}`,
			message: NO_KEY,
			make: () => token(idpSigned("RS256", { kid }, validClaims())),
		}),
	),
	// Claims on the JWKS path (auth.test.ts covers them for HS256).
	{
		name: "RS256, expired beyond the 30 s tolerance",
		message: "token expired",
		make: () => token(idpSigned("RS256", {}, validClaims({ iat: now() - 600, exp: now() - 45 }))),
	},
	{
		name: "EdDSA, expired long ago",
		message: "token expired",
		make: () => token(idpSigned("EdDSA", {}, validClaims({ iat: 1, exp: 2 }))),
	},
	{
		name: "HS256, not valid for another 45 s (beyond the 30 s skew)",
		message: "token not yet valid",
		make: () => token(hs256Token({ nbf: now() + 45 })),
	},
	{
		name: "ES256, not valid for another 45 s (beyond the 30 s skew)",
		message: "token not yet valid",
		make: () => token(idpSigned("ES256", {}, validClaims({ nbf: now() + 45 }))),
	},
	{
		name: "RS256 with exp as a string",
		message: "token claim 'exp' is invalid",
		make: () => token(idpSigned("RS256", {}, validClaims({ exp: String(now() + 300) as unknown as number }))),
	},
	{
		name: "RS256 without exp",
		message: "token has no expiry",
		make: () => token(idpSigned("RS256", {}, validClaims({ exp: undefined }))),
	},
	{
		name: "RS256 with an empty sub",
		message: "token has no subject",
		make: () => token(idpSigned("RS256", {}, validClaims({ sub: "" }))),
	},
	{
		name: "RS256 with a wrong issuer",
		message: "token claim 'iss' is invalid",
		make: () => token(idpSigned("RS256", {}, validClaims({ iss: "https://evil.example" }))),
	},
	{
		name: "ES256 with a look-alike issuer (trailing slash)",
		message: "token claim 'iss' is invalid",
		make: () => token(idpSigned("ES256", {}, validClaims({ iss: `${ISSUER}/` }))),
	},
	{
		name: "EdDSA without an issuer",
		message: "token claim 'iss' is invalid",
		make: () => token(idpSigned("EdDSA", {}, validClaims({ iss: undefined }))),
	},
	{
		name: "RS256 with a wrong audience",
		message: "token claim 'aud' is invalid",
		make: () => token(idpSigned("RS256", {}, validClaims({ aud: "another-api" }))),
	},
	{
		name: "RS256 with an audience list that lacks ours",
		message: "token claim 'aud' is invalid",
		make: () => token(idpSigned("RS256", {}, validClaims({ aud: ["a", `${AUDIENCE}x`] }))),
	},
	{
		name: "a real stream ticket (its own audience: tickets are never bearer tokens)",
		message: "token claim 'aud' is invalid",
		make: async () => {
			const res = await raw("/api/v1/stream/tickets", {
				method: "POST",
				token: await hs256Token({ role: "admin" }),
				headers: json,
				body: JSON.stringify({ repository_id: UNKNOWN_REPO }),
			});
			expect(res.status).toBe(201);
			return ((await res.json()) as { ticket: string }).ticket;
		},
	},
	// Tampering.
	{
		name: "RS256 payload re-encoded with roles escalated, original signature",
		message: BAD_SIGNATURE,
		make: async () =>
			token(tamper(await idpToken("RS256"), (c) => ({ ...c, roles: ["user", "admin", "service"] }))),
	},
	{
		name: "HS256 payload re-encoded with role escalated, original signature",
		message: BAD_SIGNATURE,
		make: async () =>
			token(tamper(await hs256Token({ role: "user" }), (c) => ({ ...c, role: "admin", roles: ["service"] }))),
	},
	{
		name: "EdDSA payload re-encoded with a later exp, original signature",
		message: BAD_SIGNATURE,
		make: async () => token(tamper(await idpToken("EdDSA"), (c) => ({ ...c, exp: now() + 86_400 }))),
	},
	{
		name: "HS256 header re-encoded (extra kid), original signature",
		message: BAD_SIGNATURE,
		make: async () => {
			const [, p, s] = (await hs256Token()).split(".");
			return `${enc({ alg: "HS256", typ: "JWT", kid: "x" })}.${p}.${s}`;
		},
	},
	{
		name: "HS256 with the signature stripped (trailing dot kept)",
		message: BAD_SIGNATURE,
		make: async () => {
			const [h, p] = (await hs256Token({ role: "admin" })).split(".");
			return `${h}.${p}.`;
		},
	},
	{
		name: "RS256 with the signature stripped and no trailing dot",
		message: MALFORMED,
		make: async () => {
			const [h, p] = (await idpToken("RS256")).split(".");
			return `${h}.${p}`;
		},
	},
	{
		name: "HS256 with a truncated signature",
		message: BAD_SIGNATURE,
		make: async () => token((await hs256Token()).slice(0, -8)),
	},
	{
		name: "HS256 with a crit header the service does not understand",
		message: MALFORMED,
		make: async () =>
			token(await hmac({ alg: "HS256", crit: ["x-magic"], "x-magic": 1 }, validClaims(), secret())),
	},
	{
		name: "HS256 with an unencoded payload (b64: false)",
		message: MALFORMED,
		make: async () => token(await hmac({ alg: "HS256", b64: false, crit: ["b64"] }, validClaims(), secret())),
	},
	{
		name: "HS256 whose payload is a JSON array",
		message: MALFORMED,
		make: async () => token(await hmac({ alg: "HS256" }, [validClaims()], secret())),
	},
	// Garbage.
	{
		name: "random bytes in three segments",
		message: MALFORMED,
		make: () => token(`${randomSegment(24)}.${randomSegment(64)}.${randomSegment(32)}`),
	},
	{ name: "three dots", message: MALFORMED, make: () => token("...") },
	{ name: "four segments", message: MALFORMED, make: async () => token(`${await hs256Token()}.extra`) },
	{
		name: "five segments (JWE shape)",
		message: NOT_ALLOWED,
		make: () => token(`${enc({ alg: "dir", enc: "A256GCM" })}.a.b.c.d`),
	},
	{
		name: "a header that is not JSON",
		message: MALFORMED,
		make: () => token(`${base64url.encode("{not json")}.e30.`),
	},
	{ name: "a header that is JSON null", message: MALFORMED, make: () => token(`${enc(null)}.e30.sig`) },
	{
		name: "a 64 KB token",
		message: MALFORMED,
		make: () => token(`${randomSegment(16_384)}.${randomSegment(16_384)}.${randomSegment(16_384)}`),
	},
];

/** Authorization values; the message is BAD_HEADER unless a case says otherwise. */
const HEADER_CASES: Case[] = [
	{
		name: "a 64 KB Authorization header of one character",
		message: MALFORMED,
		make: () => header(`Bearer ${"a".repeat(65_536)}`),
	},
	{
		name: "unicode in the token",
		make: () => header("Bearer ✓.✓.✓"),
	},
	{ name: "an emoji token", make: () => header("Bearer 💩") },
	{ name: "'Bearer' with no token", make: () => header("Bearer") },
	{ name: "'Bearer' with only spaces", make: () => header("Bearer     ") },
	{
		name: "'Bearer:' with a colon",
		make: async () => header(`Bearer:${await hs256Token({ role: "admin" })}`),
	},
	{
		name: "two bearer tokens",
		make: async () => header(`Bearer ${await hs256Token()}, Bearer ${await hs256Token()}`),
	},
	{
		name: "a valid token in the Basic scheme",
		make: async () => header(`Basic ${await hs256Token({ role: "admin" })}`),
	},
	{ name: "Basic credentials", make: () => header(`Basic ${btoa("admin:admin")}`) },
	{ name: "the Digest scheme", make: () => header('Digest username="admin", realm="x", response="00"') },
	{ name: "a bare token without a scheme", make: async () => header(await hs256Token({ role: "admin" })) },
	{ name: "lower-case 'bearer' with garbage", message: MALFORMED, make: () => header("bearer abc.def.ghi") },
	{ name: "a control character (SOH) in the token", make: () => header("Bearer abc\u0001def") },
];

// ---- the matrix --------------------------------------------------------------------------------

const made = new Map<Case, Promise<string>>();
const credentialOf = (c: Case): Promise<string> => {
	let p = made.get(c);
	if (!p) {
		p = c.make();
		made.set(c, p);
	}
	return p;
};

async function expectRefused(res: Response, message: string | undefined) {
	expect(res.status).toBe(401);
	const challenge = res.headers.get("www-authenticate") ?? "";
	expect(challenge).toMatch(/^Bearer realm="gitinsight-edge"/);
	expect(challenge).toContain('error="invalid_token"');
	const err = await expectEnvelope(res, { status: 401, code: "unauthorized" });
	if (message) expect(err.message).toBe(message);
	expect(challenge).toContain(`error_description="${err.message}"`);
}

describe.each(ROUTES)("$name", (route) => {
	it("positive control: the right role gets through (so a 401 below is the token's fault)", async () => {
		const t =
			route.role === "user"
				? await hs256Token({ sub: "jwt-attacks-control" })
				: await idpToken("ES256", { role: route.role, sub: `jwt-attacks-${route.role}` });
		const res = await route.send(`Bearer ${t}`);
		expect(res.status, await res.clone().text()).toBe(route.ok);
	});

	it.each(TOKEN_CASES)("refuses a token: $name", async (c) => {
		await expectRefused(await route.send(`Bearer ${await credentialOf(c)}`), c.message);
	});

	it.each(HEADER_CASES)("refuses an Authorization header: $name", async (c) => {
		await expectRefused(await route.send(await credentialOf(c)), c.message ?? BAD_HEADER);
	});
});

describe("stream: the same tokens as a bearer.<jwt> subprotocol", () => {
	const stream = ROUTES.find((r) => r.name === "stream") as Route;
	const viaSubprotocol = async (t: string) => stream.send(undefined, `gitinsight.v1, bearer.${t}`);

	it("positive control: a valid token as a subprotocol gets through to the repository lookup", async () => {
		expect((await viaSubprotocol(await hs256Token({ sub: "jwt-attacks-control" }))).status).toBe(404);
	});

	it.each(TOKEN_CASES.filter((c) => !c.name.includes("64 KB")))("refuses $name", async (c) => {
		await expectRefused(await viaSubprotocol(await credentialOf(c)), c.message);
	});
});

// The service's own HS256 keys. JWT_SECRET signs (stream tickets here, tokens from
// `npm run token`) and verifies; JWT_SECRET_PREVIOUS, set only during a rotation, still verifies
// what the old secret signed, so rotating does not log anyone out:
//   1. set JWT_SECRET_PREVIOUS to the current secret and JWT_SECRET to a new one (deploy);
//   2. move the token issuers to the new secret; wait out the longest token lifetime;
//   3. delete JWT_SECRET_PREVIOUS (deploy).
// Each key has an id (kidOf: a hash prefix, naming the key without revealing it), carried as
// `kid` by everything this service signs, so verification picks its key at once. A token without
// a kid, or with another issuer's own kid (services that sign with the shared secret may set
// one), is tried against the current key, then the previous one.
import { errors, type JWTVerifyOptions, type JWTVerifyResult, jwtVerify } from "jose";
import type { Config } from "../env";
import { kidOf } from "../lib/digest";

export interface HsKey {
	kid: string;
	/** For verifying (imported once per isolate: importing costs about a signature check). */
	key: CryptoKey;
	/** For signing with jose's SignJWT. */
	secret: Uint8Array;
}

// Isolate-scoped, keyed by the secret itself: derived once per isolate.
const derived = new Map<string, Promise<HsKey>>();

function keyOf(secret: string): Promise<HsKey> {
	let key = derived.get(secret);
	if (!key) {
		const bytes = new TextEncoder().encode(secret);
		key = Promise.all([
			crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]),
			kidOf(secret),
		]).then(([imported, kid]) => ({ kid, key: imported, secret: bytes }));
		derived.set(secret, key);
	}
	return key;
}

/** The key that signs, or undefined when JWT_SECRET is not set. */
export function signingKey(config: Config): Promise<HsKey> | undefined {
	return config.JWT_SECRET ? keyOf(config.JWT_SECRET) : undefined;
}

/** Every key that verifies: the current one first, then the previous one during a rotation. */
async function verifyingKeys(config: Config): Promise<HsKey[]> {
	const secrets = [config.JWT_SECRET, config.JWT_SECRET_PREVIOUS].filter((s): s is string => Boolean(s));
	return Promise.all([...new Set(secrets)].map(keyOf));
}

/**
 * jwtVerify with the key `kid` names (no kid, or one that is not ours: each key in turn, while
 * the signature is what fails). Throws jose's errors.
 */
export async function verifyHs256(
	token: string,
	config: Config,
	kid: string | undefined,
	options: JWTVerifyOptions,
): Promise<JWTVerifyResult> {
	const keys = await verifyingKeys(config);
	// A kid of ours picks its key; none, or another issuer's own kid, tries each key in turn.
	const named = keys.filter((k) => k.kid === kid);
	const candidates = named.length > 0 ? named : keys;
	if (candidates.length === 0) throw new errors.JWKSNoMatchingKey();
	for (let i = 0; ; i++) {
		const candidate = candidates[i] as HsKey;
		try {
			return await jwtVerify(token, candidate.key, { ...options, algorithms: ["HS256"] });
		} catch (err) {
			const last = i === candidates.length - 1;
			if (last || !(err instanceof errors.JWSSignatureVerificationFailed)) throw err;
		}
	}
}

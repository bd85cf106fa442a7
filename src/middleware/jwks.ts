// The identity provider's public keys (JWT_JWKS_URL), per isolate, fetched at most once per
// cooldown whatever callers send. jose's createRemoteJWKSet refetches on every unknown `kid`
// once its cooldown has passed, but its cooldown only moves on a successful fetch and, on
// Workers, concurrent verifications do not share one fetch: a storm of tokens with random kids,
// or an unreachable provider, becomes a fetch per request (issue 11). Here:
//   - one fetch in flight per URL per isolate, shared by every verification that needs it (each
//     waits for it at most JWKS_TIMEOUT_MS on its own timer; a fetch that outlived its request,
//     whose promise can no longer settle on Workers, is replaced once it is older than that);
//   - a new fetch at most once per JWKS_COOLDOWN_MS, counted from the attempt, failed or not;
//   - keys refreshed by the first verification that finds them older than JWKS_MAX_AGE_MS (the
//     old keys keep verifying if that fails); an unknown kid refetches only when the cooldown
//     allows, else it is "no key matches" (401) at once;
//   - a provider that has never answered is 503 (token keys unavailable), never a 401.
// The keys are public (verification only), so sharing them across requests is safe; the
// response is capped at JWKS_MAX_BYTES and parsed by jose's createLocalJWKSet.
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { withTimeout } from "../lib/timeout";

export const JWKS_COOLDOWN_MS = 30_000;
export const JWKS_MAX_AGE_MS = 10 * 60_000;
export const JWKS_TIMEOUT_MS = 2_000;
const JWKS_MAX_BYTES = 64 * 1024;

interface KeySet {
	resolve?: JWTVerifyGetKey;
	fetchedAt: number;
	attemptAt: number;
	inflight?: { promise: Promise<boolean>; startedAt: number };
}

const sets = new Map<string, KeySet>();

/** Test seam: forget every key set of this isolate. */
export function resetJwksState(): void {
	sets.clear();
}

async function fetchKeys(url: string): Promise<JWTVerifyGetKey> {
	const res = await fetch(url, {
		headers: { accept: "application/json" },
		signal: AbortSignal.timeout(JWKS_TIMEOUT_MS),
	});
	const declared = Number(res.headers.get("content-length") ?? 0);
	if (!res.ok || declared > JWKS_MAX_BYTES) {
		await res.body?.cancel();
		throw new TypeError(res.ok ? `JWKS larger than ${JWKS_MAX_BYTES} bytes` : `JWKS answered ${res.status}`);
	}
	// Read at most JWKS_MAX_BYTES, whatever the provider sends (it may not say its length).
	const reader = res.body?.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	for (let part = await reader?.read(); part && !part.done; part = await reader?.read()) {
		size += part.value.byteLength;
		if (size > JWKS_MAX_BYTES) {
			await reader?.cancel();
			throw new TypeError(`JWKS larger than ${JWKS_MAX_BYTES} bytes`);
		}
		chunks.push(part.value);
	}
	return createLocalJWKSet(JSON.parse(await new Blob(chunks).text()) as JSONWebKeySet);
}

/**
 * Starts a fetch if none is running and the cooldown allows; resolves true when the keys were
 * (re)loaded by the fetch it joined or started, false when none could run or it failed.
 */
function refresh(url: string, set: KeySet, now: number): Promise<boolean> {
	const running = set.inflight;
	if (running && now - running.startedAt <= JWKS_TIMEOUT_MS) return running.promise;
	if (now - set.attemptAt < JWKS_COOLDOWN_MS) return Promise.resolve(false);
	set.attemptAt = now;
	const promise = fetchKeys(url).then(
		(resolve) => {
			set.resolve = resolve;
			set.fetchedAt = Date.now();
			return true;
		},
		(err: unknown) => {
			console.warn(
				JSON.stringify({
					level: "warn",
					msg: "JWKS fetch failed; next attempt after the cooldown",
					cooldown_ms: JWKS_COOLDOWN_MS,
					error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
				}),
			);
			return false;
		},
	);
	const slot = { promise, startedAt: now };
	set.inflight = slot;
	void promise.finally(() => {
		if (set.inflight === slot) set.inflight = undefined;
	});
	return promise;
}

/** Waits for a refresh at most JWKS_TIMEOUT_MS; a refresh that does not finish counts as failed. */
async function awaitRefresh(url: string, set: KeySet, now: number): Promise<boolean> {
	try {
		return await withTimeout(refresh(url, set, now), JWKS_TIMEOUT_MS, "JWKS fetch");
	} catch {
		return false;
	}
}

/** The key resolver for tokens signed by the provider at `url` (for jose's jwtVerify). */
export function jwksFor(url: string): JWTVerifyGetKey {
	return async (header, token) => {
		let set = sets.get(url);
		if (!set) {
			set = { fetchedAt: 0, attemptAt: 0 };
			sets.set(url, set);
		}
		const now = Date.now();
		// Keys older than JWKS_MAX_AGE_MS are refreshed by the request that finds them so (it waits
		// at most JWKS_TIMEOUT_MS; on failure the old keys keep verifying): a refresh left to run
		// after its request ended could be cancelled, and its attempt would still hold the cooldown.
		if (!set.resolve || now - set.fetchedAt > JWKS_MAX_AGE_MS) await awaitRefresh(url, set, now);
		const resolve = set.resolve;
		if (!resolve) {
			// Never loaded: the provider is unreachable, not the caller's fault (describe → 503).
			throw new errors.JWKSTimeout("token keys are unavailable");
		}
		try {
			return await resolve(header, token);
		} catch (err) {
			if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
			// An unknown kid: the provider may have rotated its keys. Refetch if the cooldown allows.
			if (!(await awaitRefresh(url, set, now)) || !set.resolve) throw err;
			return set.resolve(header, token);
		}
	};
}

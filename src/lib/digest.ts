// SHA-256 digests in the text forms the service uses: hex (`sha256:<hex>` names of long keys and
// producers), base64url (ETags, key ids). No imports, so scripts/token.ts can load it as is.

async function sha256(text: string): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** `sha256:` + the hex digest of `text`. */
export async function sha256Name(text: string): Promise<string> {
	return `sha256:${Array.from(await sha256(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The base64url digest of `text` (unpadded), of its first `bytes` bytes. */
export async function sha256Base64url(text: string, bytes = 32): Promise<string> {
	let binary = "";
	for (const b of (await sha256(text)).slice(0, bytes)) binary += String.fromCharCode(b);
	return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The id of an HS256 secret: `hs-` + the first 16 base64url characters of its SHA-256. It names
 * the key in a token's `kid` without revealing it (src/middleware/hs256.ts; scripts/token.ts).
 */
export async function kidOf(secret: string): Promise<string> {
	return `hs-${(await sha256Base64url(secret)).slice(0, 16)}`;
}

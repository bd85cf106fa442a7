// The id of an HS256 secret: `hs-` + the first 16 base64url characters of its SHA-256. It names
// the key in a token's `kid` without revealing it (src/middleware/hs256.ts; scripts/token.ts).
export async function kidOf(secret: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret)));
	let text = "";
	for (const b of digest) text += String.fromCharCode(b);
	return `hs-${btoa(text).replaceAll("+", "-").replaceAll("/", "_").slice(0, 16)}`;
}

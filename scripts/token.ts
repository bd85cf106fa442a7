// `npm run token -- --role user|admin|service [--sub NAME] [--ttl 1h]`: prints an HS256 token
// that the local configuration accepts (issuer, audience and JWT_SECRET as `wrangler dev` sees them).
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import { kidOf } from "../src/lib/digest.ts";
import { localConfig } from "./lib/local-config.ts";

const ROLES = ["user", "admin", "service"];
const usage = "usage: npm run token -- --role user|admin|service [--sub NAME] [--ttl 1h]";

function fail(message: string): never {
	console.error(`token: ${message}\n${usage}`);
	process.exit(2);
}

let values: { role?: string; sub?: string; ttl?: string };
try {
	({ values } = parseArgs({
		options: {
			role: { type: "string", default: "user" },
			sub: { type: "string" },
			ttl: { type: "string", default: "1h" },
		},
		strict: true,
	}));
} catch (err) {
	fail((err as Error).message);
}
const role = values.role ?? "user";
if (!ROLES.includes(role)) fail(`unknown role '${role}'`);
const ttl = values.ttl ?? "1h";
if (!/^\d+\s*(s|m|h|d)$/.test(ttl)) fail(`--ttl must look like 30s, 15m, 1h or 7d, got '${ttl}'`);
const seconds =
	Number.parseInt(ttl, 10) * { s: 1, m: 60, h: 3600, d: 86_400 }[ttl.slice(-1) as "s" | "m" | "h" | "d"];
// The Worker refuses a token valid for longer (MAX_TOKEN_LIFETIME_S in src/middleware/auth.ts).
if (seconds > 30 * 86_400) fail("--ttl must be at most 30d: the Worker refuses longer-lived tokens");

const config = localConfig();
const secret = config.JWT_SECRET;
if (!secret) fail("JWT_SECRET is not set (in .dev.vars, .dev.vars.example or the environment)");
const issuer = config.JWT_ISSUER;
const audience = config.JWT_AUDIENCE;
if (!issuer || !audience) fail("JWT_ISSUER / JWT_AUDIENCE missing from wrangler.toml [vars]");

const token = await new SignJWT({ role })
	// The key id lets the Worker pick the key at once, also during a secret rotation.
	.setProtectedHeader({ alg: "HS256", typ: "JWT", kid: await kidOf(secret) })
	.setIssuer(issuer)
	.setAudience(audience)
	.setSubject(values.sub ?? `local-${role}`)
	.setIssuedAt()
	.setExpirationTime(ttl)
	.sign(new TextEncoder().encode(secret));
console.log(token);

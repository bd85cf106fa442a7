// CORS for browser callers: only the origins in CORS_ORIGINS get Access-Control-Allow-Origin
// (the same list gates WebSocket upgrades, src/realtime/stream-auth.ts). Preflights are
// answered here with 204, before rate limits and auth. No credentials mode: the API takes
// Bearer tokens, never cookies.

import { cors as honoCors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";

const ALLOW_HEADERS = ["Authorization", "Content-Type", "If-None-Match", "Cache-Control", "X-Request-Id"];
const EXPOSE_HEADERS = [
	"X-Request-Id",
	"X-Cache",
	"X-Cache-Tier",
	"Age",
	"ETag",
	"Retry-After",
	"RateLimit",
	"RateLimit-Policy",
	"RateLimit-Limit",
	"RateLimit-Remaining",
	"RateLimit-Reset",
];

const handler = honoCors({
	origin: (origin, c) => {
		const allowed: string[] = c.var.deps.config.CORS_ORIGINS;
		return allowed.includes(origin) ? origin : null;
	},
	allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
	allowHeaders: ALLOW_HEADERS,
	exposeHeaders: EXPOSE_HEADERS,
	maxAge: 600,
	credentials: false,
});

export const cors = createMiddleware<AppEnv>((c, next) => handler(c, next));

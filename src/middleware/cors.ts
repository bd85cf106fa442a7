// CORS for browser callers: only the origins in CORS_ORIGINS get Access-Control-Allow-Origin
// (the same list gates WebSocket upgrades, src/realtime/stream-auth.ts). Preflights are
// answered here with 204, before rate limits and auth. No credentials mode: the API takes
// Bearer tokens, never cookies.

import type { Context } from "hono";
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

const allowedOrigin = (origin: string, c: Context<AppEnv>): string | null =>
	c.get("deps").config.CORS_ORIGINS.includes(origin) ? origin : null;

const preflight = honoCors({
	origin: allowedOrigin,
	allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
	allowHeaders: ALLOW_HEADERS,
	exposeHeaders: EXPOSE_HEADERS,
	maxAge: 600,
	credentials: false,
});

const EXPOSE = EXPOSE_HEADERS.join(",");

/**
 * Preflights go to Hono's cors middleware. Actual requests get the same headers here, written
 * before the handler runs: Hono's middleware writes them through `c.res` before `next()` and
 * appends Vary after it, and each of those makes Hono build or copy a whole Response (three
 * Response constructions per request, ~10% of a cached hit's CPU in a profile of the isolate).
 */
export const cors = createMiddleware<AppEnv>(async (c, next) => {
	if (c.req.method === "OPTIONS") return preflight(c, next);
	const origin = c.req.header("origin");
	const allowed = origin ? allowedOrigin(origin, c) : null;
	if (allowed) c.header("Access-Control-Allow-Origin", allowed);
	c.header("Access-Control-Expose-Headers", EXPOSE);
	c.header("Vary", "Origin", { append: true });
	await next();
});

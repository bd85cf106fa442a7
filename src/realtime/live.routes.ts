// GET /live: a small live activity page (src/realtime/live.html) for the global activity stream
// and, optionally, one repository's stream. Self-contained (no CDN assets) and locked down by
// its CSP: inline script and style, connections only to this origin (fetch and WebSocket).
// The repository id may be in the query (?repo=<uuid>); a user token never is: the page takes
// it from a field or the URL fragment (#token=…, which browsers do not send), exchanges it for
// a single-use stream ticket (POST /api/v1/stream/tickets) on every (re)connect, and keeps it
// in memory only.
import { Hono } from "hono";
import type { AppEnv } from "../env";
import page from "./live.html";

export const LIVE_CSP = [
	"default-src 'none'",
	"script-src 'unsafe-inline'",
	"style-src 'unsafe-inline'",
	// 'self' also covers ws:/wss: to this host (CSP Level 3).
	"connect-src 'self'",
	"img-src 'self' data:",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

export const live = new Hono<AppEnv>().get("/live", (c) => {
	c.header("Cache-Control", "public, max-age=60");
	c.header("Content-Security-Policy", LIVE_CSP);
	// The fragment is never sent, but a token pasted into a query by mistake must not leak on.
	c.header("Referrer-Policy", "no-referrer");
	c.header("X-Content-Type-Options", "nosniff");
	return c.html(page);
});

// GET /openapi.json (OpenAPI 3.1 built from the handlers' zod schemas) and GET /docs (a
// self-contained page rendering it: no CDN assets, so it works offline).
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { leaderboardOperations } from "../leaderboard/leaderboard.routes";
import { type ApiOperation, buildOpenApi } from "../lib/openapi";
import { eventsOperations } from "../realtime/events.routes";
import { streamOperations } from "../realtime/stream.routes";
import { reposOperations } from "../repos/repos.routes";
import { searchOperations } from "../search/search.routes";
import { adminOperations } from "./admin";
import page from "./docs.html";
import { healthOperations } from "./health";
import { meOperations } from "./me";
import { metricsOperations } from "./metrics";
import { statsOperations } from "./stats";

const operations: ApiOperation[] = [
	...reposOperations,
	...searchOperations,
	...leaderboardOperations,
	...streamOperations,
	...eventsOperations,
	...healthOperations,
	...meOperations,
	...adminOperations,
	...statsOperations,
	...metricsOperations,
];

// Isolate-scoped: the document depends only on code and APP_VERSION.
let cached: { version: string; json: string } | undefined;

export const docs = new Hono<AppEnv>()
	.get("/openapi.json", (c) => {
		const version = c.get("deps").config.APP_VERSION;
		if (cached?.version !== version) {
			cached = { version, json: JSON.stringify(buildOpenApi(operations, { version })) };
		}
		c.header("Cache-Control", "public, max-age=300");
		return c.body(cached.json, 200, { "Content-Type": "application/json; charset=UTF-8" });
	})
	.get("/docs", (c) => {
		c.header("Cache-Control", "public, max-age=300");
		c.header(
			"Content-Security-Policy",
			"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
		);
		return c.html(page);
	});

// First middleware: assigns the request id (echoed as X-Request-Id), builds the per-request
// deps, and writes one structured log line per request.
import { createMiddleware } from "hono/factory";
import { createDeps } from "../deps";
import type { AppEnv } from "../env";

// An incoming id is kept only if it is short and plain, so it can be logged and echoed safely.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
	const started = performance.now();
	const incoming = c.req.header("x-request-id");
	const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
	c.set("requestId", requestId);
	c.set("deps", createDeps(c.env, c.executionCtx));
	try {
		await next();
	} finally {
		c.header("X-Request-Id", requestId);
		console.log(
			JSON.stringify({
				level: "info",
				msg: "request",
				request_id: requestId,
				method: c.req.method,
				// The route pattern, never the raw path: ids and query strings stay out of the logs.
				route: c.req.routePath,
				status: c.res.status,
				duration_ms: Math.round((performance.now() - started) * 100) / 100,
			}),
		);
	}
});

// The Hono app: middleware order, feature mounts, one error envelope for everything.
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { type AppEnv, configProblem } from "./env";
import { methodNotAllowed, notFound, onError } from "./errors";
import { leaderboard } from "./leaderboard/leaderboard.routes";
import { allowedMethods } from "./lib/allowed-methods";
import { cors } from "./middleware/cors";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext } from "./middleware/request-context";
import { admin } from "./ops/admin";
import { docs } from "./ops/docs";
import { health } from "./ops/health";
import { me } from "./ops/me";
import { metrics } from "./ops/metrics";
import { stats } from "./ops/stats";
import { events } from "./realtime/events.routes";
import { live } from "./realtime/live.routes";
import { stream } from "./realtime/stream.routes";
import { repos } from "./repos/repos.routes";
import { search } from "./search/search.routes";

export function createApp() {
	const app = new Hono<AppEnv>();
	// Liveness for load balancers, and the "bare route" baseline of the hit-path benchmark:
	// registered before any middleware, so nothing but Hono's router runs for it.
	app.get("/ping", (c) => {
		// A refused configuration (src/env.ts) fails liveness too; the check is a memo lookup.
		const problem = configProblem(c.env);
		return problem ? c.text("misconfigured", 503) : c.text("pong");
	});
	// Every other response, errors included: HSTS, nosniff, no framing (a JSON API and two pages
	// that are never embedded), a CSP that lets a JSON body load nothing, no referrer. The pages
	// (/docs, /live) set their own CSP, kept (overwrite: false), each with frame-ancestors 'none'.
	// Hono's other defaults (COOP, CORP, Origin-Agent-Cluster, X-DNS-Prefetch-Control,
	// X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection) are off: each is a
	// header write on every response of an API no browser renders, and the set of 13 cost a cached
	// hit ~30 µs of its ~250 (bench:summary, README).
	app.use(
		secureHeaders({
			strictTransportSecurity: "max-age=31536000; includeSubDomains",
			xContentTypeOptions: true,
			xFrameOptions: "DENY",
			referrerPolicy: true,
			contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
			crossOriginResourcePolicy: false,
			crossOriginOpenerPolicy: false,
			originAgentCluster: false,
			xDnsPrefetchControl: false,
			xDownloadOptions: false,
			xPermittedCrossDomainPolicies: false,
			xXssProtection: false,
			removePoweredBy: false,
			overwrite: false,
		}),
	);
	app.use(requestContext);
	app.use(cors);
	app.use("/api/v1/*", rateLimit);
	app.route("/health", health);
	app.route("/metrics", metrics);
	app.route("/", docs);
	app.route("/api/v1/me", me);
	app.route("/api/v1/admin", admin);
	app.route("/api/v1/system", stats);
	app.route("/api/v1/fast/repositories", repos);
	app.route("/api/v1/fast/search", search);
	app.route("/api/v1/fast/leaderboard", leaderboard);
	app.route("/api/v1/stream", stream);
	app.route("/api/v1/events", events);
	app.route("/", live);
	const allowed = allowedMethods(app.routes);
	app.notFound((c) => {
		const methods = allowed(c.req.path);
		return methods.length > 0 && !methods.includes(c.req.method) ? methodNotAllowed(c, methods) : notFound(c);
	});
	app.onError(onError);
	return app;
}

export type App = ReturnType<typeof createApp>;

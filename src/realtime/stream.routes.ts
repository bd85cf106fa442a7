// The streams: GET /api/v1/stream/repository/{repo_id}/updates (authenticated) and
// GET /api/v1/stream/global/activity (public), plus POST /api/v1/stream/tickets. Every refusal
// (400, 401/403, 403 Origin, 404, 426) happens here, before the upgrade, in the API envelope;
// an accepted upgrade is handed to the hub as a fresh request carrying only what the hub
// needs (X-GI-Connect), never the caller's token.
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import type { ApiOperation } from "../lib/openapi";
import { parseInput, parseQuery } from "../lib/validate";
import { requireAuth } from "../middleware/auth";
import { clientKey, siteKey } from "../middleware/rate-limit";
import { getRepositorySummary } from "../repos/repos.queries";
import { SUMMARY_POLICY } from "../repos/repos.routes";
import { RepoIdParams } from "../repos/repos.schemas";
import { globalShardId, globalShardOf, repoHubOf } from "./addressing";
import { readJsonBody } from "./json-body";
import { CONNECT_HEADER, type ConnectInfo, EventType, LIMITS } from "./protocol";
import {
	checkOrigin,
	chooseProtocol,
	issueTicket,
	offeredProtocols,
	refuseUrlTokens,
	streamCaller,
} from "./stream-auth";

const StreamQuery = z.object({
	since: z
		.string()
		.regex(/^\d{1,15}$/, "since must be a non-negative integer (the last seq you saw)")
		.transform(Number)
		.optional(),
	types: z
		.string()
		.transform((v) => [
			...new Set(
				v
					.split(",")
					.map((t) => t.trim())
					.filter(Boolean),
			),
		])
		.pipe(z.array(EventType).min(1).max(LIMITS.connectTypes))
		.optional()
		.describe("comma-separated event types: the connection's scope (default: every type)"),
	shard: z
		.string()
		.regex(/^\d{1,3}$/, "shard must be an integer")
		.transform(Number)
		.optional(),
	ticket: z.string().max(2048).optional(),
});

const TicketRequest = z
	.object({ repository_id: z.guid({ message: "repository_id must be a UUID" }) })
	.strict();
const TicketResponse = z.object({
	ticket: z.string(),
	expires_at: z.string(),
	expires_in: z.number().int(),
	url: z.string().describe("the stream path with the ticket, for new WebSocket(origin + url)"),
});

const repoTarget = (id: string) => `repository:${id}`;
const repoPath = (id: string) => `/api/v1/stream/repository/${id}/updates`;

function requireUpgrade(c: Context<AppEnv>): void {
	if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
		throw new ApiError("upgrade_required", "this is a WebSocket endpoint: send Upgrade: websocket", {
			headers: { Upgrade: "websocket" },
		});
	}
}

async function forward(stub: DurableObjectStub, info: ConnectInfo): Promise<Response> {
	const res = await stub.fetch("https://hub.internal/connect", {
		headers: { Upgrade: "websocket", [CONNECT_HEADER]: JSON.stringify(info) },
	});
	if (res.status === 101) return res;
	if (res.status === 429) {
		throw new ApiError(
			"rate_limited",
			`this caller already holds ${LIMITS.socketsPerCaller} sockets on this stream: close one first`,
			{ headers: { "Retry-After": res.headers.get("retry-after") ?? "30" } },
		);
	}
	if (res.status === 503) {
		throw new ApiError("service_unavailable", "the stream is at capacity, retry shortly", {
			headers: { "Retry-After": "5" },
		});
	}
	throw new Error(`hub refused the upgrade: ${res.status} ${await res.text()}`);
}

export const stream = new Hono<AppEnv>()
	.get("/repository/:repo_id/updates", async (c) => {
		refuseUrlTokens(c);
		const id = parseInput(RepoIdParams, c.req.param(), "path").repo_id.toLowerCase();
		const query = parseQuery(StreamQuery, c.req.queries());
		requireUpgrade(c);
		checkOrigin(c);
		const offered = offeredProtocols(c);
		const protocol = chooseProtocol(offered);
		const caller = await streamCaller(c, repoTarget(id), offered);
		const { cache, db, env } = c.var.deps;
		const summary = await cache.read(SUMMARY_POLICY, id, async () => {
			const found = await getRepositorySummary(db, id);
			return found ? JSON.stringify(found) : null;
		});
		if (summary.body === null) throw new ApiError("not_found", "repository not found");
		const stub = repoHubOf(env, id);
		if (caller.ticket && !(await stub.claimTicket(caller.ticket.jti, caller.ticket.expMs))) {
			throw new ApiError("unauthorized", "the ticket was already used", {
				headers: { "WWW-Authenticate": "Bearer" },
			});
		}
		return forward(stub, {
			hub: "repository",
			repository_id: id,
			sub: caller.principal.sub,
			caller: `sub:${caller.principal.sub}`,
			roles: caller.principal.roles,
			scope: query.types ?? "*",
			since: query.since ?? null,
			protocol,
		});
	})
	.get("/global/activity", async (c) => {
		const query = parseQuery(StreamQuery.omit({ ticket: true }), c.req.queries());
		requireUpgrade(c);
		checkOrigin(c);
		const protocol = chooseProtocol(offeredProtocols(c));
		const { config, env } = c.var.deps;
		const shards = config.GLOBAL_HUB_SHARDS;
		// A seq is only meaningful on the shard that issued it: resuming elsewhere is a reset.
		const pinned = query.shard !== undefined && query.shard < shards;
		const shard = pinned ? (query.shard ?? 0) : (crypto.getRandomValues(new Uint32Array(1))[0] ?? 0) % shards;
		const lost = query.since !== undefined && !pinned;
		const caller = clientKey(c.req.header("cf-connecting-ip"));
		const site = siteKey(caller);
		return forward(globalShardOf(env, globalShardId(env, shard), config.GLOBAL_HUB_LOCATION), {
			hub: "global",
			shard,
			shards,
			sub: null,
			caller,
			...(site ? { site } : {}),
			roles: [],
			scope: query.types ?? "*",
			since: lost ? null : (query.since ?? null),
			...(lost ? { reset: "unknown_seq" as const } : {}),
			protocol,
		});
	})
	.post("/tickets", requireAuth(), async (c) => {
		const { repository_id } = await readJsonBody(c, TicketRequest, 4096);
		const id = repository_id.toLowerCase();
		const ticket = await issueTicket(c.var.deps.config, c.var.principal, repoTarget(id), Date.now());
		c.header("Cache-Control", "no-store");
		return c.json(
			{ ...ticket, expires_in: LIMITS.ticketTtlSeconds, url: `${repoPath(id)}?ticket=${ticket.ticket}` },
			201,
		);
	});

export const streamOperations: ApiOperation[] = [
	{
		method: "get",
		path: "/api/v1/stream/repository/{repo_id}/updates",
		summary: "WebSocket: live events of one repository (Upgrade: websocket)",
		description:
			"Authenticate with Authorization: Bearer, the subprotocols ['gitinsight.v1', 'bearer.<jwt>'] (only gitinsight.v1 is echoed) or ?ticket= from POST /api/v1/stream/tickets. since=<seq> replays what was missed (or sends a reset); types= limits the connection's scope. Frames: see src/realtime/protocol.ts.",
		tag: "streams",
		roles: ["user", "admin", "service"],
		pathParams: RepoIdParams,
		query: StreamQuery,
		response: z.object({}).describe("101 Switching Protocols"),
		errors: [426, 429],
	},
	{
		method: "get",
		path: "/api/v1/stream/global/activity",
		summary: "WebSocket: live events of every repository (public; Upgrade: websocket)",
		description:
			"Connections are spread over GLOBAL_HUB_SHARDS hubs; seqs are per shard, so resume with the shard from the welcome frame: ?shard=<n>&since=<seq>.",
		tag: "streams",
		query: StreamQuery.omit({ ticket: true }),
		response: z.object({}).describe("101 Switching Protocols"),
		errors: [403, 426, 429],
	},
	{
		method: "post",
		path: "/api/v1/stream/tickets",
		summary: "A single-use, 60-second ticket for opening one repository stream from a browser",
		tag: "streams",
		roles: ["user", "admin", "service"],
		response: TicketResponse,
		errors: [413, 415],
	},
];

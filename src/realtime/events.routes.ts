// POST /api/v1/events and /api/v1/events/batch: backend services (the analysis pipeline)
// publishing events. Service role only: admins and users do not produce pipeline events, and
// an operator who must inject one can mint a service token (`npm run token -- --role service`).
// An event about a repository first invalidates that repository's cached summary (this isolate,
// this colo's edge cache, Redis), then reaches the hubs: a client reacting to the event reads
// fresh data. When every event of a request is about one repository, the Redis part runs in its
// RepoHub, coalesced with the repository's other events in flight (repo-hub.do.ts). Answers
// 202 with each event's id and seqs; a retried id is not delivered twice. When Redis cannot be
// told (down or timing out), the events are still delivered live and the answer is 503 +
// Retry-After, so the sender's retry completes the invalidation.
import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { ingestDataPoint, ingestTypeLabel } from "../lib/metrics";
import type { ApiOperation } from "../lib/openapi";
import { requireRole } from "../middleware/auth";
import { SUMMARY_POLICY } from "../repos/repos.routes";
import { readJsonBody } from "./json-body";
import { EventBatchInput, EventInput, type HubEvent, LIMITS } from "./protocol";
import {
	type Delivery,
	deliver,
	deliverThroughRepository,
	producerOf,
	soleRepository,
	toHubEvent,
} from "./publish";

async function publish(c: Context<AppEnv>, events: HubEvent[]): Promise<Delivery[]> {
	const { cache, config, env, metrics } = c.get("deps");
	let deliveries: Delivery[];
	let invalidated: boolean;
	const repo = soleRepository(events);
	if (repo) {
		// The usual case, one repository: this isolate and this colo's edge copy now, Redis in its
		// RepoHub (coalesced with the repository's other events in flight), before the events go out.
		await cache.invalidate(SUMMARY_POLICY, [repo], { redis: false });
		const redis = config.redis;
		({ deliveries, invalidated } = await deliverThroughRepository(
			env,
			config,
			repo,
			events,
			redis ? { redis, keys: cache.redisKeysOf(SUMMARY_POLICY, [repo]) } : null,
		));
	} else {
		const repos = new Set(events.flatMap((e) => (e.repository_id ? [e.repository_id] : [])));
		// One Redis script for every repository of the request, whatever their number.
		invalidated = await cache.invalidate(SUMMARY_POLICY, [...repos]);
		deliveries = await deliver(env, config, events);
	}
	// One datapoint per event type (custom types together), so a batch stays within AE's
	// 25 writes per invocation.
	const byType = new Map<string, { accepted: number; duplicates: number }>();
	deliveries.forEach((d, i) => {
		const type = ingestTypeLabel(events[i]?.type ?? "unknown");
		const counts = byType.get(type) ?? { accepted: 0, duplicates: 0 };
		if (d.status === "accepted") counts.accepted++;
		else counts.duplicates++;
		byType.set(type, counts);
	});
	for (const [type, counts] of byType) metrics.write(ingestDataPoint({ type, ...counts }));
	if (!invalidated) {
		// Live clients have the events, but Redis may still hold a summary from before them. The
		// sender's retry (same ids: not delivered twice) invalidates again once Redis answers.
		throw new ApiError(
			"service_unavailable",
			"the events were delivered but the summary cache could not be invalidated; retry with the same ids",
			{ headers: { "Retry-After": "5" } },
		);
	}
	return deliveries;
}

export const events = new Hono<AppEnv>()
	.use(requireRole("service"))
	.post("/", async (c) => {
		const input = await readJsonBody(c, EventInput, LIMITS.eventBytes);
		const producer = await producerOf(c.var.principal.sub);
		const [delivery] = await publish(c, [toHubEvent(input, new Date(), producer)]);
		return c.json(delivery, 202);
	})
	.post("/batch", async (c) => {
		const input = await readJsonBody(c, EventBatchInput, LIMITS.batchBytes);
		const now = new Date();
		const producer = await producerOf(c.var.principal.sub);
		const hubEvents = input.events.map((e) => toHubEvent(e, now, producer));
		const tooBig = hubEvents.findIndex((e) => JSON.stringify(e).length > LIMITS.eventBytes);
		if (tooBig >= 0) {
			throw new ApiError("payload_too_large", `events[${tooBig}] is over ${LIMITS.eventBytes} bytes`);
		}
		const results = await publish(c, hubEvents);
		return c.json(
			{
				accepted: results.filter((r) => r.status === "accepted").length,
				duplicates: results.filter((r) => r.status === "duplicate").length,
				results,
			},
			202,
		);
	});

const DeliverySchema = z.object({
	id: z.string(),
	status: z.enum(["accepted", "duplicate"]),
	seq: z.object({
		repository: z.number().int().nullable().describe("seq in the repository's hub (null: no repository)"),
		global: z.array(z.number().int()).describe("seq in each global shard, by shard index"),
	}),
});

export const eventsOperations: ApiOperation[] = [
	{
		method: "post",
		path: "/api/v1/events",
		summary: "Publish one event (backend services; body ≤ 64 KB)",
		description:
			"Body {id?, type, repository_id?, timestamp?, data}. type: analysis_started, analysis_completed, analysis_failed, insight_added, repository_updated (these need repository_id), or a custom x-<name>. Idempotent on id. 202.",
		tag: "events",
		roles: ["service"],
		response: DeliverySchema,
		errors: [413, 415],
	},
	{
		method: "post",
		path: "/api/v1/events/batch",
		summary: "Publish up to 100 events in one request (body ≤ 1 MB, each event ≤ 64 KB)",
		tag: "events",
		roles: ["service"],
		response: z.object({
			accepted: z.number().int(),
			duplicates: z.number().int(),
			results: z.array(DeliverySchema),
		}),
		errors: [413, 415],
	},
];

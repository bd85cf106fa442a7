// Routing published events to the hubs. Each event about a repository goes to that repository's
// RepoHub, and every event goes to every GlobalHub shard. A request whose events are all about
// one repository (every single event about a repository, and most batches) makes one RPC: the
// RepoHub forwards to the shards itself, coalescing with its other events in flight (see
// repo-hub.do.ts), so a busy repository costs the shards a call per round trip, not per event.
// Other requests call each RepoHub concerned and each shard once. Each hub dedupes on the event
// id by itself, so a retry after a partial failure (some hubs reached, one not: 503) completes
// the missing hubs without delivering twice.
import type { Config } from "../env";
import { ApiError } from "../errors";
import { sha256Name } from "../lib/digest";
import { globalShardId, globalShardOf, repoHubOf } from "./addressing";
import { type EventInput, type HubEvent, type PublishResult, publicEvent } from "./protocol";
import type { Forwarded, PublishOptions } from "./repo-hub.do";

export interface Delivery {
	id: string;
	/** "duplicate" when every hub had already seen this id (a retry): nothing was re-sent. */
	status: "accepted" | "duplicate";
	seq: { repository: number | null; global: number[] };
}

/**
 * Who produced events, as their dedupe keys name it: the token subject when it is short and
 * plain, else a SHA-256 of it (a subject may be any string of any length).
 */
export async function producerOf(sub: string): Promise<string> {
	return /^[A-Za-z0-9._:@-]{1,128}$/.test(sub) ? sub : sha256Name(sub);
}

/** The key hubs dedupe an event on (HubEvent.key): producer, repository and id, unambiguous. */
export function dedupeKey(producer: string, repositoryId: string | undefined, id: string): string {
	return JSON.stringify([producer, repositoryId ?? null, id]);
}

/**
 * Fills in the id and timestamp, normalises ids (every hub must store the same event) and sets
 * the dedupe key of `producer` (producerOf).
 */
export function toHubEvent(input: EventInput, now: Date, producer: string): HubEvent {
	const id = input.id ?? crypto.randomUUID();
	const repository = input.repository_id?.toLowerCase();
	const event: HubEvent = {
		id,
		key: dedupeKey(producer, repository, id),
		type: input.type,
		timestamp: new Date(input.timestamp ?? now).toISOString(),
		data: input.data,
	};
	if (repository) event.repository_id = repository;
	return event;
}

/** Events per repository, each list in request order, with each event's index in the request. */
export function groupByRepository(events: HubEvent[]): Map<string, { index: number; event: HubEvent }[]> {
	const groups = new Map<string, { index: number; event: HubEvent }[]>();
	events.forEach((event, index) => {
		if (!event.repository_id) return;
		const list = groups.get(event.repository_id) ?? [];
		list.push({ index, event });
		groups.set(event.repository_id, list);
	});
	return groups;
}

/** Per-event deliveries from each hub's results (results are in the order events were sent). */
export function mergeResults(
	count: number,
	repo: { indexes: number[]; results: PublishResult[] }[],
	shards: PublishResult[][],
	ids: string[],
): Delivery[] {
	const out: Delivery[] = ids
		.slice(0, count)
		.map((id) => ({ id, status: "duplicate", seq: { repository: null, global: [] } }));
	const seen = (i: number, r: PublishResult | undefined) => {
		const d = out[i];
		if (d && r && !r.duplicate) d.status = "accepted";
	};
	for (const { indexes, results } of repo) {
		indexes.forEach((i, k) => {
			const r = results[k];
			const d = out[i];
			if (d && r) d.seq.repository = r.seq;
			seen(i, r);
		});
	}
	for (const results of shards) {
		results.forEach((r, i) => {
			out[i]?.seq.global.push(r.seq);
			seen(i, r);
		});
	}
	return out;
}

/** The one repository every event is about, or null (none, several, or some without one). */
export function soleRepository(events: HubEvent[]): string | null {
	const first = events[0]?.repository_id;
	return first && events.every((e) => e.repository_id === first) ? first : null;
}

/**
 * Publishes events that are all about `repo` through its RepoHub, which first runs the Redis
 * part of the invalidation (`invalidate`), then forwards to the shards. 503 if a hub failed;
 * `invalidated` false if Redis could not be told.
 */
export async function deliverThroughRepository(
	env: Env,
	config: Config,
	repo: string,
	events: HubEvent[],
	invalidate: PublishOptions["invalidate"],
): Promise<{ deliveries: Delivery[]; invalidated: boolean }> {
	let forwarded: Forwarded;
	try {
		forwarded = await repoHubOf(env, repo).publishAndForward(events, {
			shards: config.GLOBAL_HUB_SHARDS,
			location: config.GLOBAL_HUB_LOCATION,
			invalidate,
		});
	} catch (err) {
		throw unavailable([`repository ${repo} or a global shard`], err);
	}
	const deliveries = mergeResults(
		events.length,
		[{ indexes: events.map((_, i) => i), results: forwarded.repository }],
		forwarded.global,
		events.map((e) => e.id),
	);
	return { deliveries, invalidated: forwarded.invalidated };
}

/** Publishes to every hub concerned from here; 503 (retry the same request) if any hub failed. */
export async function deliver(env: Env, config: Config, events: HubEvent[]): Promise<Delivery[]> {
	const groups = [...groupByRepository(events)];
	const shards = config.GLOBAL_HUB_SHARDS;
	const repoCalls = groups.map(([id, list]) => repoHubOf(env, id).publish(list.map((x) => x.event)));
	const global = events.map(publicEvent);
	const shardCalls = Array.from({ length: shards }, (_, n) =>
		globalShardOf(env, globalShardId(env, n), config.GLOBAL_HUB_LOCATION).publish(global),
	);
	const settled = await Promise.allSettled([...repoCalls, ...shardCalls]);
	const failed = settled.flatMap((s, i) => {
		if (s.status === "fulfilled") return [];
		const hub = i < groups.length ? `repository ${groups[i]?.[0]}` : `global shard ${i - groups.length}`;
		return [{ hub, error: s.reason }];
	});
	if (failed.length > 0) {
		throw unavailable(
			failed.map((f) => f.hub),
			failed.map((f) => f.error),
		);
	}
	const value = (s: PromiseSettledResult<PublishResult[]> | undefined) =>
		s?.status === "fulfilled" ? s.value : [];
	return mergeResults(
		events.length,
		groups.map(([, list], g) => ({ indexes: list.map((x) => x.index), results: value(settled[g]) })),
		settled.slice(groups.length).map(value),
		events.map((e) => e.id),
	);
}

/** 503 naming the hubs that did not take the events (logged with their errors). */
function unavailable(hubs: string[], errors: unknown): ApiError {
	console.error(JSON.stringify({ level: "error", msg: "publish failed", hubs, error: String(errors) }));
	return new ApiError("service_unavailable", "some hubs did not take the events; retry the same request", {
		details: hubs.map((hub) => ({ parameter: "hub", message: `${hub} is unavailable` })),
		headers: { "Retry-After": "1" },
	});
}

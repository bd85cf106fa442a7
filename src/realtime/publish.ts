// Routing published events to the hubs: each event about a repository goes to that
// repository's RepoHub, and every event goes to every GlobalHub shard, by RPC, one call per hub
// per request. Each hub dedupes on the event id by itself, so a retry after a partial failure
// (some hubs reached, one not: 503) completes the missing hubs without delivering twice.
import type { Config } from "../env";
import { ApiError } from "../errors";
import type { EventInput, HubEvent, PublishResult } from "./protocol";

export interface Delivery {
	id: string;
	/** "duplicate" when every hub had already seen this id (a retry): nothing was re-sent. */
	status: "accepted" | "duplicate";
	seq: { repository: number | null; global: number[] };
}

/** Fills in the id and timestamp and normalises ids, as every hub must store the same event. */
export function toHubEvent(input: EventInput, now: Date): HubEvent {
	const event: HubEvent = {
		id: input.id ?? crypto.randomUUID(),
		type: input.type,
		timestamp: new Date(input.timestamp ?? now).toISOString(),
		data: input.data,
	};
	if (input.repository_id) event.repository_id = input.repository_id.toLowerCase();
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

function hubOf(env: Env, kind: "repo" | "global", name: string) {
	const ns = kind === "repo" ? env.REPO_HUB : env.GLOBAL_HUB;
	return ns.get(ns.idFromName(name));
}

/** Publishes to every hub concerned; 503 (retry the same request) if any hub failed. */
export async function deliver(env: Env, config: Config, events: HubEvent[]): Promise<Delivery[]> {
	const groups = [...groupByRepository(events)];
	const repoCalls = groups.map(([id, list]) => hubOf(env, "repo", id).publish(list.map((x) => x.event)));
	const shardCalls = Array.from({ length: config.GLOBAL_HUB_SHARDS }, (_, n) =>
		hubOf(env, "global", `global:${n}`).publish(events),
	);
	const settled = await Promise.allSettled([...repoCalls, ...shardCalls]);
	const failed = settled.flatMap((s, i) => {
		if (s.status === "fulfilled") return [];
		const hub = i < groups.length ? `repository ${groups[i]?.[0]}` : `global shard ${i - groups.length}`;
		console.error(JSON.stringify({ level: "error", msg: "publish failed", hub, error: String(s.reason) }));
		return [{ parameter: "hub", message: `${hub} is unavailable` }];
	});
	if (failed.length > 0) {
		throw new ApiError("service_unavailable", "some hubs did not take the events; retry the same request", {
			details: failed,
			headers: { "Retry-After": "1" },
		});
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

// RepoHub: the per-repository WebSocket hub, one Durable Object per repository id
// (idFromName(<lower-case repository id>)). Everything else is in the shared Hub (hub.ts); what
// is RepoHub's own is the publish path of a request whose events are all about its repository:
//
//   publishAndForward()  1. the Redis part of the summary invalidation (the Worker has done its
//                           isolate and edge parts), 2. publish() here, 3. every GlobalHub shard.
//
// Steps 1 and 3 go through a Coalescer each (one call in flight; what arrives meanwhile goes in
// the next call): a repository receiving events back to back costs one Redis script and one call
// per shard per round trip instead of per event (a Durable Object serves ~1,000 requests/s, and
// every shard sees every event). An event waits for an invalidation that began after it
// arrived, so clients reacting to it read fresh data, and the call answers once every shard has
// logged it: the 202 means "on every stream, with these seqs". A shard failure fails the call
// (503: the sender retries the same ids; the hubs dedupe them, and a retry is forwarded again,
// so a shard that missed it catches up); an invalidation failure is answered, not thrown (the
// events are delivered; the Worker answers 503 so the sender's retry invalidates again).
import type { LocationHint } from "../env";
import { invalidateInRedis, logCacheError } from "../lib/cache";
import { redisFor } from "../lib/redis";
import { globalShardId, globalShardOf } from "./addressing";
import { Coalescer } from "./coalesce";
import { Hub } from "./hub";
import { type HubEvent, type PublishResult, publicEvent } from "./protocol";

/** Events per forward call (see Coalescer.maxItems: 200 × 64 KB is within the RPC limit). */
const FORWARD_MAX_EVENTS = 200;
/** Key pairs per invalidation script (one repository's summary: one pair per request). */
const INVALIDATE_MAX_PAIRS = 200;

export interface PublishOptions {
	/** GLOBAL_HUB_SHARDS: forward to shards 0..shards-1. */
	shards: number;
	/** GLOBAL_HUB_LOCATION: the shards' location hint. */
	location?: LocationHint;
	/** The Redis part of the cache invalidation, or null when there is no Redis. */
	invalidate: { redis: { url: string; token: string }; keys: string[] } | null;
}

export interface Forwarded {
	repository: PublishResult[];
	/** Per shard, in shard order: each event's result there. */
	global: PublishResult[][];
	/** False when Redis could not be told (the events were still delivered). */
	invalidated: boolean;
}

export class RepoHub extends Hub {
	protected readonly kind = "repo";
	readonly #forwarders = new Map<number, Coalescer<HubEvent, PublishResult>>();
	/** Per Redis endpoint (url + token): the batcher of its invalidation scripts. */
	readonly #invalidators = new Map<string, Coalescer<string[], true>>();

	/** RPC: see the file comment. */
	async publishAndForward(events: HubEvent[], opts: PublishOptions): Promise<Forwarded> {
		let invalidated = true;
		if (opts.invalidate) {
			const { redis, keys } = opts.invalidate;
			invalidated = await this.#invalidator(redis)
				.submit([keys])
				.then(
					() => true,
					(err: unknown) => {
						logCacheError("redis delete", err);
						return false;
					},
				);
		}
		const repository = this.publish(events);
		// The shards carry the public part of each event only (publicEvent).
		const forwarded = events.map(publicEvent);
		const global = await Promise.all(
			Array.from({ length: opts.shards }, (_, n) => this.#forwarder(n, opts.location).submit(forwarded)),
		);
		return { repository, global, invalidated };
	}

	/** Forward calls made to the shards since this object started, and the events they carried. */
	get forwarded(): { calls: number; events: number } {
		const { calls, items } = totals(this.#forwarders.values());
		return { calls, events: items };
	}

	/** Invalidation scripts run since this object started, and the requests they served. */
	get invalidations(): { calls: number; requests: number } {
		const { calls, items } = totals(this.#invalidators.values());
		return { calls, requests: items };
	}

	#forwarder(shard: number, location: LocationHint | undefined): Coalescer<HubEvent, PublishResult> {
		let f = this.#forwarders.get(shard);
		if (!f) {
			// The id is computed once; a stub per call, so a call that broke its stub does not break
			// the next one.
			const id = globalShardId(this.env, shard);
			f = new Coalescer({
				send: (items) => globalShardOf(this.env, id, location).publish(items),
				maxItems: FORWARD_MAX_EVENTS,
			});
			this.#forwarders.set(shard, f);
		}
		return f;
	}

	#invalidator(settings: { url: string; token: string }): Coalescer<string[], true> {
		const memo = `${settings.url}\n${settings.token}`;
		let f = this.#invalidators.get(memo);
		if (!f) {
			// One settings object per endpoint for this object's life: redisFor keeps one client per
			// settings object (the RPC argument is a new object every call).
			const stable = { url: settings.url, token: settings.token };
			f = new Coalescer<string[], true>({
				send: async (requests) => {
					await invalidateInRedis(redisFor(stable, "invalidate"), requests.flat());
					return requests.map(() => true as const);
				},
				maxItems: INVALIDATE_MAX_PAIRS,
			});
			this.#invalidators.set(memo, f);
		}
		return f;
	}
}

function totals(coalescers: Iterable<{ sent: { calls: number; items: number } }>): {
	calls: number;
	items: number;
} {
	let calls = 0;
	let items = 0;
	for (const c of coalescers) {
		calls += c.sent.calls;
		items += c.sent.items;
	}
	return { calls, items };
}

// RepoHub: the per-repository WebSocket hub, one Durable Object per repository id
// (idFromName(<lower-case repository id>)). Everything else is in the shared Hub (hub.ts); what
// is RepoHub's own is forwarding its events to the global shards.
//
// Forwarding: publishAndForward() logs the events here, then hands them to each GlobalHub shard
// through a Coalescer per shard (one call in flight per shard; events that arrive meanwhile go
// in the next call). A repository receiving events back to back costs each shard one call per
// round trip instead of one per event: the Worker makes one RPC per event instead of 1 + N, and
// the shards, which see every event, take them in batches (a Durable Object serves about 1,000
// requests/s). The call answers once every shard has logged the events, so the 202 still means
// "on every stream, with these seqs"; a shard failure fails the call (503: the sender retries
// the same ids; this hub and the shards dedupe them, and a retry is forwarded again so the
// shards that missed it catch up).
import { Coalescer } from "./coalesce";
import { Hub } from "./hub";
import type { HubEvent, PublishResult } from "./protocol";

/** Events per forward call (see Coalescer.maxItems: 200 × 64 KB is within the RPC limit). */
const FORWARD_MAX_EVENTS = 200;

export interface Forwarded {
	repository: PublishResult[];
	/** Per shard, in shard order: each event's result there. */
	global: PublishResult[][];
}

export class RepoHub extends Hub {
	protected readonly kind = "repo";
	readonly #forwarders = new Map<number, Coalescer<HubEvent, PublishResult>>();

	/** RPC: publish() here, then to global shards 0..shards-1, coalesced with concurrent calls. */
	async publishAndForward(events: HubEvent[], shards: number): Promise<Forwarded> {
		const repository = this.publish(events);
		const global = await Promise.all(
			Array.from({ length: shards }, (_, n) => this.#forwarder(n).submit(events)),
		);
		return { repository, global };
	}

	/** Forward calls made to the shards since this object started, and the events they carried. */
	get forwarded(): { calls: number; events: number } {
		let calls = 0;
		let events = 0;
		for (const f of this.#forwarders.values()) {
			calls += f.sent.calls;
			events += f.sent.items;
		}
		return { calls, events };
	}

	#forwarder(shard: number): Coalescer<HubEvent, PublishResult> {
		let f = this.#forwarders.get(shard);
		if (!f) {
			const ns = this.env.GLOBAL_HUB;
			// The id is computed once; a stub per call, so a call that broke its stub does not break
			// the next one.
			const id = ns.idFromName(`global:${shard}`);
			f = new Coalescer({ send: (items) => ns.get(id).publish(items), maxItems: FORWARD_MAX_EVENTS });
			this.#forwarders.set(shard, f);
		}
		return f;
	}
}

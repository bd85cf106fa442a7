// Group commit for calls to one busy receiver: at most one call in flight; submissions that
// arrive meanwhile wait and go together in the next call, in the order they arrived, so N
// concurrent submitters cost one call per round trip instead of N. Each submitter gets back the
// results of its own items (the receiver answers one result per item, in order). A failed call
// fails every submission it carried; the next call is independent.
//
// RepoHub uses one per global shard: a hot repository's events reach each shard in a few calls
// per round trip, not one per event (a Durable Object serves ~1,000 requests/s).

export interface CoalescerOptions<T, R> {
	/** Sends one call; must answer one result per item, in order. */
	send: (items: T[]) => Promise<R[]>;
	/**
	 * Items per call at most; a submission is never split, so one larger than this goes alone.
	 * The bound keeps one call within the RPC message limit (32 MiB: 200 events of 64 KB fit).
	 */
	maxItems: number;
}

interface Pending<T, R> {
	items: T[];
	resolve: (results: R[]) => void;
	reject: (err: unknown) => void;
}

export class Coalescer<T, R> {
	readonly #opts: CoalescerOptions<T, R>;
	#queue: Pending<T, R>[] = [];
	#busy = false;
	/** Calls sent so far and the items they carried. */
	readonly sent = { calls: 0, items: 0 };

	constructor(opts: CoalescerOptions<T, R>) {
		this.#opts = opts;
	}

	/** Calls waiting for the one in flight (for tests and metrics). */
	get waiting(): number {
		return this.#queue.length;
	}

	submit(items: T[]): Promise<R[]> {
		return new Promise<R[]>((resolve, reject) => {
			this.#queue.push({ items, resolve, reject });
			if (!this.#busy) void this.#drain();
		});
	}

	async #drain(): Promise<void> {
		this.#busy = true;
		try {
			while (this.#queue.length > 0) {
				const batch = this.#take();
				const items = batch.flatMap((p) => p.items);
				this.sent.calls++;
				this.sent.items += items.length;
				try {
					const results = await this.#opts.send(items);
					if (results.length !== items.length) {
						throw new Error(`expected ${items.length} results, got ${results.length}`);
					}
					let at = 0;
					for (const p of batch) {
						p.resolve(results.slice(at, at + p.items.length));
						at += p.items.length;
					}
				} catch (err) {
					for (const p of batch) p.reject(err);
				}
			}
		} finally {
			this.#busy = false;
		}
	}

	/** The oldest submissions that fit in one call (always at least one). */
	#take(): Pending<T, R>[] {
		let count = 0;
		let n = 0;
		while (n < this.#queue.length) {
			const size = this.#queue[n]?.items.length ?? 0;
			if (n > 0 && count + size > this.#opts.maxItems) break;
			count += size;
			n++;
		}
		return this.#queue.splice(0, n);
	}
}

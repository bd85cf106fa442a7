// Flood control (pure): token buckets kept in memory only, per connection for client commands
// and replayed bytes, per hub for replayed bytes in all.
// Losing it when the hub hibernates is harmless: a hibernated hub has had no commands to count,
// and a woken one starts the connection with a full burst again.
export class TokenBucket {
	#tokens: number;
	#at: number;

	constructor(
		private readonly capacity: number,
		private readonly perSecond: number,
		now: number,
	) {
		this.#tokens = capacity;
		this.#at = now;
	}

	/** Takes `n` tokens (one by default); false, taking none, when fewer are left. */
	take(now: number, n = 1): boolean {
		if (this.available(now) < n) return false;
		this.#tokens -= n;
		return true;
	}

	/** Tokens left now (refilled for the time since the last call). */
	available(now: number): number {
		const elapsed = Math.max(0, now - this.#at) / 1000;
		this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.perSecond);
		this.#at = now;
		return this.#tokens;
	}
}

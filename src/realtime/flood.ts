// Flood control for client commands (pure): a token bucket per connection, kept in memory only.
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

	/** Takes one token; false when the bucket is empty (the caller closes with 1008). */
	take(now: number): boolean {
		const elapsed = Math.max(0, now - this.#at) / 1000;
		this.#tokens = Math.min(this.capacity, this.#tokens + elapsed * this.perSecond);
		this.#at = now;
		if (this.#tokens < 1) return false;
		this.#tokens -= 1;
		return true;
	}
}

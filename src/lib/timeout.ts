// Bounding work in time: a dependency that hangs must not hang the request.

export class TimeoutError extends Error {
	override name = "TimeoutError";
}

/** Resolves like `work`, or rejects with TimeoutError after `ms`. The loser is never left unhandled. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what = "operation"): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
	});
	work.catch(() => undefined);
	try {
		return await Promise.race([work, timeout]);
	} finally {
		if (timer !== undefined) clearTimeout(timer);
	}
}

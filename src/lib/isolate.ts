// This isolate's own figures: when it answered its first request (Workers' clock does not run
// during module init, so the first request stands in for the start) and how many it answered.

let startedAt: number | undefined;
let requests = 0;

/** Called once per request by the request-context middleware. */
export function noteRequest(now: number): void {
	startedAt ??= now;
	requests++;
}

export function isolateFigures(now: number): { startedAt: number; requests: number } {
	startedAt ??= now;
	return { startedAt, requests };
}

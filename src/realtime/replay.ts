// Catch-up decisions (pure): what a client resuming with `since` gets from a hub's bounded log.
import type { ResetReason } from "./protocol";

export interface LogWindow {
	/** The hub's latest seq (0 before the first event). */
	head: number;
	/** The oldest seq still in the log; head + 1 when the log is empty. */
	oldest: number;
}

export type CatchUp =
	| { kind: "none" }
	/** bytes: the frames after `after` (all types), when the log has counted them. */
	| { kind: "replay"; after: number; bytes?: number }
	| { kind: "reset"; reason: ResetReason };

/**
 * `since` is the last seq the client saw. Replays (since, head] when the log still holds
 * since + 1; a seq the hub never issued (a different shard, a wiped hub) or a gap older than
 * the log means the client must refetch state: `reset`.
 */
export function planCatchUp(since: number, log: LogWindow): CatchUp {
	if (since > log.head) return { kind: "reset", reason: "unknown_seq" };
	if (since === log.head) return { kind: "none" };
	if (since + 1 < log.oldest) return { kind: "reset", reason: "gap_too_old" };
	return { kind: "replay", after: since };
}

/** A stored live frame (`{…}`) marked as a resend, without parsing it. */
export function asReplayFrame(frame: string): string {
	return `${frame.slice(0, -1)},"replay":true}`;
}

// One connection's state (pure): its attachment (what survives hibernation), the in-memory
// part rebuilt around it (the flood buckets), and the welcome frame it is greeted with.
import { ALL } from "./filter";
import { TokenBucket } from "./flood";
import { type Attachment, type ConnectInfo, type ControlMessage, HEARTBEAT, LIMITS } from "./protocol";

export interface Conn {
	att: Attachment;
	bucket: TokenBucket;
	/** Replayed bytes this connection may still be sent (LIMITS.replayBurstBytes, refilled). */
	replay: TokenBucket;
}

export function attachmentFor(info: ConnectInfo, head: number, now: number): Attachment {
	const att: Attachment = {
		v: 1,
		sub: info.sub,
		caller: info.caller,
		roles: info.roles,
		scope: info.scope,
		filter: ALL,
		seq: head,
		connected_at: now,
	};
	if (info.shard !== undefined) att.shard = info.shard;
	if (info.site !== undefined) att.site = info.site;
	return att;
}

/** Wraps an attachment (new, or deserialised after a wake-up) with a full flood bucket. */
export function connOf(att: Attachment, now: number): Conn {
	return {
		att,
		bucket: new TokenBucket(LIMITS.commandBurst, LIMITS.commandsPerSecond, now),
		replay: new TokenBucket(LIMITS.replayBurstBytes, LIMITS.replayBytesPerMinute / 60, now),
	};
}

/**
 * The keys a socket counts under for the per-caller caps: its caller, and for an IPv6 caller its
 * /48 (`site|…`), so a site cannot multiply the cap over its 65,536 /64s. Sockets accepted before
 * callers were recorded count under "".
 */
export function holdersOf(who: { caller?: string; site?: string }): string[] {
	const caller = who.caller ?? "";
	return who.site ? [caller, `site|${who.site}`] : [caller];
}

export function capOf(holder: string): number {
	return holder.startsWith("site|") ? LIMITS.socketsPerSite : LIMITS.socketsPerCaller;
}

/** An attachment this code wrote (deploys close every socket, so no older shapes exist). */
export function isAttachment(value: unknown): value is Attachment {
	return typeof value === "object" && value !== null && (value as { v?: unknown }).v === 1;
}

export function welcomeFor(info: ConnectInfo, att: Attachment): ControlMessage {
	return {
		type: "welcome",
		hub: info.hub,
		repository_id: info.repository_id,
		shard: info.shard,
		shards: info.shards,
		seq: att.seq,
		scope: att.scope,
		filter: att.filter,
		heartbeat: HEARTBEAT,
		limits: {
			message_bytes: LIMITS.clientMessageBytes,
			commands_per_second: LIMITS.commandsPerSecond,
			burst: LIMITS.commandBurst,
		},
	};
}

// The real-time wire, typed: event types, the events backend services POST, the frames a hub
// sends (events plus welcome/ack/pong/error/reset) and the commands a client may send, the
// connect info the Worker hands a hub, the per-socket attachment, close codes and limits.
// Everything on the wire is a zod-validated discriminated union (STYLE.md item 7).
import { z } from "zod";
import { ROLES } from "../middleware/auth";

/** Event types the analysis pipeline emits; each is about one repository. */
export const KNOWN_EVENT_TYPES = [
	"analysis_started",
	"analysis_completed",
	"analysis_failed",
	"insight_added",
	"repository_updated",
] as const;
export type KnownEventType = (typeof KNOWN_EVENT_TYPES)[number];

/**
 * The rule for other types: `x-` then 1-63 of a-z 0-9 _ . - (e.g. `x-deploy.finished`); such
 * custom events may omit repository_id (global stream only). Anything else is refused (400).
 * Control frame names (welcome, ack, pong, error, reset) can never be event types.
 */
export const CUSTOM_EVENT_TYPE = /^x-[a-z0-9][a-z0-9_.-]{0,62}$/;
export const EventType = z.union([
	z.enum(KNOWN_EVENT_TYPES),
	z.string().regex(CUSTOM_EVENT_TYPE, "type must be a known event type or match x-[a-z0-9][a-z0-9_.-]*"),
]);
export type EventType = z.infer<typeof EventType>;

export function isKnownType(type: string): type is KnownEventType {
	return (KNOWN_EVENT_TYPES as readonly string[]).includes(type);
}

export const LIMITS = {
	/** A POST /api/v1/events body; also the largest one event may serialise to in a batch. */
	eventBytes: 64 * 1024,
	/** A POST /api/v1/events/batch body. */
	batchBytes: 1024 * 1024,
	batchEvents: 100,
	/** Nesting of an event's `data`: structured clone (the hub RPCs) overflows at a few thousand. */
	dataDepth: 32,
	/** A client frame larger than this closes the socket with 1009. */
	clientMessageBytes: 4096,
	/** Token bucket per connection for client commands (auto-answered pings do not count). */
	commandBurst: 20,
	commandsPerSecond: 10,
	/** Types named at connect time (`?types=`), each one socket tag (10 tags at most). */
	connectTypes: 8,
	/** Entries in a connection's live filter. */
	filterTypes: 32,
	/** Sockets per hub; the platform's ceiling is 32,768. */
	socketsPerHub: 32_000,
	/**
	 * Sockets one caller (token subject, else client address: see ConnectInfo.caller) may hold
	 * open on one hub; the next is refused with 429. Per hub: on the global stream a caller that
	 * pins `?shard=` can reach this many on every shard, so the most one caller holds there is
	 * this × GLOBAL_HUB_SHARDS, opened no faster than its `read` budget allows.
	 */
	socketsPerCaller: 100,
	/** Sockets the /48 of IPv6 callers may hold on one hub in all: 16 callers' worth. */
	socketsPerSite: 1_600,
	/**
	 * Events logged but not yet broadcast, at most (count or frame bytes): past either, publish()
	 * broadcasts inside the call, so producers that outrun the fan-out wait for it again.
	 */
	unsentEvents: 256,
	unsentBytes: 4 * 1024 * 1024,
	/**
	 * Replayed bytes (catch-up on connect or `resume`), per connection: a burst, then a refill per
	 * minute; per hub, for every connection together: a burst, then a refill per second. A
	 * replay larger than what either has left is answered with a reset (too_much_to_replay), so
	 * resume floods cannot stall a hub's thread with send loops or pile output into its memory.
	 */
	replayBurstBytes: 2 * 1024 * 1024,
	replayBytesPerMinute: 1024 * 1024,
	hubReplayBurstBytes: 4 * 1024 * 1024,
	hubReplayBytesPerSecond: 1024 * 1024,
	ticketTtlSeconds: 60,
} as const;

/** Close codes this service uses (RFC 6455 §7.4.1). */
export const CLOSE = {
	normal: 1000,
	/** Server going away (deploy, eviction): reconnect with jittered backoff and `since`. */
	goingAway: 1001,
	/** Flood: more commands than the token bucket allows. */
	policyViolation: 1008,
	/** A client frame over LIMITS.clientMessageBytes. */
	tooBig: 1009,
	internalError: 1011,
} as const;

/** How deeply a JSON value nests (objects and arrays), walked without recursion. */
export function jsonDepth(value: unknown): number {
	let max = 0;
	const stack: [unknown, number][] = [[value, 0]];
	for (let item = stack.pop(); item; item = stack.pop()) {
		const [v, depth] = item;
		if (v === null || typeof v !== "object") continue;
		max = Math.max(max, depth + 1);
		for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
	}
	return max;
}

const EventId = z
	.string()
	.min(1)
	.max(128)
	.regex(/^[A-Za-z0-9._:-]+$/, "id must be 1-128 of A-Z a-z 0-9 . _ : -");

/** What a backend service POSTs. Events of the known types must name their repository. */
export const EventInput = z
	.object({
		id: EventId.optional(),
		type: EventType,
		repository_id: z.guid({ message: "repository_id must be a UUID" }).optional(),
		timestamp: z.iso.datetime({ offset: true }).optional(),
		data: z
			.record(z.string(), z.unknown())
			.default({})
			.refine((d) => jsonDepth(d) <= LIMITS.dataDepth, {
				message: `data may nest at most ${LIMITS.dataDepth} levels deep`,
			}),
	})
	.strict()
	.refine((e) => e.repository_id !== undefined || !isKnownType(e.type), {
		path: ["repository_id"],
		message: "repository_id is required for this event type",
	});
export type EventInput = z.infer<typeof EventInput>;

export const EventBatchInput = z
	.object({ events: z.array(EventInput).min(1).max(LIMITS.batchEvents) })
	.strict();

/** An event as hubs store and deliver it: id and timestamp filled in, ids lower-cased. */
export interface HubEvent {
	id: string;
	/**
	 * What hubs dedupe on (publish.ts dedupeKey): the producer, the repository and the id, so one
	 * service cannot pre-empt another's ids, and one id about two repositories is two events on
	 * the global shards as it is on the two repository hubs. Never sent to clients. Absent: the id.
	 */
	key?: string;
	type: string;
	repository_id?: string;
	timestamp: string;
	data: Record<string, unknown>;
}

/**
 * The keys of an event's `data` that the public global stream carries, with scalar values only
 * (strings up to PUBLIC_STRING_CHARS, finite numbers, booleans), at most PUBLIC_DATA_BYTES of
 * them in all, in this order. Everything else stays on the repository stream, which needs a
 * token: anyone may watch the global stream, and it is where every event goes.
 */
export const PUBLIC_DATA_KEYS = [
	"status",
	"stage",
	"progress",
	"insights_added",
	"analysis_duration",
	"kind",
	"title",
	"language",
	"stars",
	"forks",
	"score",
	"url",
] as const;
const PUBLIC_STRING_CHARS = 256;
/** Bounds a global frame (~1.5 KB with its envelope), so a broadcast to a full shard is bounded. */
export const PUBLIC_DATA_BYTES = 1024;

const utf8 = new TextEncoder();

/** The event as the global stream carries it: `data` cut to its public part (PUBLIC_DATA_KEYS). */
export function publicEvent(event: HubEvent): HubEvent {
	const data: Record<string, unknown> = {};
	let bytes = 2; // the braces
	for (const key of PUBLIC_DATA_KEYS) {
		const value = event.data[key];
		const scalar =
			(typeof value === "string" && value.length <= PUBLIC_STRING_CHARS) ||
			(typeof value === "number" && Number.isFinite(value)) ||
			typeof value === "boolean";
		if (!scalar) continue;
		// UTF-8 bytes of `"key":value,` as the frame will carry them.
		const size = utf8.encode(`${JSON.stringify(key)}:${JSON.stringify(value)},`).byteLength;
		if (bytes + size > PUBLIC_DATA_BYTES) break;
		data[key] = value;
		bytes += size;
	}
	return { ...event, data };
}

/** One hub's answer for one published event. */
export interface PublishResult {
	id: string;
	seq: number;
	duplicate: boolean;
}

/** The seed's message plus the hub's `seq` and the event `id`; `replay` on resent events. */
export const EventMessage = z.object({
	type: EventType,
	id: z.string(),
	seq: z.number().int().positive(),
	repository_id: z.string().optional(),
	timestamp: z.string(),
	data: z.record(z.string(), z.unknown()),
	replay: z.literal(true).optional(),
});
export type EventMessage = z.infer<typeof EventMessage>;

export const Filter = z.discriminatedUnion("mode", [
	z.object({ mode: z.literal("all"), except: z.array(z.string()) }),
	z.object({ mode: z.literal("only"), types: z.array(z.string()) }),
]);
export type Filter = z.infer<typeof Filter>;

/** Connect-time bound of a connection's filter; also its socket tags. */
export type Scope = "*" | string[];

export const ERROR_CODES = [
	"invalid_json",
	"invalid_message",
	"unknown_command",
	"unsupported_data",
	"outside_scope",
	"too_many_filters",
	"internal_error",
] as const;
export type WsErrorCode = (typeof ERROR_CODES)[number];

export const RESET_REASONS = ["gap_too_old", "unknown_seq", "too_much_to_replay"] as const;
export type ResetReason = (typeof RESET_REASONS)[number];

const CommandId = z.union([z.string().max(64), z.number()]).optional();

export const ControlMessage = z.discriminatedUnion("type", [
	z.object({
		type: z.literal("welcome"),
		hub: z.enum(["repository", "global"]),
		repository_id: z.string().optional(),
		shard: z.number().int().optional(),
		shards: z.number().int().optional(),
		/** The hub's latest seq when the connection was accepted (before any replay). */
		seq: z.number().int(),
		scope: z.union([z.literal("*"), z.array(z.string())]),
		filter: Filter,
		heartbeat: z.object({ send: z.string(), expect: z.string() }),
		limits: z.object({ message_bytes: z.number(), commands_per_second: z.number(), burst: z.number() }),
	}),
	z.object({
		type: z.literal("ack"),
		id: CommandId,
		command: z.enum(["subscribe", "unsubscribe", "resume"]),
		filter: Filter,
		seq: z.number().int(),
		replayed: z.number().int().optional(),
	}),
	z.object({ type: z.literal("pong"), id: CommandId, seq: z.number().int().optional() }),
	z.object({
		type: z.literal("error"),
		id: CommandId,
		code: z.enum(ERROR_CODES),
		message: z.string(),
	}),
	z.object({
		type: z.literal("reset"),
		reason: z.enum(RESET_REASONS),
		/** Refetch state, then continue from here: live events follow with higher seqs. */
		seq: z.number().int(),
		oldest_seq: z.number().int(),
	}),
]);
export type ControlMessage = z.infer<typeof ControlMessage>;

/** Everything a hub sends. Control types are reserved, so they never collide with events. */
export const ServerMessage = z.union([ControlMessage, EventMessage]);
export type ServerMessage = z.infer<typeof ServerMessage>;

const FilterList = z
	.array(z.union([EventType, z.literal("*")]))
	.min(1)
	.max(LIMITS.filterTypes);

export const ClientCommand = z.discriminatedUnion("type", [
	z.object({ type: z.literal("subscribe"), id: CommandId, events: FilterList }),
	z.object({ type: z.literal("unsubscribe"), id: CommandId, events: FilterList }),
	z.object({ type: z.literal("resume"), id: CommandId, since: z.number().int().min(0) }),
	z.object({ type: z.literal("ping"), id: CommandId }),
]);
export type ClientCommand = z.infer<typeof ClientCommand>;
export const COMMAND_TYPES = ["subscribe", "unsubscribe", "resume", "ping"] as const;

/** The exact frames of the hibernation auto-response: answered without waking the hub. */
export const HEARTBEAT = { send: '{"type":"ping"}', expect: '{"type":"pong"}' } as const;

/** What the Worker tells a hub about a connection (header X-GI-Connect, JSON). */
export const ConnectInfo = z.object({
	hub: z.enum(["repository", "global"]),
	repository_id: z.string().optional(),
	shard: z.number().int().min(0).optional(),
	shards: z.number().int().min(1).optional(),
	sub: z.string().max(1024).nullable(),
	/**
	 * Who holds the socket, for the per-caller cap: "sub:<token subject>" when the caller
	 * authenticated, else the client's address as the rate limiter keys it (clientKey).
	 */
	caller: z.string().max(1100).default(""),
	/** An IPv6 caller's /48 (rate-limit.ts siteKey): counted too, against LIMITS.socketsPerSite. */
	site: z.string().max(64).optional(),
	roles: z.array(z.enum(ROLES)),
	scope: z.union([z.literal("*"), z.array(EventType).max(LIMITS.connectTypes)]),
	since: z.number().int().min(0).nullable(),
	/** The Worker already knows `since` cannot be honoured here (e.g. another shard's seq). */
	reset: z.enum(RESET_REASONS).optional(),
	/** The subprotocol to echo in the 101 (only ever "gitinsight.v1"). */
	protocol: z.string().nullable(),
});
export type ConnectInfo = z.infer<typeof ConnectInfo>;
export const CONNECT_HEADER = "x-gi-connect";
export const SUBPROTOCOL = "gitinsight.v1";

/** Per-socket state that survives hibernation (serializeAttachment; well under 16 KB). */
export interface Attachment {
	v: 1;
	sub: string | null;
	/** ConnectInfo.caller: what the per-caller socket count is kept by (absent: accepted before). */
	caller?: string;
	/** ConnectInfo.site, when the caller has one. */
	site?: string;
	roles: ConnectInfo["roles"];
	scope: Scope;
	filter: Filter;
	/** The seq this connection was caught up to when the attachment was last written. */
	seq: number;
	connected_at: number;
	shard?: number;
}

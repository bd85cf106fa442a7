// Analytics Engine datapoints: one typed, versioned layout per kind of event, and the writer.
//
// Layout version 1 (blob2 = "1"). Every point names its kind in blob1 and its layout version in
// blob2, so queries can select a layout and a later version can move slots without mixing.
//
//   kind "request"  one per HTTP request the Worker answers (not /ping)
//     index1  "request:<route pattern>"          (AE samples equitably per index value)
//     blob3   method            blob4  route pattern (never the raw path; "unmatched" for 404s)
//     blob5   status code       blob6  cache result: hit | stale | miss | "" (not cached)
//     blob7   cache tier: memory | edge | redis | origin | ""
//     blob8   colo ("" when unknown)   blob9  error code ("" on success)
//     blob10  caller: anonymous | user | admin | service
//     double1 duration in seconds      double2 status code      double3 response bytes (-1 unknown)
//
//   kind "hub"      one per socket connect/disconnect and per publish, from the Durable Objects
//     index1  "hub:<hub name>"
//     blob3   hub kind: repo | global   blob4  hub name   blob5  action: connect | disconnect |
//             publish | alive (an hourly report while sockets are open, so quiet hubs stay counted)
//     double1 sockets open after the action   double2 events newly logged   double3 messages sent
//     double4 the hub's report clock (ms, strictly increasing per hub instance): AE timestamps
//             are whole seconds, so "latest report" is argMax(double1, double4), not by timestamp
//
//   kind "ingest"   one per event type per POST /api/v1/events[/batch]
//     index1  "ingest:<type>"
//     blob3   event type (custom x-* types are counted as "custom")
//     double1 events accepted   double2 duplicates (ids seen before)
//
// Writing never throws and never waits: writeDataPoint is fire-and-forget, and the optional
// local sink (AE_SINK_URL, dev and tests only: Analytics Engine has no local storage) is posted
// to from ctx.waitUntil, batched per isolate.
import type { BackgroundContext } from "../deps";

export const LAYOUT_VERSION = "1";

export const CACHE_RESULTS = ["hit", "stale", "miss"] as const;
export const CACHE_TIERS = ["memory", "edge", "redis", "origin"] as const;

export interface RequestPoint {
	method: string;
	route: string;
	status: number;
	cache: (typeof CACHE_RESULTS)[number] | "";
	tier: (typeof CACHE_TIERS)[number] | "";
	colo: string;
	errorCode: string;
	caller: "anonymous" | "user" | "admin" | "service";
	durationSeconds: number;
	responseBytes: number;
}

export interface HubPoint {
	hubKind: "repo" | "global";
	hub: string;
	action: "connect" | "disconnect" | "publish" | "alive";
	sockets: number;
	published: number;
	delivered: number;
	reportedAt: number;
}

export interface IngestPoint {
	type: string;
	accepted: number;
	duplicates: number;
}

/** AE allows one index of at most 96 bytes; longer values would drop the whole point. */
const MAX_INDEX_BYTES = 96;
/** 16 KB of blobs per point: no blob of ours comes near, but a route or name is capped anyway. */
const MAX_BLOB_CHARS = 256;

function index(value: string): string {
	const bytes = new TextEncoder().encode(value);
	if (bytes.length <= MAX_INDEX_BYTES) return value;
	// Cut on a character boundary: decode the prefix and drop a trailing partial character.
	return new TextDecoder().decode(bytes.slice(0, MAX_INDEX_BYTES)).replace(/\uFFFD$/, "");
}

function blob(value: string): string {
	return value.length <= MAX_BLOB_CHARS ? value : value.slice(0, MAX_BLOB_CHARS);
}

/** Methods kept as themselves in datapoints and logs; any other token is "OTHER". */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The method label: a caller can send any method token, and each would be a new label value. */
export function methodLabel(method: string): string {
	return KNOWN_METHODS.has(method) ? method : "OTHER";
}

export function requestDataPoint(p: RequestPoint): AnalyticsEngineDataPoint {
	return {
		indexes: [index(`request:${p.route}`)],
		blobs: [
			"request",
			LAYOUT_VERSION,
			methodLabel(p.method),
			blob(p.route),
			String(p.status),
			p.cache,
			p.tier,
			blob(p.colo),
			blob(p.errorCode),
			p.caller,
		],
		doubles: [p.durationSeconds, p.status, p.responseBytes],
	};
}

export function hubDataPoint(p: HubPoint): AnalyticsEngineDataPoint {
	return {
		indexes: [index(`hub:${p.hub}`)],
		blobs: ["hub", LAYOUT_VERSION, p.hubKind, blob(p.hub), p.action],
		doubles: [p.sockets, p.published, p.delivered, p.reportedAt],
	};
}

/** Event types outside the pipeline's own are counted together, so labels stay bounded. */
export function ingestTypeLabel(type: string): string {
	return type.startsWith("x-") ? "custom" : type;
}

export function ingestDataPoint(p: IngestPoint): AnalyticsEngineDataPoint {
	const type = ingestTypeLabel(p.type);
	return {
		indexes: [index(`ingest:${type}`)],
		blobs: ["ingest", LAYOUT_VERSION, blob(type)],
		doubles: [p.accepted, p.duplicates],
	};
}

/** What the local sink receives: the points as written, with their write time. */
export interface SinkBatch {
	dataset: string;
	points: { timestamp: number; indexes: string[]; blobs: string[]; doubles: number[] }[];
}

const SINK_MAX_BATCH = 500;
const SINK_TIMEOUT_MS = 2000;

/** Points held while the sink is slow; beyond this the oldest are dropped. */
const SINK_MAX_PENDING = 10_000;

// Isolate-scoped buffers for the local sink, one per destination (sink URL + dataset): points
// from concurrent requests go out together.
interface Buffer {
	points: SinkBatch["points"];
	/** When the running flush started (0: none); one cut off with its request is retried later. */
	flushingSince: number;
}
const FLUSH_DEAD_MS = 10_000;
const buffers = new Map<string, Buffer>();
let sinkFailures = 0;

async function flushSink(url: string, dataset: string, buffer: Buffer): Promise<void> {
	const pending = buffer.points;
	const started = Date.now();
	// Bounded, so it never outlives its request's waitUntil: later writes start another flush.
	while (pending.length > 0 && Date.now() - started < SINK_TIMEOUT_MS) {
		const points = pending.splice(0, SINK_MAX_BATCH);
		try {
			const res = await fetch(url, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ dataset, points } satisfies SinkBatch),
				signal: AbortSignal.timeout(SINK_TIMEOUT_MS),
			});
			await res.body?.cancel();
			if (!res.ok) throw new Error(`sink answered ${res.status}`);
		} catch (err) {
			// Metrics are best-effort: the points are dropped, and the first failures are logged.
			if (sinkFailures++ < 3) {
				console.warn(
					JSON.stringify({
						level: "warn",
						msg: "metrics sink unreachable",
						error: err instanceof Error ? err.name : "unknown",
					}),
				);
			}
			pending.length = 0;
			return;
		}
	}
}

export interface MetricsOptions {
	dataset: AnalyticsEngineDataset | undefined;
	/** AE dataset name (for the local sink). */
	datasetName: string;
	sinkUrl: string | undefined;
	ctx: BackgroundContext;
}

/** The writer handed to routes and Durable Objects. */
export class Metrics {
	readonly #opts: MetricsOptions;

	constructor(opts: MetricsOptions) {
		this.#opts = opts;
	}

	write(point: AnalyticsEngineDataPoint): void {
		const { dataset, sinkUrl, datasetName, ctx } = this.#opts;
		try {
			dataset?.writeDataPoint(point);
		} catch (err) {
			// A binding error must never reach the response; it is logged once per isolate.
			if (sinkFailures++ < 3) {
				console.warn(
					JSON.stringify({
						level: "warn",
						msg: "analytics engine write failed",
						error: err instanceof Error ? err.message : "unknown",
					}),
				);
			}
		}
		if (!sinkUrl) return;
		const dest = `${sinkUrl} ${datasetName}`;
		let buffer = buffers.get(dest);
		if (!buffer) {
			buffer = { points: [], flushingSince: 0 };
			buffers.set(dest, buffer);
		}
		const pending = buffer.points;
		pending.push({
			timestamp: Date.now(),
			indexes: (point.indexes ?? []).map(String),
			blobs: (point.blobs ?? []).map((b) => (typeof b === "string" ? b : "")),
			doubles: [...(point.doubles ?? [])],
		});
		if (pending.length > SINK_MAX_PENDING) pending.splice(0, pending.length - SINK_MAX_PENDING);
		const now = Date.now();
		if (buffer.flushingSince !== 0 && now - buffer.flushingSince < FLUSH_DEAD_MS) return;
		buffer.flushingSince = now;
		const b = buffer;
		const release = () => {
			if (b.flushingSince === now) b.flushingSince = 0;
		};
		try {
			ctx.waitUntil(flushSink(sinkUrl, datasetName, b).finally(release));
		} catch {
			// Outside a request (no waitUntil): the next write flushes the buffer.
			release();
		}
	}
}

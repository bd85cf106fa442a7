// Reading the aggregates behind /metrics and /api/v1/system/stats from the Analytics Engine SQL
// API: every query of metrics.queries.ts in parallel, each bounded in time, numbers parsed
// whether AE quotes them (64-bit integers) or not. The snapshot is cached per isolate for
// METRICS_CACHE_TTL_MS with one load in flight at a time; a query that fails keeps its last good
// result, and the snapshot says the source was down. A complete snapshot is also shared through
// the colo's Cache API for the same TTL, so a colo's isolates (every cold one would otherwise
// run all 6 queries) read AE once per TTL between them: the Cloudflare API allows 1,200 requests
// per 5 minutes per user and then blocks every call, deploys included, for 5 minutes (issue 11).
import type { Config } from "../env";
import { DURATION_BUCKETS, metricsQueries } from "./metrics.queries";

/**
 * One AE SQL API query may take this long (real AE queries take seconds); a scrape does not wait
 * for it past WAIT_MS: it answers with the last values read, and the load finishes in the
 * background for the next scrape.
 */
export const QUERY_TIMEOUT_MS = 10_000;
/** The window of the "recent" gauges: cache hit ratio (and, at one minute, request rates). */
export const RATIO_WINDOW_S = 300;
export const RATE_WINDOW_S = 60;

export interface RequestTotal {
	method: string;
	endpoint: string;
	status: string;
	requests: number;
	durationSum: number;
	/** Cumulative counts for each of DURATION_BUCKETS (le). */
	buckets: number[];
}

export interface RecentRow {
	cache: string;
	tier: string;
	requests: number;
	durationSum: number;
}

export interface Snapshot {
	requestTotals: RequestTotal[];
	recent5m: RecentRow[];
	recent1m: RecentRow[];
	connections: { hubKind: string; sockets: number; hubs: number }[];
	ingested: { type: string; accepted: number; duplicates: number }[];
	delivered: { hubKind: string; published: number; delivered: number }[];
	/** True when every query of this load answered. */
	sourceUp: boolean;
	/** When the data was last read from AE in full (ms), or null if never. */
	fullAt: number | null;
	takenAt: number;
}

type Row = Record<string, unknown>;

const num = (v: unknown): number => {
	const n = typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
	return Number.isFinite(n) ? n : 0;
};
const str = (v: unknown): string =>
	typeof v === "string" ? v : v === null || v === undefined ? "" : String(v);

export class AeError extends Error {
	override name = "AeError";
}

async function query(config: Config, sql: string): Promise<Row[]> {
	if (!config.AE_SQL_URL) throw new AeError("AE_SQL_URL is not configured");
	const res = await fetch(config.AE_SQL_URL, {
		method: "POST",
		headers: {
			"content-type": "text/plain",
			...(config.AE_API_TOKEN ? { authorization: `Bearer ${config.AE_API_TOKEN}` } : {}),
		},
		body: sql,
		signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
	});
	if (!res.ok) {
		await res.body?.cancel();
		throw new AeError(`AE SQL API answered ${res.status}`);
	}
	const body: unknown = await res.json();
	const data = (body as { data?: unknown } | null)?.data;
	if (!Array.isArray(data)) throw new AeError("AE SQL API answered without a data array");
	return data.filter((r): r is Row => typeof r === "object" && r !== null);
}

function parseRecent(rows: Row[]): RecentRow[] {
	return rows.map((r) => ({
		cache: str(r.cache),
		tier: str(r.tier),
		requests: num(r.requests),
		durationSum: num(r.duration_sum),
	}));
}

const parsers = {
	requestTotals: (rows: Row[]): RequestTotal[] =>
		rows.map((r) => ({
			method: str(r.method),
			endpoint: str(r.endpoint),
			status: str(r.status),
			requests: num(r.requests),
			durationSum: num(r.duration_sum),
			buckets: DURATION_BUCKETS.map((_, i) => num(r[`le_${i}`])),
		})),
	recent5m: parseRecent,
	recent1m: parseRecent,
	connections: (rows: Row[]) =>
		rows.map((r) => ({ hubKind: str(r.hub_kind), sockets: num(r.sockets), hubs: num(r.hubs) })),
	ingested: (rows: Row[]) =>
		rows.map((r) => ({ type: str(r.type), accepted: num(r.accepted), duplicates: num(r.duplicates) })),
	delivered: (rows: Row[]) =>
		rows.map((r) => ({ hubKind: str(r.hub_kind), published: num(r.published), delivered: num(r.delivered) })),
};
type Part = keyof typeof parsers;
type Parts = { [P in Part]: ReturnType<(typeof parsers)[P]> };

function sqlFor(config: Config): Record<Part, string> {
	const q = metricsQueries(config.AE_DATASET);
	return {
		requestTotals: q.requestTotals,
		recent5m: q.recent(RATIO_WINDOW_S),
		recent1m: q.recent(RATE_WINDOW_S),
		connections: q.connections,
		ingested: q.ingested,
		delivered: q.delivered,
	};
}

const EMPTY: Parts = {
	requestTotals: [],
	recent5m: [],
	recent1m: [],
	connections: [],
	ingested: [],
	delivered: [],
};

interface State {
	last: Parts;
	fullAt: number | null;
	cached?: { snapshot: Snapshot; until: number };
	loading?: { promise: Promise<Snapshot>; startedAt: number };
	failures: number;
}

// Per parsed config (the isolate's env, or a test's own), so tests with other sources stay apart.
const states = new WeakMap<Config, State>();

async function load(config: Config, state: State, now: () => number): Promise<Snapshot> {
	const sqls = sqlFor(config);
	const parts = Object.keys(parsers) as Part[];
	const settled = await Promise.allSettled(parts.map((p) => query(config, sqls[p])));
	let up = true;
	const next: Parts = { ...state.last };
	settled.forEach((s, i) => {
		const part = parts[i];
		if (part === undefined) return;
		if (s.status === "fulfilled") {
			// Each part's parser matches its key; TypeScript cannot follow the pairing.
			(next as Record<Part, unknown>)[part] = parsers[part](s.value);
		} else {
			up = false;
			if (state.failures++ % 20 === 0) {
				console.warn(
					JSON.stringify({
						level: "warn",
						msg: "analytics engine query failed",
						part,
						error: s.reason instanceof Error ? `${s.reason.name}: ${s.reason.message}` : "unknown",
					}),
				);
			}
		}
	});
	const takenAt = now();
	state.last = next;
	if (up) state.fullAt = takenAt;
	return { ...next, sourceUp: up, fullAt: state.fullAt, takenAt };
}

/** A shared load older than this is presumed dead (its request was cancelled) and replaced. */
const LOAD_STALE_MS = QUERY_TIMEOUT_MS + 1000;
/**
 * No caller waits on a load for longer than this; it answers with what it has (source down). Under
 * Prometheus' default 10 s scrape timeout.
 */
export const WAIT_MS = 3_000;

/** Where a colo's isolates share the last complete snapshot (the Cache API; null: not shared). */
export interface SharedSnapshot {
	edge: Cache;
	/** The Worker's own hostname: Cache API keys must be URLs on a hostname the zone serves. */
	host: string;
}

/** The colo's shared snapshot for this request: where the Cache API tier is on (deps.edge). */
export function sharedSnapshotOf(deps: { edge: Cache | null; host: string }): SharedSnapshot | null {
	return deps.edge ? { edge: deps.edge, host: deps.host } : null;
}

/** One key per source (the SQL API's URL and the dataset): a deployment has one. */
const sharedKey = (shared: SharedSnapshot, config: Config) =>
	new Request(
		`https://${shared.host}/__gitinsight-metrics/${encodeURIComponent(`${config.AE_SQL_URL ?? ""}|${config.AE_DATASET}`)}`,
	);

function isSnapshot(v: unknown): v is Snapshot {
	if (typeof v !== "object" || v === null) return false;
	const s = v as Record<string, unknown>;
	return Array.isArray(s.requestTotals) && typeof s.takenAt === "number" && s.sourceUp === true;
}

/** The colo's snapshot when it is younger than the TTL; undefined otherwise or on any error. */
async function readShared(shared: SharedSnapshot, config: Config, t: number): Promise<Snapshot | undefined> {
	try {
		const res = await shared.edge.match(sharedKey(shared, config));
		if (!res) return undefined;
		const snapshot: unknown = await res.json();
		return isSnapshot(snapshot) && t - snapshot.takenAt < config.METRICS_CACHE_TTL_MS ? snapshot : undefined;
	} catch {
		return undefined;
	}
}

async function writeShared(shared: SharedSnapshot, config: Config, snapshot: Snapshot): Promise<void> {
	if (!snapshot.sourceUp) return;
	const ttlS = Math.max(1, Math.ceil(config.METRICS_CACHE_TTL_MS / 1000));
	try {
		await shared.edge.put(
			sharedKey(shared, config),
			new Response(JSON.stringify(snapshot), {
				headers: { "content-type": "application/json", "cache-control": `max-age=${ttlS}` },
			}),
		);
	} catch {
		// Not shared this time: the other isolates read AE themselves.
	}
}

/**
 * The cached snapshot, or a fresh one when it is older than METRICS_CACHE_TTL_MS. One load runs
 * at a time per isolate, kept alive by the starting request's ctx.waitUntil; since that request
 * can still be cancelled, every caller also bounds its own wait and falls back to the last
 * values read (source down) rather than hang on another request's work.
 */
export function readSnapshot(
	config: Config,
	ctx: { waitUntil(p: Promise<unknown>): void },
	shared: SharedSnapshot | null = null,
	now: () => number = Date.now,
): Promise<Snapshot> {
	let state = states.get(config);
	if (!state) {
		state = { last: EMPTY, fullAt: null, failures: 0 };
		states.set(config, state);
	}
	const s = state;
	const t = now();
	if (s.cached && s.cached.until > t) return Promise.resolve(s.cached.snapshot);
	if (s.loading === undefined || t - s.loading.startedAt > LOAD_STALE_MS) {
		const startedAt = t;
		const fromAe = async () => {
			const snapshot = await load(config, s, now);
			if (shared) ctx.waitUntil(writeShared(shared, config, snapshot));
			return snapshot;
		};
		const promise = (
			shared && config.METRICS_CACHE_TTL_MS > 0 ? readShared(shared, config, t) : Promise.resolve(undefined)
		)
			.then((found) => {
				if (!found) return fromAe();
				// Another isolate's complete snapshot: its values become this isolate's last ones.
				const { sourceUp: _up, fullAt, takenAt: _at, ...parts } = found;
				s.last = parts;
				s.fullAt = fullAt;
				return found;
			})
			.then((snapshot) => {
				s.cached = { snapshot, until: snapshot.takenAt + config.METRICS_CACHE_TTL_MS };
				return snapshot;
			})
			.finally(() => {
				if (s.loading?.startedAt === startedAt) s.loading = undefined;
			});
		s.loading = { promise, startedAt };
		ctx.waitUntil(promise.catch(() => undefined));
	}
	const fallback = (): Snapshot => ({ ...s.last, sourceUp: false, fullAt: s.fullAt, takenAt: now() });
	let timer: ReturnType<typeof setTimeout> | undefined;
	const timeout = new Promise<Snapshot>((resolve) => {
		timer = setTimeout(() => resolve(fallback()), WAIT_MS);
	});
	return Promise.race([s.loading.promise.catch(fallback), timeout]).finally(() => {
		if (timer !== undefined) clearTimeout(timer);
	});
}

/** Served-from-cache share of cacheable requests, overall and per tier; null without traffic. */
export function cacheRatios(rows: RecentRow[]): Record<"all" | "memory" | "edge" | "redis", number> | null {
	let total = 0;
	const served = { all: 0, memory: 0, edge: 0, redis: 0 };
	for (const r of rows) {
		if (r.cache === "") continue;
		total += r.requests;
		if (r.cache === "hit" || r.cache === "stale") {
			served.all += r.requests;
			if (r.tier === "memory" || r.tier === "edge" || r.tier === "redis") served[r.tier] += r.requests;
		}
	}
	if (total === 0) return null;
	return {
		all: served.all / total,
		memory: served.memory / total,
		edge: served.edge / total,
		redis: served.redis / total,
	};
}

// A hub's durable state in its SQLite storage: the seq counter, a bounded replay log, the
// bounded set of event ids already published (idempotency), and single-use stream tickets.
// Every method is synchronous (ctx.storage.sql), so a hub handler that calls it without
// awaiting anything runs atomically: no publish can interleave with a connect's replay.
//
// Tables (see README "Durable Objects"):
//   hub_events(seq PK, id, type, at, frame) the replay log; frame = the JSON sent live
//   hub_event_ids(id PK, seq, at)           dedupe keys seen (HubEvent.key), kept longer than the log
//   hub_tickets(jti PK, exp)                tickets already used, until exp (the Worker passes exp + tolerance)
import type { HubEvent, PublishResult } from "./protocol";
import { type CatchUp, type LogWindow, planCatchUp } from "./replay";

export interface LogBounds {
	/** Always kept: the last N events, whatever their age. */
	minEvents: number;
	/** Beyond minEvents, events older than this are pruned… */
	maxAgeMs: number;
	/** …and never more than this many are kept. */
	maxEvents: number;
	/** Ids are remembered for dedupe at least this long (bounded by dedupeMaxIds). */
	dedupeMaxAgeMs: number;
	dedupeMaxIds: number;
	/** A catch-up larger than this is answered with a reset instead. */
	replayMaxBytes: number;
	/**
	 * The count bounds are enforced once per this many seqs, each time deleting pruneStep - 1
	 * more rows than needed, so a publish usually runs no DELETE and the counts stay within their
	 * bounds. Needs maxEvents and dedupeMaxIds >= minEvents + pruneStep - 1 (checked).
	 */
	pruneStep: number;
}

const DAY_MS = 24 * 60 * 60_000;
export const DEFAULT_BOUNDS: LogBounds = {
	minEvents: 1_000,
	maxAgeMs: DAY_MS,
	maxEvents: 10_000,
	dedupeMaxAgeMs: DAY_MS,
	dedupeMaxIds: 50_000,
	replayMaxBytes: 8 * 1024 * 1024,
	pruneStep: 64,
};

/** A newly logged event, ready to broadcast. */
export interface Logged {
	seq: number;
	type: string;
	frame: string;
}

export interface LoggedRow extends Logged {
	[key: string]: string | number;
}

const PRUNE_EVERY_MS = 60_000;
/** Appends of more events than this take the batch path (three statements in all). */
const BATCH_FROM = 2;

/** What the log dedupes an event on: its key (HubEvent.key), else its id. */
const keyOf = (event: HubEvent): string => event.key ?? event.id;

/** The frame sent live and replayed: the event with its seq in this hub. */
function frameOf(event: HubEvent, seq: number): string {
	return JSON.stringify({
		type: event.type,
		id: event.id,
		seq,
		repository_id: event.repository_id,
		timestamp: event.timestamp,
		data: event.data,
	});
}

export class EventLog {
	#head: number;
	#prunedAt = 0;

	constructor(
		private readonly storage: DurableObjectStorage,
		private readonly bounds: LogBounds = DEFAULT_BOUNDS,
	) {
		const b = bounds;
		const floor = b.minEvents + b.pruneStep - 1;
		if (!(b.pruneStep >= 1 && b.minEvents >= 1 && b.maxEvents >= floor && b.dedupeMaxIds >= floor)) {
			throw new Error(`event log bounds do not hold: ${JSON.stringify(b)}`);
		}
		const sql = storage.sql;
		sql.exec(`CREATE TABLE IF NOT EXISTS hub_events (
			seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, at INTEGER NOT NULL, frame TEXT NOT NULL)`);
		sql.exec(`CREATE TABLE IF NOT EXISTS hub_event_ids (
			id TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID`);
		sql.exec(`CREATE INDEX IF NOT EXISTS hub_event_ids_seq ON hub_event_ids (seq)`);
		sql.exec(
			`CREATE TABLE IF NOT EXISTS hub_tickets (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL) WITHOUT ROWID`,
		);
		// The head is the newest seq logged: pruning always keeps the newest rows of both tables.
		// (Hubs created before this may still have a hub_meta table; it is no longer used.)
		const newest = (table: string) =>
			sql.exec<{ head: number | null }>(`SELECT max(seq) AS head FROM ${table}`).one().head ?? 0;
		this.#head = Math.max(newest("hub_event_ids"), newest("hub_events"));
	}

	get head(): number {
		return this.#head;
	}

	window(): LogWindow {
		const row = this.storage.sql
			.exec<{ oldest: number | null }>(`SELECT min(seq) AS oldest FROM hub_events`)
			.one();
		return { head: this.#head, oldest: row.oldest ?? this.#head + 1 };
	}

	/** Logs the events not seen before (in order, one seq each); seen ids return their first seq. */
	append(events: HubEvent[], now: number): { results: PublishResult[]; fresh: Logged[] } {
		return this.storage.transactionSync(() => {
			const before = this.#head;
			const out =
				events.length <= BATCH_FROM ? this.#appendEach(events, now) : this.#appendBatch(events, now);
			if (out.fresh.length > 0) this.#prune(now, before);
			return out;
		});
	}

	/** One event at a time: claim the id (INSERT … ON CONFLICT), then log it. */
	#appendEach(events: HubEvent[], now: number): { results: PublishResult[]; fresh: Logged[] } {
		const sql = this.storage.sql;
		const results: PublishResult[] = [];
		const fresh: Logged[] = [];
		for (const event of events) {
			const seq = this.#head + 1;
			// Claims the key; a key already seen keeps its first seq and is not logged again.
			const key = keyOf(event);
			const claimed = sql.exec(
				`INSERT INTO hub_event_ids (id, seq, at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				key,
				seq,
				now,
			).rowsWritten;
			if (claimed === 0) {
				const seen = sql.exec<{ seq: number }>(`SELECT seq FROM hub_event_ids WHERE id = ?`, key).one();
				results.push({ id: event.id, seq: seen.seq, duplicate: true });
				continue;
			}
			const frame = frameOf(event, seq);
			sql.exec(
				`INSERT INTO hub_events (seq, id, type, at, frame) VALUES (?, ?, ?, ?, ?)`,
				seq,
				event.id,
				event.type,
				now,
				frame,
			);
			this.#head = seq;
			results.push({ id: event.id, seq, duplicate: false });
			fresh.push({ seq, type: event.type, frame });
		}
		return { results, fresh };
	}

	/**
	 * A batch in three statements whatever its size: the ids already seen, then every new id and
	 * every new event, each passed as one JSON array (json_each), since a statement's cost is
	 * mostly its own (a Durable Object's SQLite also caps a statement at 100 bound parameters).
	 */
	#appendBatch(events: HubEvent[], now: number): { results: PublishResult[]; fresh: Logged[] } {
		const sql = this.storage.sql;
		const seen = new Map<string, number>();
		const known = sql.exec<{ id: string; seq: number }>(
			`SELECT id, seq FROM hub_event_ids WHERE id IN (SELECT value FROM json_each(?))`,
			JSON.stringify(events.map(keyOf)),
		);
		for (const row of known) seen.set(row.id, row.seq);
		const results: PublishResult[] = [];
		const fresh: Logged[] = [];
		const rows: [number, string, string, string, string][] = [];
		for (const event of events) {
			const key = keyOf(event);
			const first = seen.get(key);
			if (first !== undefined) {
				results.push({ id: event.id, seq: first, duplicate: true });
				continue;
			}
			const seq = ++this.#head;
			seen.set(key, seq);
			const frame = frameOf(event, seq);
			rows.push([seq, event.id, event.type, frame, key]);
			results.push({ id: event.id, seq, duplicate: false });
			fresh.push({ seq, type: event.type, frame });
		}
		if (rows.length > 0) {
			const json = JSON.stringify(rows);
			sql.exec(
				`INSERT INTO hub_event_ids (id, seq, at) SELECT value ->> 4, value ->> 0, ? FROM json_each(?)`,
				now,
				json,
			);
			sql.exec(
				`INSERT INTO hub_events (seq, id, type, at, frame)
				 SELECT value ->> 0, value ->> 1, value ->> 2, ?, value ->> 3 FROM json_each(?)`,
				now,
				json,
			);
		}
		return { results, fresh };
	}

	/** What a client that last saw `since` gets: nothing, the events after it, or a reset. */
	catchUp(since: number): CatchUp {
		const plan = planCatchUp(since, this.window());
		if (plan.kind !== "replay") return plan;
		const { bytes } = this.storage.sql
			.exec<{ bytes: number | null }>(
				`SELECT sum(length(frame)) AS bytes FROM hub_events WHERE seq > ?`,
				since,
			)
			.one();
		return (bytes ?? 0) > this.bounds.replayMaxBytes
			? { kind: "reset", reason: "too_much_to_replay" }
			: { ...plan, bytes: bytes ?? 0 };
	}

	/** The logged events after `seq`, oldest first (a lazy cursor). */
	after(seq: number): Iterable<LoggedRow> {
		return this.storage.sql.exec<LoggedRow>(
			`SELECT seq, type, frame FROM hub_events WHERE seq > ? ORDER BY seq`,
			seq,
		);
	}

	/** Marks a ticket used; false when it already was. Expired entries are dropped on the way. */
	claimTicket(jti: string, expMs: number, now: number): boolean {
		const sql = this.storage.sql;
		sql.exec(`DELETE FROM hub_tickets WHERE exp < ?`, now);
		return (
			sql.exec(`INSERT INTO hub_tickets (jti, exp) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`, jti, expMs)
				.rowsWritten > 0
		);
	}

	// The count bounds are cheap PK range deletes, run when the head crosses a multiple of
	// pruneStep (after a restart: on the first append) and deleting pruneStep - 1 more rows than
	// needed, so up to the next crossing the counts stay within maxEvents and dedupeMaxIds.
	// The age bound scans up to maxEvents rows, so it runs at most once per PRUNE_EVERY_MS (the
	// log may then hold events a minute past maxAgeMs: it is a lower bound on what is kept, not
	// an upper one).
	#prune(now: number, before: number): void {
		const sql = this.storage.sql;
		const b = this.bounds;
		const head = this.#head;
		const step = b.pruneStep;
		if (this.#prunedAt === 0 || Math.floor(head / step) !== Math.floor(before / step)) {
			sql.exec(`DELETE FROM hub_events WHERE seq <= ?`, head - b.maxEvents + step - 1);
			sql.exec(`DELETE FROM hub_event_ids WHERE seq <= ?`, head - b.dedupeMaxIds + step - 1);
		}
		if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
		this.#prunedAt = now;
		sql.exec(`DELETE FROM hub_events WHERE seq <= ? AND at < ?`, head - b.minEvents, now - b.maxAgeMs);
		sql.exec(
			`DELETE FROM hub_event_ids WHERE seq <= ? AND at < ?`,
			head - b.minEvents,
			now - b.dedupeMaxAgeMs,
		);
	}
}

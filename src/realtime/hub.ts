// The hub both Durable Objects share: hibernating WebSockets (ctx.acceptWebSocket, tags, an
// attachment per socket, ping/pong by auto-response), fan-out of published events, the replay
// log, and crash-proof socket handlers. RepoHub and GlobalHub only name their kind.
//   fetch()        the WebSocket upgrade only (the Worker has authenticated and authorised it)
//   publish()      RPC: logs events (idempotent on event id) and returns their seqs; the
//                  broadcast follows at once, in a timer turn (see #flush)
//   claimTicket()  RPC: marks a single-use stream ticket as used
// Hibernation drops this object's memory but not its sockets: per-socket state comes back
// from attachments the first time a socket is touched after a wake-up (see #conn), and the
// first broadcast after a wake-up loads every socket's (see #roster).
import { DurableObject } from "cloudflare:workers";
import { metricsFor } from "../deps";
import { assertNever } from "../errors";
import { type HubPoint, hubDataPoint, type Metrics } from "../lib/metrics";
import { attachmentFor, type Conn, capOf, connOf, holdersOf, isAttachment, welcomeFor } from "./connection";
import { EventLog, type Logged } from "./event-log";
import { matches, subscribe, tagsFor, unsubscribe } from "./filter";
import { TokenBucket } from "./flood";
import {
	type Attachment,
	CLOSE,
	CONNECT_HEADER,
	ConnectInfo,
	type ControlMessage,
	HEARTBEAT,
	type HubEvent,
	LIMITS,
	type PublishResult,
	type ResetReason,
} from "./protocol";
import { asReplayFrame } from "./replay";
import { exceeds, parseCommand, reciprocalCode } from "./wire";

/** How often a hub re-reads its socket list from the runtime (see Hub.#roster). */
const ROSTER_REFRESH_MS = 60_000;
/**
 * A caller at its socket cap triggers a recount of every socket's caller (sockets lost without a
 * close event may still be counted) at most this often: a recount reads every attachment, so a
 * capped caller retrying cannot make the hub do it per attempt.
 */
const CALLER_RECOUNT_MS = 10_000;
/**
 * While sockets are open, a hub reports its socket count this often (an alarm), so a hub with
 * quiet, long-lived sockets stays in gitinsight_active_connections (which counts the hubs that
 * reported in the last HUB_SILENCE_HOURS). One wake-up an hour; hibernation is not held off.
 */
export const ALIVE_REPORT_MS = 60 * 60_000;

export abstract class Hub extends DurableObject<Env> {
	readonly #log: EventLog;
	// Per-socket state, keyed by the socket objects getWebSockets() returns. Once #rosterAt is set
	// it holds every socket (kept by accept, close and error), so a broadcast walks it instead of
	// copying the socket list out of the runtime for every event. The first broadcast at least
	// ROSTER_REFRESH_MS after the last load re-reads getWebSockets(): it drops what the runtime no
	// longer lists and recounts. (A socket lost without a close event may stay listed as open,
	// workerd#1187; sending to it is harmless.)
	readonly #conns = new Map<WebSocket, Conn>();
	#rosterAt: number | undefined;
	// Logged but not yet broadcast, oldest first: publish() answers once events are logged and
	// the broadcast follows in a timer turn, so the publisher does not wait for a fan-out to
	// thousands of sockets, and events that pile up meanwhile go out together, in seq order.
	// Bounded (LIMITS.unsentEvents / unsentBytes): past it, publish() broadcasts in the call.
	#unsent: Logged[] = [];
	#unsentBytes = 0;
	#flushTimer: ReturnType<typeof setTimeout> | undefined;
	/** An alive-report alarm is known to be set (memory only: rechecked after a wake-up). */
	#aliveAlarm = false;
	/** Sockets already taken off the count (close and error can both arrive for one socket). */
	readonly #forgotten = new WeakSet<WebSocket>();
	#sockets: number | undefined;
	// Open sockets per caller (ConnectInfo.caller), for LIMITS.socketsPerCaller: kept by accept
	// and #forget, rebuilt from the attachments when unknown (after a wake-up), with the roster,
	// and when a caller at its cap connects (at most once per CALLER_RECOUNT_MS). Entries at 0
	// are removed, so the map holds at most one entry per open socket.
	#perCaller: Map<string, number> | undefined;
	#perCallerAt = 0;
	#metrics: Metrics | null | undefined;
	/** Replayed bytes the hub may still send, all connections together (see #replayAllowed). */
	#replayBudget: TokenBucket | undefined;
	#reportedAt = 0;
	/** "repo" or "global", for the metrics datapoints. */
	protected abstract readonly kind: HubPoint["hubKind"];

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#log = new EventLog(ctx.storage);
		// Answered by the runtime without waking the object, so heartbeats never cost a wake-up.
		ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(HEARTBEAT.send, HEARTBEAT.expect));
	}

	override fetch(request: Request): Response {
		// A joining socket's welcome seq (the head) must not cover events it would never be sent.
		this.#flush();
		if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
			return new Response("expected a WebSocket upgrade", { status: 426 });
		}
		const info = ConnectInfo.safeParse(parseJson(request.headers.get(CONNECT_HEADER)));
		if (!info.success) return new Response("bad connect info", { status: 400 });
		if (this.#full()) return new Response("hub is full", { status: 503, headers: { "Retry-After": "5" } });
		if (this.#atCap(holdersOf(info.data))) {
			return new Response("caller at its socket cap", { status: 429, headers: { "Retry-After": "30" } });
		}
		const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
		const att = attachmentFor(info.data, this.#log.head, Date.now());
		this.ctx.acceptWebSocket(server, tagsFor(att.scope));
		server.serializeAttachment(att);
		this.#sockets = (this.#sockets ?? 0) + 1;
		this.#count(holdersOf(att), 1);
		const conn = connOf(att, Date.now());
		this.#conns.set(server, conn);
		this.#send(server, welcomeFor(info.data, att));
		const { since, protocol } = info.data;
		if (info.data.reset) this.#reset(server, info.data.reset);
		else if (since !== null) this.#catchUp(server, conn, since);
		this.#record("connect", 0, 0);
		this.#scheduleAliveReport();
		return new Response(null, {
			status: 101,
			webSocket: client,
			headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {},
		});
	}

	/** RPC: logs the events not seen before and queues them for broadcast; each event's seq. */
	publish(events: HubEvent[]): PublishResult[] {
		const { results, fresh } = this.#log.append(events, Date.now());
		if (fresh.length > 0) {
			this.#unsent.push(...fresh);
			for (const e of fresh) this.#unsentBytes += e.frame.length;
			// A backlog over the cap is sent now, inside this call: publishers that outrun the
			// fan-out are slowed to its pace again, and the queue stays bounded in memory.
			if (this.#unsent.length >= LIMITS.unsentEvents || this.#unsentBytes >= LIMITS.unsentBytes)
				this.#flush();
			else this.#flushTimer ??= setTimeout(() => this.#flush(), 0);
		}
		return results;
	}

	/** The hourly report while sockets are open; stops (no new alarm) once none are. */
	override alarm(): void {
		this.#aliveAlarm = false;
		const sockets = this.ctx.getWebSockets().length;
		this.#sockets = sockets;
		if (sockets === 0) return;
		this.#record("alive", 0, 0);
		this.#scheduleAliveReport();
	}

	/** RPC: true the first time a ticket id is presented to this hub, false after. */
	claimTicket(jti: string, expMs: number): boolean {
		return this.#log.claimTicket(jti, expMs, Date.now());
	}

	override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
		try {
			// Every seq a command's answer mentions (ack, pong, replay) has been sent before it.
			this.#flush();
			const conn = this.#conn(ws);
			if (!conn) return;
			if (exceeds(message, LIMITS.clientMessageBytes)) {
				ws.close(CLOSE.tooBig, `messages are limited to ${LIMITS.clientMessageBytes} bytes`);
				return;
			}
			if (!conn.bucket.take(Date.now())) {
				ws.close(CLOSE.policyViolation, "too many messages");
				return;
			}
			const parsed = parseCommand(message);
			if (!parsed.ok) {
				this.#send(ws, { type: "error", id: parsed.id, code: parsed.code, message: parsed.message });
				return;
			}
			const cmd = parsed.command;
			switch (cmd.type) {
				case "ping":
					this.#send(ws, { type: "pong", id: cmd.id, seq: this.#log.head });
					return;
				case "subscribe":
				case "unsubscribe": {
					const { att } = conn;
					const change =
						cmd.type === "subscribe"
							? subscribe(att.filter, att.scope, cmd.events)
							: unsubscribe(att.filter, cmd.events);
					if (!change.ok) {
						this.#send(ws, { type: "error", id: cmd.id, code: change.code, message: change.message });
						return;
					}
					att.filter = change.filter;
					this.#save(ws, conn);
					this.#send(ws, { type: "ack", id: cmd.id, command: cmd.type, filter: att.filter, seq: att.seq });
					return;
				}
				case "resume": {
					const replayed = this.#catchUp(ws, conn, cmd.since);
					this.#send(ws, {
						type: "ack",
						id: cmd.id,
						command: "resume",
						filter: conn.att.filter,
						seq: conn.att.seq,
						replayed,
					});
					return;
				}
				default:
					assertNever(cmd);
			}
		} catch (err) {
			logError("webSocketMessage", err);
			this.#send(ws, { type: "error", code: "internal_error", message: "internal error" });
		}
	}

	override webSocketClose(ws: WebSocket, code: number, _reason: string, _wasClean: boolean): void {
		try {
			this.#forget(ws);
			this.#record("disconnect", 0, 0);
			// Complete the closing handshake; without it clients wait in CLOSING and report 1006.
			// A no-op where the runtime already replied (web_socket_auto_reply_to_close).
			ws.close(reciprocalCode(code), "closing");
		} catch (err) {
			logError("webSocketClose", err);
		}
	}

	override webSocketError(ws: WebSocket, error: unknown): void {
		try {
			this.#forget(ws);
			this.#record("disconnect", 0, 0);
			logError("webSocketError", error);
			ws.close(CLOSE.internalError, "socket error");
		} catch {
			// The socket is already gone; nothing else to do.
		}
	}

	/** The socket's state: from memory, or rebuilt from its attachment after a wake-up. */
	#conn(ws: WebSocket): Conn | undefined {
		const known = this.#conns.get(ws);
		if (known) return known;
		// A socket already closed or errored is not brought back (e.g. by a late message).
		if (this.#forgotten.has(ws)) return undefined;
		const att = safeAttachment(ws);
		if (!isAttachment(att)) return undefined;
		const conn = connOf(att, Date.now());
		this.#conns.set(ws, conn);
		return conn;
	}

	/**
	 * Whether the hub is at its socket limit. The count is kept in memory and recounted from
	 * getWebSockets() (an array of every socket) only when it nears the limit, so a reconnect
	 * storm does not copy that array once per connect; sockets that vanished without a close
	 * event (workerd#1187) are dropped from the count by the recount.
	 */
	#full(): boolean {
		if (this.#sockets === undefined || this.#sockets >= LIMITS.socketsPerHub) {
			this.#sockets = this.ctx.getWebSockets().length;
		}
		return this.#sockets >= LIMITS.socketsPerHub;
	}

	/**
	 * Whether any of `holders` (holdersOf: the caller, and its IPv6 site) already holds its cap
	 * of sockets here. At a cap, the counts are first rebuilt (at most once per
	 * CALLER_RECOUNT_MS), so sockets that vanished without a close event do not lock their caller
	 * out for good.
	 */
	#atCap(holders: string[]): boolean {
		const now = Date.now();
		const over = (counts: Map<string, number>) => holders.some((h) => (counts.get(h) ?? 0) >= capOf(h));
		if (!over(this.#perCaller ?? this.#recountCallers(now))) return false;
		if (now - this.#perCallerAt < CALLER_RECOUNT_MS) return true;
		return over(this.#recountCallers(now));
	}

	/** Rebuilds the per-caller counts from the runtime's socket list and the attachments. */
	#recountCallers(now: number): Map<string, number> {
		const atts: Attachment[] = [];
		for (const ws of this.ctx.getWebSockets()) {
			if (this.#forgotten.has(ws)) continue;
			const att = this.#conns.get(ws)?.att ?? safeAttachment(ws);
			if (isAttachment(att)) atts.push(att);
		}
		return this.#setCounts(atts, now);
	}

	#setCounts(atts: Iterable<Attachment>, now: number): Map<string, number> {
		const counts = new Map<string, number>();
		for (const att of atts) for (const h of holdersOf(att)) counts.set(h, (counts.get(h) ?? 0) + 1);
		this.#perCaller = counts;
		this.#perCallerAt = now;
		return counts;
	}

	/** Adds `delta` to each holder's socket count (when the counts are known; see #perCaller). */
	#count(holders: string[], delta: number): void {
		const counts = this.#perCaller;
		if (!counts) return;
		for (const h of holders) {
			const n = (counts.get(h) ?? 0) + delta;
			if (n > 0) counts.set(h, n);
			else counts.delete(h);
		}
	}

	#forget(ws: WebSocket): void {
		if (this.#forgotten.has(ws)) return;
		this.#forgotten.add(ws);
		// A socket accepted before a hibernation is in the count (recounted from getWebSockets())
		// but not in #conns until touched: its attachment says it is ours.
		const att = this.#conns.get(ws)?.att ?? safeAttachment(ws);
		this.#conns.delete(ws);
		if (!isAttachment(att)) return;
		if (this.#sockets !== undefined) this.#sockets = Math.max(0, this.#sockets - 1);
		this.#count(holdersOf(att), -1);
	}

	#save(ws: WebSocket, conn: Conn): void {
		conn.att.seq = this.#log.head;
		ws.serializeAttachment(conn.att);
	}

	/** Sends what the client missed after `since` (or a reset); returns how many events. */
	#catchUp(ws: WebSocket, conn: Conn, since: number): number {
		const plan = this.#log.catchUp(since);
		let replayed = 0;
		if (plan.kind === "reset") {
			this.#reset(ws, plan.reason);
		} else if (plan.kind === "replay" && !this.#replayAllowed(conn, plan.bytes ?? 0)) {
			this.#reset(ws, "too_much_to_replay");
		} else if (plan.kind === "replay") {
			for (const row of this.#log.after(plan.after)) {
				if (!matches(conn.att.filter, conn.att.scope, row.type)) continue;
				this.#sendRaw(ws, asReplayFrame(row.frame));
				replayed++;
			}
		}
		this.#save(ws, conn);
		return replayed;
	}

	/**
	 * Whether `bytes` of replay fit in both the connection's and the hub's budgets (taken from
	 * both when they do). The count is of every frame after `since`, filtered or not: an upper
	 * bound of what is sent, known before the send loop starts.
	 */
	#replayAllowed(conn: Conn, bytes: number): boolean {
		const now = Date.now();
		this.#replayBudget ??= new TokenBucket(LIMITS.hubReplayBurstBytes, LIMITS.hubReplayBytesPerSecond, now);
		if (conn.replay.available(now) < bytes || this.#replayBudget.available(now) < bytes) return false;
		conn.replay.take(now, bytes);
		this.#replayBudget.take(now, bytes);
		return true;
	}

	#reset(ws: WebSocket, reason: ResetReason): void {
		const { head, oldest } = this.#log.window();
		this.#send(ws, { type: "reset", reason, seq: head, oldest_seq: oldest });
	}

	/** Every socket's state: #conns, completed from getWebSockets() after a wake-up or when due. */
	#roster(): Map<WebSocket, Conn> {
		const now = Date.now();
		if (this.#rosterAt !== undefined && now - this.#rosterAt < ROSTER_REFRESH_MS) return this.#conns;
		const live = new Set(this.ctx.getWebSockets());
		for (const ws of this.#conns.keys()) {
			if (!live.has(ws) || this.#forgotten.has(ws)) this.#conns.delete(ws);
		}
		for (const ws of live) this.#conn(ws);
		this.#rosterAt = now;
		// The exact counts, while they are at hand (the runtime's list, less closed sockets).
		this.#sockets = this.#conns.size;
		this.#setCounts(
			Array.from(this.#conns.values(), (c) => c.att),
			now,
		);
		return this.#conns;
	}

	/** Broadcasts the events logged since the last flush, in seq order. Never throws. */
	#flush(): void {
		if (this.#flushTimer !== undefined) {
			clearTimeout(this.#flushTimer);
			this.#flushTimer = undefined;
		}
		const events = this.#unsent;
		if (events.length === 0) return;
		this.#unsent = [];
		this.#unsentBytes = 0;
		try {
			this.#record("publish", events.length, this.#broadcast(events));
		} catch (err) {
			logError("broadcast", err);
		}
	}

	/** Sends each socket the events its scope and filter take, in order; returns how many. */
	#broadcast(events: Logged[]): number {
		let sent = 0;
		// A closing socket stays until its close event (or the next refresh) takes it out.
		this.#roster().forEach((conn, ws) => {
			const { filter, scope } = conn.att;
			for (const event of events) {
				if (matches(filter, scope, event.type) && this.#sendRaw(ws, event.frame)) sent++;
			}
		});
		return sent;
	}

	/** Sets the alive-report alarm unless one is already set. Never throws. */
	#scheduleAliveReport(): void {
		if (this.#aliveAlarm) return;
		this.#aliveAlarm = true;
		const storage = this.ctx.storage;
		void (async () => {
			if ((await storage.getAlarm()) === null) await storage.setAlarm(Date.now() + ALIVE_REPORT_MS);
		})().catch((err: unknown) => {
			this.#aliveAlarm = false;
			logError("scheduleAliveReport", err);
		});
	}

	/** One Analytics Engine datapoint; never throws (metrics must not break a hub). */
	#record(action: HubPoint["action"], published: number, delivered: number): void {
		try {
			this.#metrics ??= metricsFor(this.env, this.ctx);
			// Date.now() stands still within an event in Workers: keep each report strictly later.
			this.#reportedAt = Math.max(Date.now(), this.#reportedAt + 0.001);
			this.#metrics.write(
				hubDataPoint({
					hubKind: this.kind,
					hub: this.ctx.id.name ?? this.ctx.id.toString(),
					action,
					sockets: this.#sockets ?? this.ctx.getWebSockets().length,
					published,
					delivered,
					reportedAt: this.#reportedAt,
				}),
			);
		} catch {
			this.#metrics = null;
		}
	}

	#send(ws: WebSocket, message: ControlMessage): void {
		this.#sendRaw(ws, JSON.stringify(message));
	}

	/** False when the socket is closing or closed (the runtime drops it; nothing to do). */
	#sendRaw(ws: WebSocket, frame: string): boolean {
		try {
			ws.send(frame);
			return true;
		} catch {
			return false;
		}
	}
}

function safeAttachment(ws: WebSocket): unknown {
	try {
		return ws.deserializeAttachment();
	} catch {
		return null;
	}
}

function parseJson(text: string | null): unknown {
	try {
		return text === null ? null : JSON.parse(text);
	} catch {
		return null;
	}
}

function logError(where: string, err: unknown): void {
	console.error(
		JSON.stringify({
			level: "error",
			msg: "hub handler failed",
			where,
			error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
		}),
	);
}

// Test helpers for the real-time tests: a WebSocket client over the Worker's real entry point
// (exports.default.fetch with Upgrade headers), whose frames are parsed with the protocol's own
// zod union, plus service-side publishing and distinct seeded repositories per test.
import { env, exports } from "cloudflare:workers";
import { desc } from "drizzle-orm";
import { createDb } from "../src/db/client";
import { repositories } from "../src/db/schema";
import {
	type EventMessage,
	type ServerMessage,
	ServerMessage as ServerMessageSchema,
} from "../src/realtime/protocol";
import { call, hs256Token } from "./helpers";

export const ORIGIN = "http://127.0.0.1:8787";

export interface OpenOptions {
	headers?: Record<string, string>;
	protocols?: string[];
	token?: string;
}

export function upgradeRequest(path: string, opts: OpenOptions = {}): Request {
	const headers = new Headers({ Upgrade: "websocket", ...opts.headers });
	if (opts.token) headers.set("authorization", `Bearer ${opts.token}`);
	if (opts.protocols) headers.set("sec-websocket-protocol", opts.protocols.join(", "));
	return new Request(`http://gitinsight.test${path}`, { headers });
}

const isEvent = (m: ServerMessage): m is EventMessage => "data" in m;

export class TestSocket {
	readonly frames: ServerMessage[] = [];
	#cursor = 0;
	#wake: (() => void) | undefined;
	readonly closed: Promise<{ code: number; reason: string }>;

	constructor(
		readonly ws: WebSocket,
		readonly response: Response,
	) {
		ws.accept();
		ws.addEventListener("message", (e) => {
			this.frames.push(ServerMessageSchema.parse(JSON.parse(String(e.data))));
			this.#wake?.();
		});
		this.closed = new Promise((resolve) => {
			ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason }));
		});
	}

	static async open(path: string, opts: OpenOptions = {}): Promise<TestSocket> {
		const res = await exports.default.fetch(upgradeRequest(path, opts));
		if (res.status !== 101 || !res.webSocket)
			throw new Error(`expected 101, got ${res.status}: ${await res.text()}`);
		return new TestSocket(res.webSocket, res);
	}

	send(frame: unknown): void {
		this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
	}

	/** The next frame after the cursor that matches, skipping (and consuming) the rest. */
	async next(match: (m: ServerMessage) => boolean = () => true, timeoutMs = 3000): Promise<ServerMessage> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			while (this.#cursor < this.frames.length) {
				const m = this.frames[this.#cursor++] as ServerMessage;
				if (match(m)) return m;
			}
			const left = deadline - Date.now();
			if (left <= 0)
				throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.#wake = () => {
					clearTimeout(timer);
					resolve();
				};
			});
		}
	}

	nextOf<T extends ServerMessage["type"]>(type: T, timeoutMs?: number) {
		return this.next((m) => m.type === type, timeoutMs) as Promise<Extract<ServerMessage, { type: T }>>;
	}

	/** The next event frame (not a control frame) that matches. */
	async nextEvent(
		match: (e: EventMessage) => boolean = () => true,
		timeoutMs?: number,
	): Promise<EventMessage> {
		return (await this.next((m) => isEvent(m) && match(m), timeoutMs)) as EventMessage;
	}

	/** Event frames received so far, in order. */
	events(): EventMessage[] {
		return this.frames.filter(isEvent);
	}

	close(): void {
		try {
			this.ws.close(1000, "done");
		} catch {
			// already closed
		}
	}
}

/** Lets in-flight frames arrive before asserting that something did NOT arrive. */
export const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));

let serviceToken: Promise<string> | undefined;
export function service(): Promise<string> {
	serviceToken ??= hs256Token({ sub: "pipeline", role: "service" });
	return serviceToken;
}

export async function postEvent(body: unknown, path = "/api/v1/events"): Promise<Response> {
	return call(path, {
		method: "POST",
		token: await service(),
		headers: { "content-type": "application/json" },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

/** Seeded repository ids, from the end of the id order (repos.test uses the start). */
export async function seededRepos(offset: number, count: number): Promise<string[]> {
	const rows = await createDb(env)
		.select({ id: repositories.id })
		.from(repositories)
		.orderBy(desc(repositories.id))
		.offset(offset)
		.limit(count);
	return rows.map((r) => r.id);
}

export const repoStream = (id: string, query = "") => `/api/v1/stream/repository/${id}/updates${query}`;
export const GLOBAL = "/api/v1/stream/global/activity";

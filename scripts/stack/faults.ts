// Fault injection for the local stand-ins (neon-standin.ts, upstash-standin.ts): a registry of
// faults keyed by a scope the client chooses (a hostname for Neon, a bearer token for Upstash),
// so parallel test files each break only their own traffic, and the control endpoint that edits it.
//
//   POST   /__faults  {"scope": S, "mode": "fail" | "delay" | "hang" | "lost" | "none", "delayMs"?: N}
//   DELETE /__faults?scope=S      clears S
//   GET    /__faults              lists the registered faults
//
// Modes: "fail" answers like the hosted service with its backend down; "lost" (Upstash only) does
// the real work and then drops the connection instead of answering (a reply lost on the way: what
// a client's retry would run twice); "delay" does the real work
// delayMs (0–600000) late; "hang" does not answer until the client gives up; "none" registers the
// scope without a fault (an Upstash token that must stay valid). Clearing or changing a scope's
// fault releases at once what the old one held: hung HTTP requests get the "fail" answer, hung
// WebSockets are dropped, delayed HTTP requests run now. So a test leaves nothing behind.
// The endpoint exists only when fault injection is enabled (`faults: true`, `--faults`,
// STANDIN_FAULTS=1, or by default under Vitest, whose global setup starts the stand-ins) and
// answers loopback clients only; otherwise /__faults is an unknown path like any other.
import type { IncomingMessage, ServerResponse } from "node:http";

export type FaultMode = "fail" | "delay" | "hang" | "lost" | "none";

export interface Fault {
	mode: FaultMode;
	delayMs: number;
}

export const FAULTS_PATH = "/__faults";
const MODES: readonly FaultMode[] = ["fail", "delay", "hang", "lost", "none"];
const MAX_DELAY_MS = 600_000;
const MAX_SCOPE_LENGTH = 512;
const MAX_CONTROL_BODY = 16 * 1024;

/** The option's default: on under Vitest (the test global setup) and with STANDIN_FAULTS=1. */
export function faultsEnabled(option: boolean | undefined): boolean {
	return option ?? (process.env.STANDIN_FAULTS === "1" || process.env.VITEST === "true");
}

export class FaultRegistry {
	readonly #faults = new Map<string, Fault>();
	/** Per scope, the release functions of what a "hang" or a "delay" currently holds. */
	readonly #held = new Map<string, Set<() => void>>();
	readonly #onSet: ((scope: string, fault: Fault) => void)[] = [];
	readonly #normalise: (scope: string) => string;

	constructor(normalise: (scope: string) => string = (s) => s) {
		this.#normalise = normalise;
	}

	get(scope: string | undefined): Fault | undefined {
		return scope === undefined ? undefined : this.#faults.get(this.#normalise(scope));
	}

	/** Called after a fault is registered (e.g. "fail" drops the scope's open connections). */
	onSet(listener: (scope: string, fault: Fault) => void): void {
		this.#onSet.push(listener);
	}

	set(scope: string, fault: Fault): void {
		const key = this.#normalise(scope);
		this.#faults.set(key, fault);
		// A changed fault releases what the old one held (held requests, pending delays).
		this.#release(key);
		for (const listener of this.#onSet) listener(key, fault);
	}

	delete(scope: string): boolean {
		const key = this.#normalise(scope);
		this.#release(key);
		return this.#faults.delete(key);
	}

	/**
	 * Registers something a fault holds (a request, a socket); `release` ends it when the fault is
	 * cleared or changed, or the stand-in closes. Returns the function to call when it ends by itself.
	 */
	hold(scope: string, release: () => void): () => void {
		const key = this.#normalise(scope);
		let set = this.#held.get(key);
		if (!set) {
			set = new Set();
			this.#held.set(key, set);
		}
		const held = set;
		held.add(release);
		return () => {
			held.delete(release);
			if (held.size === 0 && this.#held.get(key) === held) this.#held.delete(key);
		};
	}

	/**
	 * Waits `ms`, or less if the scope's fault is cleared or changed meanwhile (so a test that
	 * clears its fault leaves no request delayed behind it), or the stand-in closes.
	 */
	delay(scope: string, ms: number): Promise<void> {
		return new Promise((resolve) => {
			const done = () => {
				clearTimeout(timer);
				forget();
				resolve();
			};
			const timer = setTimeout(done, ms);
			timer.unref();
			const forget = this.hold(scope, done);
		});
	}

	/** Clears everything and releases everything held (stand-in shutdown). */
	clear(): void {
		for (const key of [...this.#held.keys()]) this.#release(key);
		this.#faults.clear();
	}

	list(): ({ scope: string } & Fault)[] {
		return [...this.#faults].map(([scope, fault]) => ({ scope, ...fault }));
	}

	#release(key: string): void {
		const held = this.#held.get(key);
		if (!held) return;
		this.#held.delete(key);
		for (const release of held) {
			try {
				release();
			} catch {
				// a socket already gone: nothing to release
			}
		}
	}
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

function parseFault(json: unknown): { scope: string; fault: Fault } {
	if (typeof json !== "object" || json === null || Array.isArray(json)) {
		throw new Error("body must be a JSON object {scope, mode, delayMs?}");
	}
	const { scope, mode, delayMs } = json as Record<string, unknown>;
	if (typeof scope !== "string" || scope === "" || scope.length > MAX_SCOPE_LENGTH) {
		throw new Error(`scope must be a non-empty string of at most ${MAX_SCOPE_LENGTH} characters`);
	}
	if (typeof mode !== "string" || !(MODES as readonly string[]).includes(mode)) {
		throw new Error(`mode must be one of ${MODES.join(", ")}`);
	}
	const delay = delayMs ?? (mode === "delay" ? undefined : 0);
	if (typeof delay !== "number" || !Number.isInteger(delay) || delay < 0 || delay > MAX_DELAY_MS) {
		throw new Error(`delayMs must be an integer from 0 to ${MAX_DELAY_MS} (required for "delay")`);
	}
	return { scope, fault: { mode: mode as FaultMode, delayMs: delay } };
}

/** Serves the control endpoint; the caller routes `FAULTS_PATH` here only when faults are enabled. */
export function handleFaultControl(registry: FaultRegistry, req: IncomingMessage, res: ServerResponse): void {
	const reply = (status: number, json: unknown) => {
		if (res.headersSent || res.destroyed) return;
		res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
		res.end(JSON.stringify(json));
	};
	if (!LOOPBACK.has(req.socket.remoteAddress ?? "")) {
		reply(403, { error: "the fault control endpoint answers loopback clients only" });
		req.resume();
		return;
	}
	// Browsers send Origin on cross-site requests: a web page must not reach this endpoint (a
	// "none" fault would make any token valid on the Upstash stand-in). Tests never send Origin.
	if (req.headers.origin !== undefined) {
		reply(403, { error: "the fault control endpoint refuses browser requests" });
		req.resume();
		return;
	}
	const url = new URL(req.url ?? "/", "http://localhost");
	if (req.method === "GET") {
		reply(200, { faults: registry.list() });
		req.resume();
		return;
	}
	if (req.method === "DELETE") {
		const scope = url.searchParams.get("scope");
		if (!scope) reply(400, { error: "scope is required" });
		else reply(200, { scope, deleted: registry.delete(scope) });
		req.resume();
		return;
	}
	if (req.method !== "POST") {
		res.setHeader("allow", "GET, POST, DELETE");
		reply(405, { error: "use GET, POST or DELETE" });
		req.resume();
		return;
	}
	if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
		// A form or text/plain POST needs no CORS preflight; JSON does.
		reply(415, { error: "the body must be application/json" });
		req.resume();
		return;
	}
	const chunks: Buffer[] = [];
	let size = 0;
	req.on("data", (chunk: Buffer) => {
		size += chunk.length;
		if (size <= MAX_CONTROL_BODY) chunks.push(chunk);
	});
	req.on("error", () => res.destroy());
	req.on("end", () => {
		if (size > MAX_CONTROL_BODY) {
			reply(413, { error: "body too large" });
			return;
		}
		try {
			const { scope, fault } = parseFault(JSON.parse(Buffer.concat(chunks).toString("utf8")));
			registry.set(scope, fault);
			reply(200, { scope, ...fault });
		} catch (err) {
			reply(400, { error: err instanceof Error ? err.message : String(err) });
		}
	});
}

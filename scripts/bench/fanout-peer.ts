// A child process of the fan-out benchmark (scripts/bench/fanout.ts), in one of two roles:
//   clients  holds a share of the WebSocket clients (`ws` package), counts every seq each socket
//            receives (in order, none missing, none twice) and reports, per seq, the moment the
//            last of its sockets had it (process.hrtime: CLOCK_MONOTONIC, the same clock in
//            every process of the machine, so the parent can compare it with its POST times);
//   hub      the baseline: a plain Node `ws` hub. POST /api/v1/events (and /batch) → a seq per
//            event, the same frame shape as the Worker's hubs, broadcast to every client with
//            ws.send; 202.
// Spread over processes because one Node process cannot hold 10,000 client sockets and keep up
// with them, and each process has its own file-descriptor limit (`ulimit -n`).
// The parent talks to it over the IPC channel (process.send); every command is answered.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { WebSocket, WebSocketServer } from "ws";

export type PeerCommand =
	| {
			cmd: "connect";
			url: string;
			headers: Record<string, string>;
			count: number;
			concurrency: number;
			timeoutMs: number;
	  }
	| { cmd: "stats"; lastSeq: number }
	| { cmd: "close" }
	| { cmd: "exit" };

export interface ConnectReport {
	ev: "connected";
	ok: number;
	failed: number;
	/** Connect attempts that failed and were retried. */
	retries: number;
	errors: string[];
	ms: number;
	/** Lowest and highest hub seq in the welcome frames (the position each socket starts at). */
	welcomeMin: number;
	welcomeMax: number;
	extensions: string;
}

export interface SocketStats {
	ev: "stats";
	sockets: number;
	/** Sockets still open. */
	open: number;
	received: number;
	/** Seqs (after the welcome, up to lastSeq) a socket never received. */
	missing: number;
	/** Seqs received twice or out of order. */
	duplicates: number;
	/** Frames that were neither events nor the welcome (error, reset). */
	anomalies: number;
	sample: string[];
}

export type PeerReport =
	| ConnectReport
	| SocketStats
	/** Every socket of this process has `seq`: the first had it at `first`, the last at `at`. */
	| { ev: "complete"; seq: number; first: number; at: number }
	| { ev: "listening"; port: number }
	| { ev: "closed" };

const send = (m: PeerReport): void => {
	process.send?.(m);
};

/** Milliseconds on CLOCK_MONOTONIC (shared by every process of the machine). */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

const SEQ = Buffer.from('"seq":');
const WELCOME = Buffer.from('{"type":"welcome"');

/** The first `"seq":N` of a frame, without parsing the whole JSON; -1 when absent. */
function seqOf(frame: Buffer): number {
	const at = frame.indexOf(SEQ);
	if (at < 0) return -1;
	let n = 0;
	let i = at + SEQ.length;
	let digits = 0;
	for (; i < frame.length; i++) {
		const c = frame[i] ?? 0;
		if (c < 48 || c > 57) break;
		n = n * 10 + (c - 48);
		digits++;
	}
	return digits > 0 ? n : -1;
}

function runClients(): void {
	let sockets: WebSocket[] = [];
	let last = new Float64Array(0);
	let got = new Float64Array(0);
	let base = new Float64Array(0);
	let duplicates = 0;
	let anomalies = 0;
	let open = 0;
	const sample: string[] = [];
	// seq -> how many of this process's sockets have it and when the first did (deleted once all have).
	const pending = new Map<number, { n: number; first: number }>();

	const onFrame = (i: number, data: Buffer): void => {
		const seq = seqOf(data);
		if (data.subarray(0, WELCOME.length).equals(WELCOME)) return;
		if (seq < 0 || data.indexOf('"data":') < 0) {
			anomalies++;
			if (sample.length < 5) sample.push(data.toString().slice(0, 200));
			return;
		}
		const prev = last[i] ?? 0;
		if (seq <= prev) {
			duplicates++;
			return;
		}
		last[i] = seq;
		got[i] = (got[i] ?? 0) + 1;
		const now = monoMs();
		const p = pending.get(seq) ?? { n: 0, first: now };
		p.n++;
		if (p.n >= open) {
			pending.delete(seq);
			send({ ev: "complete", seq, first: p.first, at: now });
		} else {
			pending.set(seq, p);
		}
	};

	const connect = async (c: Extract<PeerCommand, { cmd: "connect" }>): Promise<ConnectReport> => {
		const t0 = performance.now();
		sockets = new Array<WebSocket>(c.count);
		last = new Float64Array(c.count);
		got = new Float64Array(c.count);
		base = new Float64Array(c.count);
		let next = 0;
		let ok = 0;
		let failed = 0;
		let retries = 0;
		let welcomeMin = Number.POSITIVE_INFINITY;
		let welcomeMax = Number.NEGATIVE_INFINITY;
		let extensions = "";
		const errors: string[] = [];
		// One connection attempt: true once the welcome frame arrived.
		const attempt = (i: number): Promise<boolean> =>
			new Promise((resolve) => {
				const ws = new WebSocket(c.url, { headers: c.headers, perMessageDeflate: false });
				sockets[i] = ws;
				let welcomed = false;
				let settled = false;
				const settle = (ok: boolean) => {
					if (settled) return;
					settled = true;
					clearTimeout(timer);
					resolve(ok);
				};
				const timer = setTimeout(() => {
					if (errors.length < 5) errors.push("no welcome in time");
					ws.terminate();
					settle(false);
				}, c.timeoutMs);
				ws.on("message", (data: Buffer) => {
					if (!welcomed) {
						welcomed = true;
						const seq = seqOf(data);
						base[i] = seq;
						last[i] = seq;
						welcomeMin = Math.min(welcomeMin, seq);
						welcomeMax = Math.max(welcomeMax, seq);
						extensions = String(ws.extensions ?? "");
						open++;
						settle(true);
						return;
					}
					onFrame(i, data);
				});
				ws.on("unexpected-response", (req, res) => {
					if (errors.length < 5) errors.push(`HTTP ${res.statusCode}`);
					req.destroy();
					settle(false);
				});
				ws.on("error", (err) => {
					if (errors.length < 5) errors.push(err.message);
				});
				ws.on("close", () => {
					if (welcomed) open--;
					else settle(false);
				});
			});
		// A refused or reset connect is retried like a real client would (jittered, 3 times).
		const one = async (i: number): Promise<void> => {
			for (let a = 0; ; a++) {
				if (await attempt(i)) {
					ok++;
					return;
				}
				if (a === 3) {
					failed++;
					return;
				}
				retries++;
				await new Promise((r) => setTimeout(r, 100 + Math.random() * 400 * 2 ** a));
			}
		};
		await Promise.all(
			Array.from({ length: Math.max(1, c.concurrency) }, async () => {
				while (next < c.count) await one(next++);
			}),
		);
		return {
			ev: "connected",
			ok,
			failed,
			retries,
			errors,
			ms: performance.now() - t0,
			welcomeMin,
			welcomeMax,
			extensions,
		};
	};

	const stats = (lastSeq: number): SocketStats => {
		let received = 0;
		let missing = 0;
		for (let i = 0; i < sockets.length; i++) {
			received += got[i] ?? 0;
			missing += Math.max(0, lastSeq - (base[i] ?? 0) - (got[i] ?? 0));
		}
		return { ev: "stats", sockets: sockets.length, open, received, missing, duplicates, anomalies, sample };
	};

	const close = async (): Promise<void> => {
		await Promise.all(
			sockets.map(
				(ws) =>
					new Promise<void>((resolve) => {
						if (!ws || ws.readyState === WebSocket.CLOSED) return resolve();
						const t = setTimeout(() => {
							ws.terminate();
							resolve();
						}, 5000);
						ws.once("close", () => {
							clearTimeout(t);
							resolve();
						});
						ws.close(1000, "bench done");
					}),
			),
		);
		sockets = [];
		open = 0;
		duplicates = 0;
		anomalies = 0;
		pending.clear();
	};

	process.on("message", (m: PeerCommand) => {
		if (m.cmd === "connect") void connect(m).then(send);
		else if (m.cmd === "stats") send(stats(m.lastSeq));
		else if (m.cmd === "close") void close().then(() => send({ ev: "closed" }));
		else if (m.cmd === "exit") process.exit(0);
	});
}

function runHub(): void {
	let head = 0;
	const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });
	const welcome = () =>
		JSON.stringify({ type: "welcome", hub: "repository", seq: head, scope: "*", filter: { mode: "all" } });

	const readBody = (req: IncomingMessage): Promise<string> =>
		new Promise((resolve, reject) => {
			const chunks: Buffer[] = [];
			let size = 0;
			req.on("data", (c: Buffer) => {
				size += c.length;
				if (size > 64 * 1024) reject(new Error("too large"));
				else chunks.push(c);
			});
			req.on("end", () => resolve(Buffer.concat(chunks).toString()));
			req.on("error", reject);
		});

	const answer = (res: ServerResponse, status: number, body: unknown) => {
		res.writeHead(status, { "content-type": "application/json" });
		res.end(JSON.stringify(body));
	};

	interface Input {
		id?: string;
		type: string;
		repository_id?: string;
		timestamp?: string;
		data?: Record<string, unknown>;
	}
	const publish = (e: Input) => {
		const seq = ++head;
		const id = e.id ?? randomUUID();
		const frame = JSON.stringify({
			type: e.type,
			id,
			seq,
			repository_id: e.repository_id,
			timestamp: e.timestamp ?? new Date().toISOString(),
			data: e.data ?? {},
		});
		for (const ws of wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
		return { id, status: "accepted", seq: { repository: seq, global: [] } };
	};
	const server = createServer((req, res) => {
		const batch = req.url === "/api/v1/events/batch";
		if (req.method !== "POST" || !(batch || req.url === "/api/v1/events"))
			return answer(res, 404, { error: "not found" });
		readBody(req).then(
			(text) => {
				if (!batch) return answer(res, 202, publish(JSON.parse(text) as Input));
				const results = (JSON.parse(text) as { events: Input[] }).events.map(publish);
				answer(res, 202, { accepted: results.length, duplicates: 0, results });
			},
			(err: unknown) => answer(res, 400, { error: String(err) }),
		);
	});
	server.on("upgrade", (req, socket, head) => {
		wss.handleUpgrade(req, socket, head, (ws) => {
			ws.on("error", () => ws.terminate());
			ws.send(welcome());
		});
	});
	server.keepAliveTimeout = 60_000;
	server.listen(0, "127.0.0.1", () => {
		const address = server.address();
		if (address && typeof address !== "string") send({ ev: "listening", port: address.port });
	});
	process.on("message", (m: PeerCommand) => {
		if (m.cmd === "exit") process.exit(0);
	});
}

// The parent loses nothing if a child outlives it by mistake: the IPC channel closing ends it.
process.on("disconnect", () => process.exit(0));
const role = process.argv[2];
if (role === "clients") runClients();
else if (role === "hub") runHub();
else if (process.send) {
	console.error("usage: fanout-peer.ts clients|hub (started by scripts/bench/fanout.ts)");
	process.exit(2);
}

// Local stand-in for Neon's serverless endpoints over a plain local Postgres, on ONE HTTP port:
//   POST /sql               SQL-over-HTTP for neon() / drizzle neon-http (implemented in neon-http.ts)
//   WebSocket upgrade, any path   a wsproxy-compatible WS<->TCP relay for Pool/Client and drizzle
//                                 neon-serverless (the driver dials `<wsProxy>?address=host:port`)
//   /__faults               fault injection control (only when enabled, see below)
// This file owns the server, the relay, shutdown and the CLI used by the dev stack:
//   node scripts/stack/neon-standin.ts --port 4444 --pg-host 127.0.0.1 --pg-port 5432 [--faults]
// Wire facts: /work/shared/research/protocols.md §2.1 and §2.2.
//
// Fault injection (faults.ts), scoped by the HOST of the connection string: every host reaches the
// same local Postgres, so a test that uses DATABASE_URL with its own host (fault-<id>.localtest.me)
// can break exactly its own traffic, on both transports (HTTP: the Neon-Connection-String host;
// WebSocket: the host in `?address=host:port`):
//   curl -X POST http://127.0.0.1:4444/__faults -d '{"scope":"fault-1.localtest.me","mode":"fail"}'
//   curl -X DELETE 'http://127.0.0.1:4444/__faults?scope=fault-1.localtest.me'
//   fail   HTTP: 503 with Neon's error JSON ("Couldn't connect to compute node"), as the driver
//          sees Neon with its compute unreachable. WebSocket: the open relays of the host are cut
//          (Postgres went away) and a new connection gets a FATAL ErrorResponse (SQLSTATE 08006)
//          to its startup message and is closed.
//   delay  HTTP: the request runs delayMs late (or as soon as the fault is cleared). WebSocket:
//          every client message reaches Postgres delayMs late (in order), so every round trip,
//          start-up included, is delayMs slower; for connections opened after the fault is set.
//   hang   HTTP: no answer until the client gives up; when the fault is cleared or changed, or the
//          stand-in closes, a request still held gets the "fail" answer. WebSocket: the upgrade
//          succeeds, then nothing is relayed; clearing the fault drops the socket.
// Enabled with `faults: true` / `--faults` / STANDIN_FAULTS=1 (e.g. `STANDIN_FAULTS=1 npm run dev`),
// and by default under Vitest, whose global setup starts the stand-ins; loopback clients only.
import { createServer, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { parseArgs } from "node:util";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { FAULTS_PATH, FaultRegistry, faultsEnabled, handleFaultControl } from "./faults.ts";
import { createSqlOverHttp } from "./neon-http.ts";

export interface NeonStandIn {
	port: number;
	httpEndpoint: string;
	wsProxy: string;
	close(): Promise<void>;
}

// Pause reading from Postgres while this much is queued for a slow WebSocket reader.
const WS_HIGH_WATER = 4 * 1024 * 1024;

export async function startNeonStandIn(opts: {
	pgHost: string;
	pgPort: number;
	port?: number;
	host?: string;
	/** Serve the fault control endpoint (default: under Vitest or with STANDIN_FAULTS=1). */
	faults?: boolean;
}): Promise<NeonStandIn> {
	// Hostnames are case-insensitive: scopes are kept lower-cased.
	const faults = faultsEnabled(opts.faults) ? new FaultRegistry((s) => s.toLowerCase()) : undefined;
	const sql = createSqlOverHttp({ pgHost: opts.pgHost, pgPort: opts.pgPort, faults });
	const relays = new Set<{ ws: WebSocket; tcp: Socket; scope: string | undefined }>();
	// No sub-protocol is negotiated (the driver requests none) and no origin check, like wsproxy.
	const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
	const server = createServer((req, res) => {
		if (faults && new URL(req.url ?? "/", "http://x").pathname === FAULTS_PATH) {
			handleFaultControl(faults, req, res);
		} else sql.handle(req, res);
	});
	// Postgres "went away" for a host: cut its open sessions, as a server shutdown would.
	faults?.onSet((scope, fault) => {
		if (fault.mode !== "fail") return;
		for (const entry of relays) if (entry.scope === scope) entry.tcp.destroy();
	});

	server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		socket.on("error", () => socket.destroy());
		if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
			socket.destroy();
			return;
		}
		const scope = addressHost(req.url);
		const fault = scope === undefined ? undefined : faults?.get(scope);
		wss.handleUpgrade(req, socket, head, (ws) => {
			if (fault?.mode === "fail") refuseSession(ws);
			else if (fault?.mode === "hang" && faults && scope !== undefined) {
				// Relay nothing; drop the socket when the fault is cleared or changed, or at shutdown.
				ws.on("error", () => ws.terminate());
				ws.on(
					"close",
					faults.hold(scope, () => ws.terminate()),
				);
			} else relay(ws, scope, fault?.mode === "delay" ? fault.delayMs : 0);
		});
	});
	server.on("clientError", (_err, socket) => socket.destroy());

	/**
	 * Relays one WebSocket to a fresh TCP connection to the upstream Postgres. The requested
	 * `address` (e.g. db.localtest.me:5432) is a placeholder and is ignored: everything goes to
	 * pgHost:pgPort (its host only scopes faults). Frames carry a raw Postgres v3 byte stream, so
	 * message boundaries mean nothing. With delayMs > 0 each client message is written that late.
	 */
	function relay(ws: WebSocket, scope: string | undefined, delayMs: number): void {
		const tcp = connect({ host: opts.pgHost, port: opts.pgPort });
		tcp.setNoDelay(true);
		const entry = { ws, tcp, scope };
		relays.add(entry);

		// Postgres -> client. Each TCP chunk becomes one binary message, as wsproxy does.
		tcp.on("data", (chunk: Buffer) => {
			if (ws.readyState !== WebSocket.OPEN) return;
			ws.send(chunk, { binary: true });
			if (ws.bufferedAmount > WS_HIGH_WATER && !tcp.isPaused()) {
				tcp.pause();
				const resume = setInterval(() => {
					if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount < WS_HIGH_WATER / 2) {
						clearInterval(resume);
						tcp.resume();
					}
				}, 5);
			}
		});
		// Client -> Postgres: each message is written whole; text frames are bytes too.
		// (Writes before the TCP connect completes are buffered by net.Socket.)
		ws.on("message", (data: RawData) => {
			const bytes = Buffer.isBuffer(data)
				? data
				: Array.isArray(data)
					? Buffer.concat(data)
					: Buffer.from(data);
			if (delayMs > 0) {
				// Timers of equal duration fire in creation order, so the byte stream stays in order.
				setTimeout(() => {
					if (!tcp.destroyed && !tcp.writableEnded) tcp.write(bytes);
				}, delayMs).unref();
				return;
			}
			if (tcp.destroyed) return;
			if (!tcp.write(bytes)) {
				ws.pause();
				tcp.once("drain", () => ws.resume());
			}
		});

		// Postgres ended the session (Terminate, pg_terminate_backend, shutdown). Close the socket
		// at once with 1000 like wsproxy: the driver's Client.end() only resolves when the proxy
		// closes, since under workerd the client never sends its own close frame.
		tcp.on("close", () => {
			relays.delete(entry);
			if (ws.readyState === WebSocket.OPEN) ws.close(1000, "TCP connection is closed");
			else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
		});
		tcp.on("error", (err) => {
			// Upstream refused or broke: tear down both sides, never the process.
			if (ws.readyState === WebSocket.OPEN) ws.close(1011, `TCP error: ${err.message}`.slice(0, 120));
			tcp.destroy();
		});
		// The client went away: flush what it sent (e.g. Terminate) and hang up; destroy if
		// Postgres does not finish the close promptly.
		ws.on("close", () => {
			if (tcp.destroyed) return;
			tcp.end();
			setTimeout(() => tcp.destroy(), 1000).unref();
		});
		ws.on("error", () => {
			ws.terminate();
			tcp.destroy();
		});
	}

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
			server.off("error", reject);
			resolve();
		});
	});
	const address = server.address();
	if (address === null || typeof address === "string") throw new Error("neon stand-in: no TCP address");
	const port = address.port;

	let closing: Promise<void> | undefined;
	const close = () => {
		closing ??= (async () => {
			faults?.clear();
			for (const { ws, tcp } of relays) {
				ws.terminate();
				tcp.destroy();
			}
			relays.clear();
			for (const ws of wss.clients) ws.terminate();
			const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
			server.closeAllConnections();
			wss.close();
			await Promise.all([stopped, sql.close()]);
		})();
		return closing;
	};

	return {
		port,
		httpEndpoint: `http://127.0.0.1:${port}/sql`,
		// neonConfig.wsProxy's string form: the driver appends `?address=host:port`.
		wsProxy: `127.0.0.1:${port}/v2`,
		close,
	};
}

/** The host the driver asked for (`?address=host:port`), lower-cased: the scope of its faults. */
function addressHost(url: string | undefined): string | undefined {
	const address = new URL(url ?? "/", "http://x").searchParams.get("address");
	if (!address) return undefined;
	try {
		return new URL(`postgres://${address}`).hostname.toLowerCase() || undefined;
	} catch {
		return undefined;
	}
}

// Postgres protocol v3 request codes that precede the startup message; both are answered 'N'.
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * A "fail" fault on the WebSocket side: Neon's proxy accepts the socket and answers the startup
 * message with a FATAL ErrorResponse when it cannot reach the compute, then hangs up. The driver
 * rejects connect() with that message and SQLSTATE.
 */
function refuseSession(ws: WebSocket): void {
	ws.on("error", () => ws.terminate());
	ws.on("message", (data: RawData) => {
		if (ws.readyState !== WebSocket.OPEN) return;
		const bytes = Buffer.isBuffer(data)
			? data
			: Array.isArray(data)
				? Buffer.concat(data)
				: Buffer.from(data);
		const code = bytes.length === 8 ? bytes.readInt32BE(4) : 0;
		if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
			ws.send(Buffer.from("N"), { binary: true });
			return;
		}
		const fields = ["SFATAL", "VFATAL", "C08006", "MCouldn't connect to compute node (fault injected)"];
		const body = Buffer.from(`${fields.join("\0")}\0\0`, "utf8");
		const header = Buffer.alloc(5);
		header.write("E", 0, "latin1");
		header.writeInt32BE(body.length + 4, 1);
		ws.send(Buffer.concat([header, body]), { binary: true });
		ws.close(1000, "TCP connection is closed");
	});
}

async function main(): Promise<void> {
	const { values } = parseArgs({
		options: {
			port: { type: "string", default: "4444" },
			host: { type: "string", default: "127.0.0.1" },
			"pg-host": { type: "string", default: "127.0.0.1" },
			"pg-port": { type: "string", default: "5432" },
			faults: { type: "boolean" },
		},
	});
	const standIn = await startNeonStandIn({
		pgHost: values["pg-host"],
		pgPort: Number(values["pg-port"]),
		port: Number(values.port),
		host: values.host,
		faults: values.faults,
	});
	console.log(
		`neon stand-in ready: http ${standIn.httpEndpoint}, ws ${standIn.wsProxy} -> postgres ${values["pg-host"]}:${values["pg-port"]}`,
	);
	const shutdown = () => {
		standIn.close().then(
			() => process.exit(0),
			() => process.exit(1),
		);
	};
	process.once("SIGINT", shutdown);
	process.once("SIGTERM", shutdown);
}

if (import.meta.main) {
	main().catch((err: unknown) => {
		console.error(`neon stand-in failed: ${err instanceof Error ? err.message : String(err)}`);
		process.exit(1);
	});
}

// Local stand-in for Neon's serverless endpoints over a plain local Postgres, on ONE HTTP port:
//   POST /sql               SQL-over-HTTP for neon() / drizzle neon-http (implemented in neon-http.ts)
//   WebSocket upgrade, any path   a wsproxy-compatible WS<->TCP relay for Pool/Client and drizzle
//                                 neon-serverless (the driver dials `<wsProxy>?address=host:port`)
// This file owns the server, the relay, shutdown and the CLI used by the dev stack:
//   node scripts/stack/neon-standin.ts --port 4444 --pg-host 127.0.0.1 --pg-port 5432
// Wire facts: /work/shared/research/protocols.md §2.1 and §2.2.
import { createServer, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { parseArgs } from "node:util";
import { type RawData, WebSocket, WebSocketServer } from "ws";
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
}): Promise<NeonStandIn> {
	const sql = createSqlOverHttp({ pgHost: opts.pgHost, pgPort: opts.pgPort });
	const relays = new Set<{ ws: WebSocket; tcp: Socket }>();
	// No sub-protocol is negotiated (the driver requests none) and no origin check, like wsproxy.
	const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
	const server = createServer((req, res) => sql.handle(req, res));

	server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
		socket.on("error", () => socket.destroy());
		if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
			socket.destroy();
			return;
		}
		wss.handleUpgrade(req, socket, head, (ws) => relay(ws));
	});
	server.on("clientError", (_err, socket) => socket.destroy());

	/**
	 * Relays one WebSocket to a fresh TCP connection to the upstream Postgres. The requested
	 * `address` (e.g. db.localtest.me:5432) is a placeholder and is ignored: everything goes to
	 * pgHost:pgPort. Frames carry a raw Postgres v3 byte stream, so message boundaries mean nothing.
	 */
	function relay(ws: WebSocket): void {
		const tcp = connect({ host: opts.pgHost, port: opts.pgPort });
		tcp.setNoDelay(true);
		const entry = { ws, tcp };
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

async function main(): Promise<void> {
	const { values } = parseArgs({
		options: {
			port: { type: "string", default: "4444" },
			host: { type: "string", default: "127.0.0.1" },
			"pg-host": { type: "string", default: "127.0.0.1" },
			"pg-port": { type: "string", default: "5432" },
		},
	});
	const standIn = await startNeonStandIn({
		pgHost: values["pg-host"],
		pgPort: Number(values["pg-port"]),
		port: Number(values.port),
		host: values.host,
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

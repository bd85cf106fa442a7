// The Worker for the browser end-to-end test, run the way the benchmarks run it: the bundle
// `wrangler deploy` would upload (--dry-run --outdir), in workerd through Miniflare's Node API,
// with wrangler.toml's compatibility settings, [vars], Durable Object and Analytics Engine
// bindings plus the test stack's addresses. Durable Object storage lives in a directory of the
// test's own, so `restart()` is a deploy in miniature: workerd stops (every socket drops), a new
// one starts over the same storage (hub seqs and replay logs survive), on a new port.
// In front of it, `FrontDoor`: a loopback TCP relay the browser talks to, so the page keeps one
// origin across restarts, and the test can hold the door shut (connections refused) while it
// publishes events the page must then catch up on.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare, V4MiniflareOptions } from "miniflare";
import {
	type ModuleType,
	moduleTypeOf,
	ROOT,
	readWranglerToml,
	readWranglerVars,
} from "../../scripts/lib/local-config.ts";

/** wrangler.toml's [vars], as strings. */
export const wranglerVars = readWranglerVars;

export class TestWorker {
	#mf: Miniflare | undefined;
	#options: V4MiniflareOptions | undefined;
	readonly #buildDir: string;
	readonly #storageDir: string;
	/** Warnings and errors the Worker logged. */
	readonly problems: string[] = [];
	origin = "";

	private constructor(buildDir: string, storageDir: string) {
		this.#buildDir = buildDir;
		this.#storageDir = storageDir;
	}

	/** Builds the bundle and starts it; `bindings` override wrangler.toml's [vars]. */
	static async start(bindings: Record<string, string>): Promise<TestWorker> {
		const buildDir = mkdtempSync(join(tmpdir(), "gi-e2e-build-"));
		const storageDir = mkdtempSync(join(tmpdir(), "gi-e2e-do-"));
		const worker = new TestWorker(buildDir, storageDir);
		try {
			execFileSync(
				process.execPath,
				[`${ROOT}node_modules/wrangler/bin/wrangler.js`, "deploy", "--dry-run", "--outdir", buildDir],
				{
					cwd: ROOT,
					stdio: ["ignore", "ignore", "pipe"],
					env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
					timeout: 180_000,
				},
			);
			worker.#options = worker.#optionsFor(bindings);
			await worker.#launch();
			return worker;
		} catch (err) {
			await worker.stop();
			throw err;
		}
	}

	#optionsFor(bindings: Record<string, string>): V4MiniflareOptions {
		const config = readWranglerToml();
		const modules: { type: ModuleType; path: string }[] = [
			{ type: "ESModule", path: join(this.#buildDir, "index.js") },
		];
		for (const file of readdirSync(this.#buildDir).sort()) {
			const type = moduleTypeOf(file);
			if (file !== "index.js" && type) modules.push({ type, path: join(this.#buildDir, file) });
		}
		const sqlite = new Set((config.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []));
		return {
			name: "gitinsight-edge",
			modules,
			modulesRoot: this.#buildDir,
			compatibilityDate: config.compatibility_date ?? "2026-11-01",
			compatibilityFlags: config.compatibility_flags ?? [],
			bindings: { ...wranglerVars(), ...bindings },
			durableObjects: Object.fromEntries(
				(config.durable_objects?.bindings ?? []).map((b) => [
					b.name,
					{ className: b.class_name, useSQLite: sqlite.has(b.class_name) },
				]),
			),
			analyticsEngineDatasets: Object.fromEntries(
				(config.analytics_engine_datasets ?? []).map((d) => [d.binding, { dataset: d.dataset }]),
			),
			// Durable Object storage that outlives one workerd process (deletes with the test).
			resourcePersistencePath: this.#storageDir,
			host: "127.0.0.1",
			port: 0,
			unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
			handleStructuredLogs: (entry) => {
				if (entry.level === "warn" || entry.level === "error") {
					if (this.problems.length < 50) this.problems.push(`${entry.level}: ${entry.message.slice(0, 300)}`);
				}
			},
		};
	}

	async #launch(): Promise<void> {
		const { convertV4MiniflareOptions, Miniflare } = await import("miniflare");
		if (!this.#options) throw new Error("not configured");
		const mf = new Miniflare({
			...convertV4MiniflareOptions(this.#options),
			enableDevRegistry: false,
			telemetry: { enabled: false },
		});
		this.#mf = mf;
		await mf.ready;
		this.origin = (await mf.unsafeGetDirectURL()).origin;
	}

	/** Stops workerd (every connection drops) and starts a new one over the same storage. */
	async restart(): Promise<void> {
		const old = this.#mf;
		this.#mf = undefined;
		await old?.dispose();
		await this.#launch();
	}

	async stop(): Promise<void> {
		const mf = this.#mf;
		this.#mf = undefined;
		try {
			await mf?.dispose();
		} finally {
			rmSync(this.#buildDir, { recursive: true, force: true });
			rmSync(this.#storageDir, { recursive: true, force: true });
		}
	}
}

/**
 * A loopback TCP relay: the browser's only address for the Worker. `target()` names where
 * to relay (read per connection, so it follows restarts); `drop()` cuts every open connection;
 * while `shut`, new connections are closed at once (the browser sees a failed connect).
 */
export class FrontDoor {
	shut = false;
	readonly #server: Server;
	readonly #open = new Set<Socket>();
	port = 0;

	private constructor(target: () => string) {
		this.#server = createServer((client) => {
			if (this.shut) {
				client.destroy();
				return;
			}
			const url = new URL(target());
			const upstream = tcpConnect(Number(url.port), url.hostname);
			for (const s of [client, upstream]) {
				this.#open.add(s);
				s.on("close", () => this.#open.delete(s));
				s.on("error", () => {
					client.destroy();
					upstream.destroy();
				});
			}
			client.pipe(upstream);
			upstream.pipe(client);
		});
	}

	static async open(target: () => string): Promise<FrontDoor> {
		const door = new FrontDoor(target);
		await new Promise<void>((resolve, reject) => {
			door.#server.once("error", reject);
			door.#server.listen(0, "127.0.0.1", () => resolve());
		});
		const address = door.#server.address();
		if (address === null || typeof address === "string") throw new Error("no port");
		door.port = address.port;
		return door;
	}

	get origin(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	/** Cuts every connection through the door (the browser sees an abnormal close). */
	drop(): void {
		for (const s of this.#open) s.destroy();
		this.#open.clear();
	}

	async close(): Promise<void> {
		this.shut = true;
		this.drop();
		await new Promise<void>((resolve) => this.#server.close(() => resolve()));
	}
}

// GET /metrics end to end, checked by Prometheus' own tools (Debian's `prometheus` package,
// installed by scripts/ensure-prometheus.sh): the built Worker in workerd (test/e2e/worker.ts)
// writes its datapoints to this run's Analytics Engine stand-in and reads them back through the
// stand-in's AE SQL API. The test makes real traffic (search hit and miss, a 400, a 404 on a
// route and an unmatched one, summaries with a user token, the leaderboard, an event from a
// service, a WebSocket held open), then:
//   1. waits until /metrics counts exactly that traffic, and checks the series and labels;
//   2. runs `promtool check metrics` on the exposition: no lint problem;
//   3. starts a real Prometheus server on a free loopback port scraping the Worker every second
//      and reads a series back through its query API, equal to what /metrics says.
// The Worker writes to a dataset of its own (AE_DATASET), so other tests' traffic never counts.
// Past 400 lines: a small exposition parser and a Prometheus server driver live here, since
// this test is their only user.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { e2eToken, someRepository, stackBindings } from "./stack.ts";
import { TestWorker, wranglerVars } from "./worker.ts";

const INSTALL_HINT = "run scripts/ensure-prometheus.sh (installs Debian's prometheus package; CI does)";
const JOB = "gitinsight-edge";
const SEARCH = "/api/v1/fast/search";
const SUMMARY = "/api/v1/fast/repositories/:repo_id/summary";
const LEADERBOARD = "/api/v1/fast/leaderboard";
const EVENTS = "/api/v1/events";
const GLOBAL_STREAM = "/api/v1/stream/global/activity";
const METRICS_DEADLINE_MS = 30_000;
const PROMETHEUS_DEADLINE_MS = 45_000;
/** The histogram's buckets: Prometheus' defaults (client_golang DefBuckets), as /metrics promises. */
const DURATION_BUCKETS = [
	"0.005",
	"0.01",
	"0.025",
	"0.05",
	"0.1",
	"0.25",
	"0.5",
	"1",
	"2.5",
	"5",
	"10",
	"+Inf",
];

// ---------------------------------------------------------------------------------------------
// The text exposition, parsed (enough of format 0.0.4 for what /metrics writes).

interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(raw: string): number {
	if (raw === "+Inf") return Number.POSITIVE_INFINITY;
	if (raw === "-Inf") return Number.NEGATIVE_INFINITY;
	if (raw === "NaN") return Number.NaN;
	const n = Number(raw);
	if (raw.trim() === "" || Number.isNaN(n)) throw new Error(`not a sample value: ${raw}`);
	return n;
}

function parseExposition(text: string): Sample[] {
	const samples: Sample[] = [];
	for (const line of text.split("\n")) {
		if (line === "" || line.startsWith("#")) continue;
		const m = SAMPLE_LINE.exec(line);
		if (!m?.[1] || m[3] === undefined) throw new Error(`not a sample line: ${line}`);
		const labels: Record<string, string> = {};
		for (const [, k, v] of (m[2] ?? "").matchAll(LABEL_PAIR)) {
			if (k === undefined || v === undefined) continue;
			labels[k] = v.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
		}
		samples.push({ name: m[1], labels, value: parseValue(m[3]) });
	}
	return samples;
}

/** Samples of `name` whose labels include `labels`. */
function select(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
	return samples.filter(
		(s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
	);
}

/** The one sample of `name` with exactly these labels (undefined if absent). */
function seriesValue(
	samples: Sample[],
	name: string,
	labels: Record<string, string> = {},
): number | undefined {
	const want = Object.keys(labels).length;
	const found = select(samples, name, labels).filter((s) => Object.keys(s.labels).length === want);
	if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} appears ${found.length} times`);
	return found[0]?.value;
}

// ---------------------------------------------------------------------------------------------
// Prometheus' tools.

function toolVersion(tool: "promtool" | "prometheus"): string {
	const r = spawnSync(tool, ["--version"], { encoding: "utf8", timeout: 10_000 });
	if (r.error || r.status !== 0) {
		const why = r.error ? r.error.message : `exit ${r.status}: ${r.stderr.trim()}`;
		throw new Error(`${tool} is not available (${why}): ${INSTALL_HINT}`);
	}
	return `${r.stdout}${r.stderr}`.split("\n")[0] ?? tool;
}

/** `promtool check metrics < file` (it reads the exposition from stdin). */
function promtoolCheck(file: string): { status: number | null; output: string } {
	const fd = openSync(file, "r");
	try {
		const r = spawnSync("promtool", ["check", "metrics"], {
			stdio: [fd, "pipe", "pipe"],
			encoding: "utf8",
			timeout: 30_000,
		});
		if (r.error) throw new Error(`promtool: ${r.error.message}: ${INSTALL_HINT}`);
		return { status: r.status, output: `${r.stdout}${r.stderr}` };
	} finally {
		closeSync(fd);
	}
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => {
				if (address === null || typeof address === "string") reject(new Error("no port"));
				else resolve(address.port);
			});
		});
	});
}

/** A Prometheus server of the test's own: its port, its config, its data directory. */
class PrometheusServer {
	/** The server's last log lines. */
	readonly log: string[] = [];
	readonly proc: ChildProcess;
	readonly origin: string;
	readonly #exited: Promise<void>;

	private constructor(proc: ChildProcess, origin: string) {
		this.proc = proc;
		this.origin = origin;
		for (const stream of [proc.stdout, proc.stderr]) {
			stream?.setEncoding("utf8");
			stream?.on("data", (chunk: string) => {
				for (const line of chunk.split("\n")) if (line) this.log.push(line);
				if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
			});
		}
		this.#exited = new Promise((resolve) => proc.once("exit", () => resolve()));
	}

	get running(): boolean {
		return this.proc.exitCode === null && this.proc.signalCode === null;
	}

	static async start(dir: string, target: string): Promise<PrometheusServer> {
		const config = join(dir, "prometheus.yml");
		writeFileSync(
			config,
			[
				"global:",
				"  scrape_interval: 1s",
				"  scrape_timeout: 1s",
				"scrape_configs:",
				`  - job_name: ${JOB}`,
				"    metrics_path: /metrics",
				"    static_configs:",
				`      - targets: ["${target}"]`,
				"",
			].join("\n"),
		);
		// The port is free when picked; another process may take it before Prometheus binds it.
		for (let attempt = 1; ; attempt++) {
			const port = await freePort();
			const proc = spawn(
				"prometheus",
				[
					`--config.file=${config}`,
					`--storage.tsdb.path=${join(dir, "data")}`,
					`--web.listen-address=127.0.0.1:${port}`,
					"--log.level=info",
				],
				{ stdio: ["ignore", "pipe", "pipe"] },
			);
			const server = new PrometheusServer(proc, `http://127.0.0.1:${port}`);
			if (await server.#ready(20_000)) return server;
			await server.stop();
			const inUse = server.log.some((l) => /address already in use/i.test(l));
			if (!inUse || attempt >= 3) {
				throw new Error(`prometheus did not become ready:\n  ${server.log.slice(-20).join("\n  ")}`);
			}
		}
	}

	async #ready(timeoutMs: number): Promise<boolean> {
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline && this.running) {
			try {
				const res = await fetch(`${this.origin}/-/ready`, { signal: AbortSignal.timeout(1000) });
				await res.body?.cancel();
				if (res.ok) return true;
			} catch {
				// Not listening yet.
			}
			await sleep(200);
		}
		return false;
	}

	/** An instant query; the result vector. */
	async query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
		const res = await fetch(`${this.origin}/api/v1/query?query=${encodeURIComponent(promql)}`, {
			signal: AbortSignal.timeout(5000),
		});
		const body = (await res.json()) as {
			status: string;
			error?: string;
			data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
		};
		if (res.status !== 200 || body.status !== "success" || body.data?.resultType !== "vector") {
			throw new Error(`query ${promql} answered ${res.status}: ${JSON.stringify(body)}`);
		}
		return body.data.result;
	}

	async targets(): Promise<{ health: string; lastError: string; scrapeUrl: string }[]> {
		const res = await fetch(`${this.origin}/api/v1/targets?state=active`, {
			signal: AbortSignal.timeout(5000),
		});
		const body = (await res.json()) as {
			data: { activeTargets: { health: string; lastError: string; scrapeUrl: string }[] };
		};
		return body.data.activeTargets;
	}

	/** SIGTERM, then SIGKILL if it has not exited after the grace period. */
	async stop(graceMs = 5000): Promise<void> {
		if (!this.running) return;
		this.proc.kill("SIGTERM");
		const exited = await Promise.race([this.#exited.then(() => true), sleep(graceMs).then(() => false)]);
		if (!exited) {
			this.proc.kill("SIGKILL");
			await this.#exited;
		}
	}
}

// ---------------------------------------------------------------------------------------------
// The Worker and its traffic.

let worker: TestWorker | undefined;
let prometheus: PrometheusServer | undefined;
let socket: WebSocket | undefined;
const tempDirs: string[] = [];
let promtoolVersion = "";
let prometheusVersion = "";
let repoId = "";
/** Requests made, by "METHOD endpoint status". */
const expected = new Map<string, number>();
/** Responses that went through the layered cache (X-Cache), and those served from it, by tier. */
const cacheSeen = { cacheable: 0, served: 0, memory: 0, edge: 0, redis: 0 };
let exposition = "";
/** /metrics requests the test made. */
let scrapes = 0;
let samples: Sample[] = [];

/** One request to the Worker, counted under the route pattern it should be reported as. */
async function call(
	endpoint: string,
	path: string,
	status: number,
	init: RequestInit = {},
): Promise<Response> {
	if (!worker) throw new Error("no worker");
	const res = await fetch(`${worker.origin}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
	const body = await res.text();
	expect(res.status, `${init.method ?? "GET"} ${path}: ${body.slice(0, 300)}`).toBe(status);
	const key = `${init.method ?? "GET"} ${endpoint} ${status}`;
	expected.set(key, (expected.get(key) ?? 0) + 1);
	const cache = res.headers.get("x-cache")?.toLowerCase();
	if (cache === "hit" || cache === "stale" || cache === "miss") {
		cacheSeen.cacheable++;
		if (cache !== "miss") {
			cacheSeen.served++;
			const tier = res.headers.get("x-cache-tier")?.toLowerCase();
			if (tier === "memory" || tier === "edge" || tier === "redis") cacheSeen[tier]++;
		}
	}
	return new Response(body, { status: res.status, headers: res.headers });
}

/** Opens the global activity stream and waits for its welcome frame. */
async function openGlobalStream(): Promise<{ ws: WebSocket; frames: Record<string, unknown>[] }> {
	if (!worker) throw new Error("no worker");
	const frames: Record<string, unknown>[] = [];
	const ws = new WebSocket(`${worker.origin.replace(/^http/, "ws")}${GLOBAL_STREAM}`, ["gitinsight.v1"]);
	ws.on("message", (data: WebSocket.RawData) => {
		frames.push(JSON.parse(String(data)) as Record<string, unknown>);
	});
	const upgraded = new Promise<number>((resolve, reject) => {
		ws.once("upgrade", (res) => resolve(res.statusCode ?? 0));
		ws.once("unexpected-response", (_req, res) => reject(new Error(`stream answered ${res.statusCode}`)));
		ws.once("error", reject);
	});
	expect(await upgraded).toBe(101);
	const key = `GET ${GLOBAL_STREAM} 101`;
	expected.set(key, (expected.get(key) ?? 0) + 1);
	await until(() => frames.some((f) => f.type === "welcome"), 10_000, "no welcome frame");
	return { ws, frames };
}

async function until(ok: () => boolean, timeoutMs: number, message: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!ok()) {
		if (Date.now() > deadline) throw new Error(message);
		await sleep(50);
	}
}

async function scrape(): Promise<string> {
	if (!worker) throw new Error("no worker");
	scrapes++;
	const res = await fetch(`${worker.origin}/metrics`, { signal: AbortSignal.timeout(10_000) });
	const text = await res.text();
	expect(res.status, text.slice(0, 300)).toBe(200);
	expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
	return text;
}

function tempDir(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	tempDirs.push(dir);
	return dir;
}

beforeAll(async () => {
	// Nothing is skipped: without Prometheus' tools the test fails and says how to get them.
	promtoolVersion = toolVersion("promtool");
	prometheusVersion = toolVersion("prometheus");
	console.log(`[e2e] ${promtoolVersion}; ${prometheusVersion}`);

	repoId = await someRepository();
	worker = await TestWorker.start({
		...stackBindings(),
		// A dataset of this test's own: nothing else this run writes is counted here.
		AE_DATASET: `gi_e2e_metrics_${randomBytes(4).toString("hex")}`,
		// Every scrape reads AE afresh (the test waits for ingestion by polling).
		METRICS_CACHE_TTL_MS: "0",
	});
});

afterAll(async () => {
	socket?.terminate();
	await prometheus
		?.stop()
		.catch((err: unknown) => console.error(`[e2e] stopping prometheus: ${String(err)}`));
	await worker?.stop().catch((err: unknown) => console.error(`[e2e] stopping the worker: ${String(err)}`));
	for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
	if (worker?.problems.length) console.log(`[e2e] the Worker logged:\n  ${worker.problems.join("\n  ")}`);
});

describe("GET /metrics from real traffic, checked by promtool and scraped by Prometheus", () => {
	it("counts the traffic by method, route pattern and status", async () => {
		const [userToken, serviceToken] = await Promise.all([
			e2eToken("user", "e2e-metrics-user"),
			e2eToken("service", "e2e-metrics-service"),
		]);
		const auth = { authorization: `Bearer ${userToken}` };

		// Search: a miss, then the same query from the cache; a bad parameter.
		await call(SEARCH, `${SEARCH}?q=cli`, 200);
		await call(SEARCH, `${SEARCH}?q=cli`, 200);
		await call(SEARCH, `${SEARCH}?q=cli&limit=1000`, 400);
		// Summaries (a user token): a seeded repository twice, an unknown one (a 404 on a route).
		await call(SUMMARY, `/api/v1/fast/repositories/${repoId}/summary`, 200, { headers: auth });
		await call(SUMMARY, `/api/v1/fast/repositories/${repoId}/summary`, 200, { headers: auth });
		await call(SUMMARY, "/api/v1/fast/repositories/00000000-0000-4000-8000-000000000000/summary", 404, {
			headers: auth,
		});
		// No route at all.
		await call("unmatched", "/api/v1/no/such/thing", 404);
		await call(LEADERBOARD, `${LEADERBOARD}?category=popular&timeframe=week&limit=5`, 200);

		// A socket on the global stream stays open; a service's event reaches it.
		const stream = await openGlobalStream();
		socket = stream.ws;
		const eventId = `e2e-metrics-${randomBytes(6).toString("hex")}`;
		await call(EVENTS, EVENTS, 202, {
			method: "POST",
			headers: { authorization: `Bearer ${serviceToken}`, "content-type": "application/json" },
			body: JSON.stringify({
				id: eventId,
				type: "analysis_completed",
				repository_id: repoId,
				data: { insights_added: 3 },
			}),
		});
		await until(
			() => stream.frames.some((f) => f.id === eventId),
			10_000,
			"the event never reached the socket",
		);

		// AE ingestion is asynchronous (the sink is posted to from waitUntil): poll until /metrics
		// counts every request made and the hubs' reports are in.
		const shards = Number(wranglerVars().GLOBAL_HUB_SHARDS ?? 4);
		const missing = (s: Sample[]): string[] => {
			const wants: [string, Record<string, string>, number][] = [
				...[...expected].map(([key, n]): [string, Record<string, string>, number] => {
					const [method = "", endpoint = "", status = ""] = key.split(" ");
					return ["gitinsight_requests_total", { method, endpoint, status }, n];
				}),
				["gitinsight_events_ingested_total", { type: "analysis_completed" }, 1],
				["gitinsight_hub_events_published_total", { hub_kind: "repo" }, 1],
				["gitinsight_hub_events_published_total", { hub_kind: "global" }, shards],
				["gitinsight_messages_delivered_total", { hub_kind: "global" }, 1],
				["gitinsight_active_connections", {}, 1],
			];
			return wants
				.filter(([name, labels, n]) => seriesValue(s, name, labels) !== n)
				.map(
					([name, labels, n]) =>
						`${name}${JSON.stringify(labels)} = ${seriesValue(s, name, labels)}, want ${n}`,
				);
		};
		const deadline = Date.now() + METRICS_DEADLINE_MS;
		for (;;) {
			exposition = await scrape();
			samples = parseExposition(exposition);
			const still = missing(samples);
			if (still.length === 0) break;
			if (Date.now() > deadline) {
				throw new Error(
					`/metrics never counted the traffic within ${METRICS_DEADLINE_MS} ms:\n  ${still.join("\n  ")}\nlast exposition:\n${exposition}`,
				);
			}
			await sleep(250);
		}
		console.log(
			`[e2e] /metrics counted the traffic after ${scrapes} scrape(s): ${exposition.split("\n").length - 1} lines, ${samples.length} samples`,
		);

		// Every request made, exactly, under its route pattern.
		for (const [key, n] of expected) {
			const [method = "", endpoint = "", status = ""] = key.split(" ");
			expect(seriesValue(samples, "gitinsight_requests_total", { method, endpoint, status }), key).toBe(n);
		}
		const requestSeries = select(samples, "gitinsight_requests_total");
		for (const s of requestSeries) {
			expect(Object.keys(s.labels).sort()).toEqual(["endpoint", "method", "status"]);
			// Patterns, never raw paths: no ids, no query strings.
			expect(s.labels.endpoint === "unmatched" || s.labels.endpoint?.startsWith("/")).toBe(true);
			expect(s.labels.endpoint).not.toContain(repoId);
			expect(s.labels.endpoint).not.toContain("?");
			expect(s.labels.endpoint).not.toContain("no/such");
			expect(s.labels.status).toMatch(/^[1-5]\d\d$/);
		}
		// Besides the traffic above, only the scrapes themselves (each is counted once it is in AE;
		// the one being answered never is).
		const others = requestSeries.filter(
			(s) => !expected.has(`${s.labels.method} ${s.labels.endpoint} ${s.labels.status}`),
		);
		for (const s of others) {
			expect(`${s.labels.method} ${s.labels.endpoint} ${s.labels.status}`).toBe("GET /metrics 200");
			expect(s.value).toBeGreaterThanOrEqual(1);
			expect(s.value).toBeLessThan(scrapes);
		}

		// The histogram: per method and endpoint, cumulative buckets in order, +Inf == _count ==
		// the requests over every status, a plausible _sum.
		const routes = new Map<string, { method: string; endpoint: string; requests: number }>();
		for (const s of requestSeries) {
			const { method = "", endpoint = "" } = s.labels;
			const r = routes.get(`${method} ${endpoint}`) ?? { method, endpoint, requests: 0 };
			r.requests += s.value;
			routes.set(`${method} ${endpoint}`, r);
		}
		for (const { method, endpoint, requests } of routes.values()) {
			const labels = { method, endpoint };
			const buckets = select(samples, "gitinsight_request_duration_seconds_bucket", labels);
			expect(buckets.map((b) => b.labels.le)).toEqual(DURATION_BUCKETS);
			const counts = buckets.map((b) => b.value);
			for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1] ?? 0);
			const count = seriesValue(samples, "gitinsight_request_duration_seconds_count", labels);
			expect(counts.at(-1), `${method} ${endpoint} +Inf`).toBe(count);
			expect(count, `${method} ${endpoint} _count`).toBe(requests);
			// _sum agrees with the buckets: each request in (le[i-1], le[i]] adds at most le[i] and
			// more than le[i-1] (the +Inf bucket: more than 10 s, at most the test's 15 s timeout).
			const edges = DURATION_BUCKETS.map((le) => (le === "+Inf" ? 15 : Number(le)));
			let low = 0;
			let high = 0;
			counts.forEach((c, i) => {
				const inBucket = c - (counts[i - 1] ?? 0);
				low += inBucket * (edges[i - 1] ?? 0);
				high += inBucket * (edges[i] ?? 0);
			});
			const sum = seriesValue(samples, "gitinsight_request_duration_seconds_sum", labels) ?? -1;
			expect(sum, `${method} ${endpoint} _sum`).toBeGreaterThanOrEqual(low - 1e-9);
			expect(sum, `${method} ${endpoint} _sum`).toBeLessThanOrEqual(high + 1e-9);
		}

		// The open socket, its hub, the event and its delivery.
		expect(seriesValue(samples, "gitinsight_active_connections")).toBe(1);
		expect(seriesValue(samples, "gitinsight_hub_connections", { hub_kind: "global" })).toBe(1);
		expect(seriesValue(samples, "gitinsight_events_ingested_total", { type: "analysis_completed" })).toBe(1);
		expect(seriesValue(samples, "gitinsight_events_duplicate_total", { type: "analysis_completed" })).toBe(0);
		expect(seriesValue(samples, "gitinsight_messages_delivered_total", { hub_kind: "global" })).toBe(1);
		expect(seriesValue(samples, "gitinsight_messages_delivered_total", { hub_kind: "repo" })).toBe(0);
		expect(seriesValue(samples, "gitinsight_hub_events_published_total", { hub_kind: "repo" })).toBe(1);
		expect(seriesValue(samples, "gitinsight_hub_events_published_total", { hub_kind: "global" })).toBe(
			shards,
		);

		// Cache hit ratio over the last 5 minutes, from the X-Cache headers the test saw.
		expect(cacheSeen.cacheable).toBeGreaterThan(0);
		expect(cacheSeen.served).toBeGreaterThan(0);
		for (const type of ["all", "memory", "edge", "redis"] as const) {
			const want = (type === "all" ? cacheSeen.served : cacheSeen[type]) / cacheSeen.cacheable;
			expect(seriesValue(samples, "gitinsight_cache_hit_ratio", { cache_type: type }), type).toBeCloseTo(
				want,
				9,
			);
		}

		expect(seriesValue(samples, "gitinsight_metrics_source_up")).toBe(1);
		const age = seriesValue(samples, "gitinsight_metrics_source_age_seconds") ?? -1;
		expect(age).toBeGreaterThanOrEqual(0);
		expect(age).toBeLessThan(5);
		expect(
			seriesValue(samples, "gitinsight_build_info", {
				version: wranglerVars().APP_VERSION ?? "",
				environment: "test",
			}),
		).toBe(1);
	});

	it("passes promtool check metrics", () => {
		expect(exposition, "the previous test produced no exposition").not.toBe("");
		const file = join(tempDir("gi-e2e-metrics-"), "metrics.prom");
		writeFileSync(file, exposition);
		const { status, output } = promtoolCheck(file);
		console.log(`[e2e] promtool check metrics: exit ${status}${output ? `\n${output}` : ", no output"}`);
		expect(output.trim(), "promtool's lint problems").toBe("");
		expect(status).toBe(0);
	});

	it("is scraped by a real Prometheus server, which answers the same values", async () => {
		if (!worker) throw new Error("no worker");
		const searchOk = seriesValue(samples, "gitinsight_requests_total", {
			method: "GET",
			endpoint: SEARCH,
			status: "200",
		});
		expect(searchOk).toBe(2);
		const target = new URL(worker.origin).host;
		prometheus = await PrometheusServer.start(tempDir("gi-e2e-prometheus-"), target);
		const server = prometheus;

		const promql = `gitinsight_requests_total{job="${JOB}",endpoint="${SEARCH}",method="GET",status="200"}`;
		const deadline = Date.now() + PROMETHEUS_DEADLINE_MS;
		let result: Awaited<ReturnType<PrometheusServer["query"]>> = [];
		for (;;) {
			result = await server.query("gitinsight_requests_total");
			if (result.some((r) => r.metric.endpoint === SEARCH)) break;
			if (Date.now() > deadline || !server.running) {
				throw new Error(
					`Prometheus never had gitinsight_requests_total: ${JSON.stringify(await server.targets().catch(() => []))}\n  ${server.log.slice(-20).join("\n  ")}`,
				);
			}
			await sleep(500);
		}
		console.log(
			`[e2e] Prometheus: gitinsight_requests_total →\n  ${result.map((r) => `${JSON.stringify(r.metric)} ${r.value[1]}`).join("\n  ")}`,
		);
		const search = await server.query(promql);
		expect(search).toHaveLength(1);
		expect(search[0]?.metric).toMatchObject({
			__name__: "gitinsight_requests_total",
			job: JOB,
			instance: target,
			method: "GET",
			endpoint: SEARCH,
			status: "200",
		});
		expect(Number(search[0]?.value[1])).toBe(searchOk);

		const up = await server.query(`up{job="${JOB}"}`);
		expect(up).toHaveLength(1);
		expect(up[0]?.value[1]).toBe("1");
		const targets = await server.targets();
		console.log(
			`[e2e] Prometheus targets: ${targets.map((t) => `${t.scrapeUrl} ${t.health} lastError=${JSON.stringify(t.lastError)}`).join(", ")}`,
		);
		expect(targets).toEqual([
			expect.objectContaining({ health: "up", lastError: "", scrapeUrl: `http://${target}/metrics` }),
		]);
		// The histogram and the gauges made it through the parser too.
		const count = await server.query(
			`gitinsight_request_duration_seconds_count{job="${JOB}",endpoint="${SEARCH}",method="GET"}`,
		);
		expect(Number(count[0]?.value[1])).toBe(3);
		const connections = await server.query(`gitinsight_active_connections{job="${JOB}"}`);
		expect(Number(connections[0]?.value[1])).toBe(1);
	});
});

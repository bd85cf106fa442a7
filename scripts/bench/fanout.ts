// `npm run bench:fanout -- [--sizes 1000,10000] [--events 50] [--burst-messages 1000000]
//  [--burst-concurrency 16] [--burst-batch 1] [--procs 4] [--rounds 1] [--profile <file>]`:
// WebSocket fan-out of one RepoHub in workerd, side by side with a plain Node `ws` hub, with the
// same clients and payloads. --profile: a V8 CPU profile of the Worker's isolate during each
// workerd burst (written as <file>-<size>.cpuprofile, the top functions printed); sampling slows
// workerd, so a profiled run is for finding where time goes, not for the figures.
//
// Set-up (torn down at the end, also on Ctrl-C and at a hard limit of 8 minutes): the bundle
// `wrangler deploy` would upload, run by Miniflare's Node API on a direct workerd socket (no
// wrangler dev proxy); database gi_bench_realtime (1,000 repositories: the stream refuses
// unknown ones) and the Neon/Upstash stand-ins; a per-run JWT secret with a user token (the
// clients) and a service token (the publisher). The baseline hub and the clients are child
// processes (fanout-peer.ts): the clients spread over --procs processes, each with its own
// event loop and file-descriptor limit. workerd needs two descriptors per WebSocket: the
// open-file limit is checked first and raised with prlimit when allowed; otherwise every size
// is capped at what fits (the same for both hubs) and the run says so.
// For each size and each hub (the order alternates by size and round):
//   connect: N sockets (user token in Authorization; the Worker authenticates each, checks the
//            repository, and hands it to the RepoHub, which accepts it hibernatably); a failed
//            connect is retried 3 times with jitter, as a client would;
//   latency: --events events POSTed one by one (service token); for each, the time from sending
//            the POST to the moment the last of the N sockets has the event (p50/p99/max), and
//            the spread from the first socket having it to the last (the broadcast alone);
//   burst:   B = burst-messages / N events POSTed with --burst-concurrency in flight (one per
//            POST, or --burst-batch per /events/batch POST); delivered messages/s = N × B /
//            (time from the first POST to the last socket having the last event), and the hub
//            process's CPU time per delivered message (/proc/<pid>/stat);
//   check:   every socket counted every seq after its welcome, in order: missing = 0.
// Times are CLOCK_MONOTONIC (process.hrtime), the same clock in every process here. The machine
// has 2 cores shared by the hub, the clients and whatever else runs: compare the two hubs within
// one run (ratios), not absolute figures across runs.

import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import type { ConnectReport, PeerCommand, PeerReport, SocketStats } from "./fanout-peer.ts";
import { connectInspector, type Inspector, saveProfile, startProfile } from "./inspector.ts";
import {
	buildWorker,
	cpuSeconds,
	defer,
	ensureBenchDatabase,
	errorText,
	fmtInt,
	fmtMs,
	log,
	median,
	mintToken,
	percentile,
	query,
	runBench,
	sleep,
	startStack,
	startWorker,
} from "./lib.ts";

const { values } = parseArgs({
	options: {
		sizes: { type: "string", default: "1000,10000" },
		events: { type: "string", default: "50" },
		"burst-messages": { type: "string", default: "1000000" },
		"burst-concurrency": { type: "string", default: "16" },
		"burst-batch": { type: "string", default: "1" },
		procs: { type: "string", default: "4" },
		rounds: { type: "string", default: "1" },
		profile: { type: "string" },
	},
	strict: true,
});
const ASKED = values.sizes.split(",").map(Number);
/** The sizes measured: --sizes, capped by what the open-file limit allows workerd. */
let SIZES = ASKED;
const EVENTS = Number(values.events);
const BURST_MESSAGES = Number(values["burst-messages"]);
const BURST_CONCURRENCY = Number(values["burst-concurrency"]);
const BURST_BATCH = Number(values["burst-batch"]);
const PROCS = Number(values.procs);
const ROUNDS = Number(values.rounds);
for (const [name, v, min, max] of [
	["events", EVENTS, 1, 500],
	["burst-messages", BURST_MESSAGES, 1000, 5_000_000],
	["burst-concurrency", BURST_CONCURRENCY, 1, 128],
	["burst-batch", BURST_BATCH, 1, 100],
	["procs", PROCS, 1, 16],
	["rounds", ROUNDS, 1, 5],
	...ASKED.map((s) => ["sizes", s, 1, 30_000] as const),
] as const) {
	if (!(Number.isInteger(v) && v >= min && v <= max)) {
		console.error(`--${name} must be an integer from ${min} to ${max}`);
		process.exit(2);
	}
}

const DB_NAME = "gi_bench_realtime";
const REPOS = 1000;
const REDIS_PREFIX = "gi:bench:realtime:";
const PEER = new URL("./fanout-peer.ts", import.meta.url).pathname;
const EVENT_TIMEOUT_MS = 15_000;
const BURST_TIMEOUT_MS = 120_000;

const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A child process of fanout-peer.ts, with request/answer over IPC. */
class Peer {
	readonly child: ChildProcess;
	#waiters: ((m: PeerReport) => boolean)[] = [];

	constructor(role: "clients" | "hub", onComplete: (seq: number, first: number, at: number) => void) {
		this.child = fork(PEER, [role], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
		this.child.on("message", (m: PeerReport) => {
			if (m.ev === "complete") return onComplete(m.seq, m.first, m.at);
			this.#waiters = this.#waiters.filter((w) => !w(m));
		});
		defer(`peer ${role} ${this.child.pid}`, () => this.stop());
	}

	/** Sends `command` (if any) and resolves with the first report `accept` takes. */
	ask<T extends PeerReport>(
		command: PeerCommand | undefined,
		accept: (m: PeerReport) => m is T,
		timeoutMs: number,
	): Promise<T> {
		return new Promise((resolve, reject) => {
			const t = setTimeout(
				() => reject(new Error(`peer ${this.child.pid}: no answer in ${timeoutMs} ms`)),
				timeoutMs,
			);
			this.#waiters.push((m) => {
				if (!accept(m)) return false;
				clearTimeout(t);
				resolve(m);
				return true;
			});
			if (command) this.child.send(command);
		});
	}

	async stop(): Promise<void> {
		if (this.child.exitCode !== null || this.child.signalCode !== null) return;
		const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
		if (this.child.connected) this.child.send({ cmd: "exit" } satisfies PeerCommand);
		const t = setTimeout(() => this.child.kill("SIGKILL"), 3000);
		await exited;
		clearTimeout(t);
	}
}

/** Per seq: how many client processes report every socket has it, and the latest such moment. */
class Completions {
	readonly #seen = new Map<number, { n: number; first: number; at: number }>();
	#wake: (() => void) | undefined;
	processes = 0;

	reset(processes: number): void {
		this.#seen.clear();
		this.processes = processes;
	}

	add(seq: number, first: number, at: number): void {
		const s = this.#seen.get(seq) ?? { n: 0, first, at: 0 };
		s.n++;
		s.first = Math.min(s.first, first);
		s.at = Math.max(s.at, at);
		this.#seen.set(seq, s);
		this.#wake?.();
	}

	/** From the first socket having `seq` to the last having it (the fan-out itself). */
	spread(seq: number): number {
		const s = this.#seen.get(seq);
		return s ? s.at - s.first : Number.NaN;
	}

	/** The moment the last socket had the last of `seqs`, or null at the deadline. */
	async all(seqs: number[], timeoutMs: number, signal: AbortSignal): Promise<number | null> {
		const deadline = performance.now() + timeoutMs;
		for (;;) {
			let at = 0;
			let done = true;
			for (const seq of seqs) {
				const s = this.#seen.get(seq);
				if (!s || s.n < this.processes) {
					done = false;
					break;
				}
				at = Math.max(at, s.at);
			}
			if (done) return at;
			const left = deadline - performance.now();
			if (left <= 0 || signal.aborted) return null;
			await new Promise<void>((resolve) => {
				const t = setTimeout(resolve, Math.min(left, 1000));
				this.#wake = () => {
					clearTimeout(t);
					resolve();
				};
			});
		}
	}
}

interface Target {
	name: string;
	/** The hub's process (workerd, or the ws hub's Node process), for its CPU time. */
	pid: number | undefined;
	wsUrl: string;
	wsHeaders: Record<string, string>;
	postUrl: string;
	postHeaders: Record<string, string>;
	/** --profile: the Worker's isolate, profiled during the burst. */
	inspector?: Inspector;
}

interface Result {
	target: string;
	size: number;
	connectMs: number;
	connectFailed: number;
	connectRetries: number;
	extensions: string;
	postMs: number[];
	deliverMs: number[];
	/** First socket to last socket, per event. */
	spreadMs: number[];
	timedOut: number;
	burstEvents: number;
	burstMs: number;
	burstPostsPerS: number;
	deliveredPerS: number;
	/** CPU seconds used during the burst by the hub's process and by the client processes. */
	hubCpuS: number;
	clientsCpuS: number;
	received: number;
	expected: number;
	missing: number;
	duplicates: number;
	anomalies: number;
	closedEarly: number;
}

/** The workerd process Miniflare started (a child of this process). */
function workerdPid(): number | undefined {
	try {
		for (const task of readdirSync(`/proc/${process.pid}/task`)) {
			const children = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8").trim();
			for (const pid of children.split(/\s+/).filter(Boolean).map(Number)) {
				if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("workerd")) return pid;
			}
		}
	} catch {
		// not Linux, or the process is gone
	}
	return undefined;
}

/**
 * Raises this process's open-file limit (inherited by workerd and the peers started after) with
 * util-linux prlimit: within the hard limit anyone may; above it needs root (CAP_SYS_RESOURCE).
 */
function raiseFdLimit(need: number, had: number): number {
	const to = Math.max(need, 65_536);
	try {
		execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${to}:${to}`], { stdio: "ignore" });
	} catch {
		log(`ulimit -n is ${had} and prlimit could not raise it to ${need} (no CAP_SYS_RESOURCE here)`);
		return had;
	}
	const now = ulimitN();
	log(`raised the open-file limit from ${had} to ${now} (prlimit) for workerd and the peers`);
	return now;
}

function ulimitN(): number {
	try {
		return Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
	} catch {
		return Number.NaN;
	}
}

async function serviceToken(secret: string, vars: Record<string, string>): Promise<string> {
	return new SignJWT({ role: "service" })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setIssuer(vars.JWT_ISSUER ?? "")
		.setAudience(vars.JWT_AUDIENCE ?? "")
		.setSubject("bench-publisher")
		.setIssuedAt()
		.setExpirationTime("2h")
		.sign(new TextEncoder().encode(secret));
}

/** The event every hub gets (the same bytes for both): ~300-byte frames. */
const eventOf = (repoId: string, n: number) => ({
	// An id of its own, so a retried POST (same body) is recognised and not delivered twice.
	id: `bench-${randomUUID()}`,
	type: "analysis_completed",
	repository_id: repoId,
	data: { bench: "fanout", n, insights_added: n % 7, note: "x".repeat(120) },
});
const payload = (repoId: string, n: number): string => JSON.stringify(eventOf(repoId, n));

async function post(t: Target, body: string, signal: AbortSignal): Promise<number> {
	return (await postTo(t, t.postUrl, body, signal))[0] ?? Number.NaN;
}

/** POSTs the Worker answered 503 "delivered but not invalidated" and the bench retried, as a sender must. */
export const retried = { count: 0 };

/** POSTs one event or a batch; the repository seq of each event. */
async function postTo(t: Target, url: string, body: string, signal: AbortSignal): Promise<number[]> {
	let res: Response;
	let text: string;
	for (let attempt = 0; ; attempt++) {
		res = await fetch(url, {
			method: "POST",
			headers: { ...t.postHeaders, "content-type": "application/json" },
			body,
			signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]),
		});
		text = await res.text();
		// The events reached the hubs but the summary cache was not invalidated (Redis too slow
		// under this load): the sender retries with the same ids, which are not delivered again.
		if (res.status !== 503 || !text.includes("were delivered") || attempt >= 5) break;
		retried.count++;
		await new Promise((resolve) => setTimeout(resolve, 1000));
	}
	if (res.status !== 202) throw new Error(`${t.name}: POST answered ${res.status} ${text.slice(0, 200)}`);
	type Delivery = { seq?: { repository?: number | null } };
	const answer = JSON.parse(text) as Delivery & { results?: Delivery[] };
	const seqs = (answer.results ?? [answer]).map((d) => d.seq?.repository);
	if (!seqs.every((s) => typeof s === "number")) {
		throw new Error(`${t.name}: no repository seq in ${text.slice(0, 200)}`);
	}
	return seqs as number[];
}

async function runTarget(
	t: Target,
	size: number,
	repoId: string,
	clients: Peer[],
	completions: Completions,
	signal: AbortSignal,
): Promise<Result> {
	const procs = clients.slice(0, Math.min(clients.length, size));
	completions.reset(procs.length);
	const share = (i: number) => Math.floor(size / procs.length) + (i < size % procs.length ? 1 : 0);
	const connected = await Promise.all(
		procs.map((p, i) =>
			p.ask(
				{
					cmd: "connect",
					url: t.wsUrl,
					headers: t.wsHeaders,
					count: share(i),
					concurrency: 32,
					timeoutMs: 20_000,
				},
				(m): m is ConnectReport => m.ev === "connected",
				180_000,
			),
		),
	);
	const connectMs = Math.max(...connected.map((c) => c.ms));
	const connectFailed = connected.reduce((a, c) => a + c.failed, 0);
	const connectRetries = connected.reduce((a, c) => a + c.retries, 0);
	log(
		`${t.name}: ${fmtInt(size - connectFailed)}/${fmtInt(size)} sockets in ${(connectMs / 1000).toFixed(1)} s` +
			(connectRetries
				? `, ${connectRetries} connects retried (${connected
						.flatMap((c) => c.errors)
						.slice(0, 2)
						.join("; ")})`
				: "") +
			(connectFailed
				? ` (failed: ${connected
						.flatMap((c) => c.errors)
						.slice(0, 3)
						.join("; ")})`
				: ""),
	);
	if (connectFailed > 0) throw new Error(`${t.name}: ${connectFailed} sockets did not connect`);

	try {
		// Warm-up (JIT, first writes): 3 events, not measured.
		for (let i = 0; i < 3; i++) {
			const seq = await post(t, payload(repoId, -1 - i), signal);
			await completions.all([seq], EVENT_TIMEOUT_MS, signal);
		}
		const postMs: number[] = [];
		const deliverMs: number[] = [];
		const spreadMs: number[] = [];
		let timedOut = 0;
		let lastSeq = 0;
		for (let i = 0; i < EVENTS; i++) {
			const t0 = monoMs();
			const seq = await post(t, payload(repoId, i), signal);
			postMs.push(monoMs() - t0);
			lastSeq = seq;
			const at = await completions.all([seq], EVENT_TIMEOUT_MS, signal);
			if (at === null) timedOut++;
			else {
				deliverMs.push(at - t0);
				spreadMs.push(completions.spread(seq));
			}
			await sleep(10, signal);
		}

		// Burst: B events, BURST_CONCURRENCY POSTs in flight, BURST_BATCH events per POST.
		const burstEvents =
			Math.max(1, Math.round(Math.max(10, BURST_MESSAGES / size) / BURST_BATCH)) * BURST_BATCH;
		const seqs: number[] = [];
		let next = 0;
		const clientPids = procs.map((p) => p.child.pid);
		const clientsCpu = () => cpuSeconds(clientPids.filter((pid) => pid !== undefined));
		if (t.inspector) await startProfile(t.inspector);
		// NaN when the hub's pid is unknown: the figure is left out rather than shown as 0.
		const hubCpu = () => (t.pid === undefined ? Number.NaN : cpuSeconds([t.pid]));
		const hubCpu0 = hubCpu();
		const clientsCpu0 = clientsCpu();
		const t0 = monoMs();
		await Promise.all(
			Array.from({ length: BURST_CONCURRENCY }, async () => {
				while (next < burstEvents) {
					const n = next;
					next += BURST_BATCH;
					if (BURST_BATCH === 1) {
						seqs.push(await post(t, payload(repoId, 1000 + n), signal));
					} else {
						const events = Array.from({ length: BURST_BATCH }, (_, k) => eventOf(repoId, 1000 + n + k));
						seqs.push(...(await postTo(t, `${t.postUrl}/batch`, JSON.stringify({ events }), signal)));
					}
				}
			}),
		);
		const postsDone = monoMs();
		const at = await completions.all(seqs, BURST_TIMEOUT_MS, signal);
		const burstMs = (at ?? monoMs()) - t0;
		const hubCpuS = hubCpu() - hubCpu0;
		const clientsCpuS = clientsCpu() - clientsCpu0;
		if (t.inspector && values.profile) await saveProfile(t.inspector, `${values.profile}-${size}.cpuprofile`);
		lastSeq = Math.max(lastSeq, ...seqs);

		const stats = await Promise.all(
			procs.map((p) => p.ask({ cmd: "stats", lastSeq }, (m): m is SocketStats => m.ev === "stats", 30_000)),
		);
		const welcome = Math.min(...connected.map((c) => c.welcomeMin));
		const expected = (lastSeq - welcome) * size;
		const received = stats.reduce((a, s) => a + s.received, 0);
		const anomalies = stats.reduce((a, s) => a + s.anomalies, 0);
		if (anomalies > 0)
			log(
				`${t.name}: unexpected frames, e.g. ${stats
					.flatMap((s) => s.sample)
					.slice(0, 2)
					.join(" | ")}`,
			);
		return {
			target: t.name,
			size,
			connectMs,
			connectFailed,
			connectRetries,
			extensions: connected[0]?.extensions || "none",
			postMs: postMs.sort((a, b) => a - b),
			deliverMs: deliverMs.sort((a, b) => a - b),
			spreadMs: spreadMs.sort((a, b) => a - b),
			timedOut,
			burstEvents,
			burstMs,
			burstPostsPerS: (burstEvents * 1000) / (postsDone - t0),
			deliveredPerS: at === null ? Number.NaN : (size * burstEvents * 1000) / burstMs,
			hubCpuS,
			clientsCpuS,
			received,
			expected,
			missing: stats.reduce((a, s) => a + s.missing, 0),
			duplicates: stats.reduce((a, s) => a + s.duplicates, 0),
			anomalies,
			closedEarly: stats.reduce((a, s) => a + (s.sockets - s.open), 0),
		};
	} finally {
		await Promise.all(
			procs.map((p) => p.ask({ cmd: "close" }, (m): m is { ev: "closed" } => m.ev === "closed", 60_000)),
		);
	}
}

function table(header: string[], rows: string[][]): void {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) =>
		`  ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
	console.log(line(header));
	for (const r of rows) console.log(line(r));
}

runBench(async (signal) => {
	const started = performance.now();
	const fds = ulimitN();
	log(
		`${availableParallelism()} CPUs, load average ${loadavg()
			.map((l) => l.toFixed(2))
			.join(" ")} (a shared machine: compare within a run), ulimit -n ${fds}`,
	);
	// workerd holds two descriptors per WebSocket (it fails with "dup(): Too many open files"
	// past ~9,980 sockets at a limit of 20,000); the ws hub one per socket; each client process
	// its share. Raise the limit if possible, else measure as many sockets as it allows (both hubs
	// alike) and say so.
	const need = 2 * Math.max(...ASKED) + 256;
	const limit = fds >= need ? fds : raiseFdLimit(need, fds);
	const cap = Math.floor((limit - 256) / 2 / 100) * 100;
	SIZES = ASKED.map((s) => Math.min(s, cap));
	if (SIZES.some((s, i) => s !== ASKED[i])) {
		log(
			`open-file limit ${limit} (its hard limit cannot be raised here): workerd fits ${fmtInt(cap)} sockets, so ${ASKED.filter(
				(s) => s > cap,
			)
				.map(fmtInt)
				.join(", ")} clients are measured as ${fmtInt(cap)} on both hubs`,
		);
	}
	const build = buildWorker();
	const dbUrl = await ensureBenchDatabase(DB_NAME, REPOS);
	const stack = await startStack(dbUrl, REDIS_PREFIX);
	const userToken = await mintToken(stack.secret, build.vars);
	const service = await serviceToken(stack.secret, build.vars);
	const worker = await startWorker(build, "hub", stack.vars, values.profile ? { inspectorPort: 0 } : {});
	log(`workerd (Miniflare, direct socket) at ${worker.origin}`);
	const inspector = values.profile ? await connectInspector(await worker.mf.getInspectorURL()) : undefined;
	if (inspector) defer("inspector", () => inspector.close());
	const ids = (
		await query<{ id: string }>(dbUrl, "SELECT id FROM repositories ORDER BY id LIMIT $1", [
			SIZES.length * ROUNDS,
		])
	).map((r) => r.id);

	const completions = new Completions();
	const onComplete = (seq: number, first: number, at: number) => completions.add(seq, first, at);
	const hub = new Peer("hub", onComplete);
	const { port } = await hub.ask(
		undefined,
		(m): m is { ev: "listening"; port: number } => m.ev === "listening",
		10_000,
	);
	const clients = Array.from({ length: PROCS }, () => new Peer("clients", onComplete));
	log(`Node ws hub at 127.0.0.1:${port}; ${PROCS} client processes`);

	const results: Result[] = [];
	let r = 0;
	for (let round = 0; round < ROUNDS; round++) {
		for (const size of SIZES) {
			const repoId = ids[r++] ?? "";
			const targets: Target[] = [
				{
					name: "workerd RepoHub",
					pid: workerdPid(),
					wsUrl: `${worker.origin.replace(/^http/, "ws")}/api/v1/stream/repository/${repoId}/updates`,
					wsHeaders: { authorization: `Bearer ${userToken}` },
					postUrl: `${worker.origin}/api/v1/events`,
					postHeaders: { authorization: `Bearer ${service}` },
					...(inspector ? { inspector } : {}),
				},
				{
					name: "Node ws hub",
					pid: hub.child.pid,
					wsUrl: `ws://127.0.0.1:${port}/api/v1/stream/repository/${repoId}/updates`,
					wsHeaders: {},
					postUrl: `http://127.0.0.1:${port}/api/v1/events`,
					postHeaders: {},
				},
			];
			if ((round + SIZES.indexOf(size)) % 2 === 1) targets.reverse();
			for (const t of targets) {
				console.log(`\nround ${round + 1}/${ROUNDS}, ${fmtInt(size)} clients, ${t.name}`);
				try {
					const res = await runTarget(t, size, repoId, clients, completions, signal);
					results.push(res);
					console.log(
						`  deliver p50 ${fmtMs(percentile(res.deliverMs, 50))} p99 ${fmtMs(percentile(res.deliverMs, 99))} max ${fmtMs(res.deliverMs.at(-1) ?? Number.NaN)} ms;` +
							` burst ${fmtInt(res.burstEvents)} events: ${fmtInt(res.deliveredPerS)} msg/s delivered in ${(res.burstMs / 1000).toFixed(1)} s;` +
							` missing ${fmtInt(res.missing)}, duplicates ${res.duplicates}`,
					);
				} catch (err) {
					if (signal.aborted) throw err;
					console.log(`  failed: ${errorText(err)}`);
				}
				await sleep(1000, signal);
			}
		}
	}

	const pick = (size: number, target: string) =>
		results.filter((x) => x.size === size && x.target === target);
	const med = (xs: Result[], f: (x: Result) => number) => median(xs.map(f));
	const HUBS = ["workerd RepoHub", "Node ws hub"];
	console.log(
		`\nfan-out, one RepoHub in workerd vs a plain Node ws hub, same clients (${PROCS} processes, no compression: ${results[0]?.extensions ?? "-"}) and payloads; ${ROUNDS} round(s), medians`,
	);
	console.log(
		`\none event at a time (${EVENTS} events, POSTed one by one): deliver = from sending the POST to the last socket having it; spread = first socket to last (the broadcast alone); ms`,
	);
	const latencyRows: string[][] = [];
	for (const size of SIZES) {
		for (const name of HUBS) {
			const xs = pick(size, name);
			if (xs.length === 0) {
				latencyRows.push([fmtInt(size), name, "failed"]);
				continue;
			}
			latencyRows.push([
				fmtInt(size),
				name,
				fmtInt(med(xs, (x) => (size * 1000) / x.connectMs)),
				fmtMs(med(xs, (x) => percentile(x.postMs, 50))),
				fmtMs(med(xs, (x) => percentile(x.deliverMs, 50))),
				fmtMs(med(xs, (x) => percentile(x.deliverMs, 99))),
				fmtMs(Math.max(...xs.map((x) => x.deliverMs.at(-1) ?? Number.NaN))),
				fmtMs(med(xs, (x) => percentile(x.spreadMs, 50))),
				fmtMs(med(xs, (x) => percentile(x.spreadMs, 99))),
			]);
		}
	}
	table(
		["clients", "hub", "connects/s", "POST p50", "deliver p50", "p99", "max", "spread p50", "p99"],
		latencyRows,
	);

	console.log(
		`\nburst (${fmtInt(BURST_MESSAGES)} messages = clients × events, ${BURST_CONCURRENCY} POSTs in flight${BURST_BATCH > 1 ? ` of ${BURST_BATCH} events each (/events/batch)` : ", one event each"}): delivered messages/s until the last socket has the last event; CPU = the hub process's (workerd: the Worker and every Durable Object) during the burst`,
	);
	const burstRows: string[][] = [];
	for (const size of SIZES) {
		for (const name of HUBS) {
			const xs = pick(size, name);
			if (xs.length === 0) {
				burstRows.push([fmtInt(size), name, "failed"]);
				continue;
			}
			const msgs = (x: Result) => x.size * x.burstEvents;
			burstRows.push([
				fmtInt(size),
				name,
				fmtInt(med(xs, (x) => x.burstEvents)),
				fmtInt(med(xs, (x) => x.burstPostsPerS)),
				fmtInt(med(xs, (x) => x.deliveredPerS)),
				fmtMs(med(xs, (x) => x.hubCpuS / (x.burstMs / 1000))),
				fmtMs(med(xs, (x) => (x.hubCpuS * 1e6) / msgs(x))),
				fmtMs(med(xs, (x) => x.clientsCpuS / (x.burstMs / 1000))),
				`${fmtInt(xs.reduce((a, x) => a + x.received, 0))}/${fmtInt(xs.reduce((a, x) => a + x.expected, 0))}`,
				fmtInt(xs.reduce((a, x) => a + x.missing, 0)) +
					(xs.some((x) => x.timedOut > 0)
						? ` (${xs.reduce((a, x) => a + x.timedOut, 0)} events timed out)`
						: ""),
				fmtInt(xs.reduce((a, x) => a + x.duplicates, 0)),
			]);
		}
	}
	table(
		[
			"clients",
			"hub",
			"events",
			"POST/s",
			"delivered msg/s",
			"hub cores",
			"hub CPU µs/msg",
			"client cores",
			"received/expected (all phases)",
			"missing",
			"dups",
		],
		burstRows,
	);

	console.log("\ntargets:");
	for (const size of SIZES) {
		const w = pick(size, "workerd RepoHub");
		const n = pick(size, "Node ws hub");
		if (w.length === 0 || n.length === 0) {
			console.log(`  ${fmtInt(size)} clients: no result (see above)`);
			continue;
		}
		const ratio = med(w, (x) => x.deliveredPerS) / med(n, (x) => x.deliveredPerS);
		const cpu =
			med(w, (x) => x.hubCpuS / (x.size * x.burstEvents)) /
			med(n, (x) => x.hubCpuS / (x.size * x.burstEvents));
		const p99 = med(w, (x) => percentile(x.deliverMs, 99));
		const max = Math.max(...w.map((x) => x.deliverMs.at(-1) ?? Number.NaN));
		console.log(
			`  ${fmtInt(size)} clients: delivered msg/s workerd/ws ${ratio.toFixed(2)} (target >= 0.6: ${ratio >= 0.6 ? "met" : "NOT met"}); hub CPU per message workerd/ws ${cpu.toFixed(2)};` +
				` all sockets served within ${fmtMs(p99)} ms at p99, ${fmtMs(max)} ms at worst (target 500 ms: ${max <= 500 ? "met" : p99 <= 500 ? "met at p99" : "NOT met"})`,
		);
	}
	console.log(
		`\nPOSTs answered 503 "delivered, cache not invalidated" and retried with the same ids: ${retried.count}`,
	);
	if (worker.problems.count > 0) {
		console.log(`\nthe Worker logged ${worker.problems.count} warnings/errors, e.g.:`);
		for (const s of worker.problems.samples.slice(0, 5)) console.log(`  ${s}`);
	}
	log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
}, 8 * 60_000);

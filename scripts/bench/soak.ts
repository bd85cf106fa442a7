// `npm run bench:soak -- [--duration 180] [--rate 200] [--sockets 500] [--events-rate 5]
//  [--repos 10000] [--hub-repos 4] [--idle 20] [--seed 1] [--keep-db] [--json]
//  [--mix summary=45,search=20,…] [--inspect]`: a bounded
// load-and-soak of the whole Worker, loopback only: mixed open-loop traffic at a fixed rate for a
// few minutes while the hubs hold WebSockets that must receive every event POSTed meanwhile;
// reports errors (must be 0 for valid requests), latency, event deliveries and the memory of the
// workerd process before, during and after the load.
//
// Set-up (torn down at the end, also on Ctrl-C/SIGTERM and at a hard limit of the duration + the
// idle + 10 min): the bundle `wrangler deploy` would upload, run by Miniflare's Node API on a
// direct workerd socket (lib.ts); database gi_bench_soak (created, migrated and seeded with
// --repos repositories when absent, and then dropped at the end unless --keep-db); the Neon and
// Upstash stand-ins (Redis keys under gi:bench:soak:, deleted at start and end); a per-run JWT
// secret with a user token (reads, repository streams) and a service token (event POSTs); rate
// limits "off" (RATE_LIMIT_SEARCH/READ/EVENTS: one caller sends everything here); AE_SINK_URL
// left empty (no AE stand-in: datapoints are written and dropped). Everything binds 127.0.0.1.
// Phases:
//   preflight  each kind of request once or a few times, checked as in the load (every invalid
//              request must get its 4xx in the error envelope), three events POSTed;
//   sockets    --sockets WebSockets from a worker thread: half on the global stream, spread
//              over every GlobalHub shard (?shard=n), half over --hub-repos repository streams
//              (Bearer user token); each pings every 30 s ({"type":"ping"}, runtime-answered);
//   load       from another worker thread, for --duration: the mix below at --rate requests/s
//              and event POSTs at --events-rate/s, each sent at its due time whatever is still
//              outstanding (open loop: latency counts from the due time, so a stalled server
//              cannot hide its queue); every answer's status and body are checked;
//   drain      each hub's head is read from a fresh socket's welcome, and every held socket must
//              have every seq from its welcome to that head (missing = lost deliveries);
//   idle       --idle seconds with the sockets still held, then the sockets are closed.
// workerd memory (VmRSS, RssAnon, VmHWM of the workerd process(es) Miniflare started, found among
// this process's descendants): after start-up, with the sockets held (before the load), every
// 10 s during the load, after the load, after the idle and after closing the sockets.
// --mix replaces the weights (classes: summary, by-name, search, leaderboard, health, metrics,
// ping, invalid), e.g. `--mix ping=100` as a runtime-only control; --inspect also reads the V8
// heap of the Worker's isolate through the inspector at each memory sample (JS heap vs native).
// --json prints the whole report as JSON at the end.
// Exit status 1 when a valid request failed (unexpected status, bad body, transport error,
// timeout, dropped), an invalid one got anything but its 4xx, a delivery was lost, a socket was
// closed by the server or did not connect.
// Over 400 lines: the orchestration and its two worker threads (this file runs itself as each,
// like ingest.ts) share the request builders, the answer checks and the message types.
import { randomBytes } from "node:crypto";
import { Agent, type ClientRequest, request } from "node:http";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { connectInspector } from "./inspector.ts";
import { percentile, rng, zipf } from "./lib.ts";

// ---------------------------------------------------------------------------------------------
// The traffic mix

/** Weights of the --rate requests (percent); event POSTs come on top, at --events-rate. */
const CLASSES = [
	{
		name: "summary by id",
		short: "summary",
		weight: 45,
		what: "GET /api/v1/fast/repositories/{id}/summary, Bearer user token; ids Zipf(s=1) over every repository by stars",
	},
	{
		name: "summary by name",
		short: "by-name",
		weight: 10,
		what: ".../by-name/{owner}/{name}/summary, Bearer; Zipf like by id; 1 in 3 with the owner upper-cased",
	},
	{
		name: "search",
		short: "search",
		weight: 20,
		what: "GET /api/v1/fast/search: 70% a fixed set (words, language facet, qualifiers, sorts, pages), 30% random two-word queries (misses)",
	},
	{
		name: "leaderboard",
		short: "leaderboard",
		weight: 12,
		what: "GET /api/v1/fast/leaderboard: 3 categories × 4 timeframes × 7 languages (incl. all) × 4 limits",
	},
	{ name: "health", short: "health", weight: 2.5, what: "GET /health (probes Postgres and Redis each time)" },
	{
		name: "metrics",
		short: "metrics",
		weight: 0.5,
		what: "GET /metrics (no AE SQL source here: 200 with source_up 0)",
	},
	{
		name: "ping",
		short: "ping",
		weight: 0,
		what: "GET /ping (no middleware, no I/O): a control for --mix, not in the default mix",
	},
	{
		name: "invalid (expected 4xx)",
		short: "invalid",
		weight: 10,
		what: "deliberately bad requests (below), each must get its own 4xx in the error envelope",
	},
] as const;
const INVALID = CLASSES.length - 1;
/** Index of the event POSTs in the per-class results. */
const EVENTS = CLASSES.length;
const CLASS_NAMES: string[] = [...CLASSES.map((c) => c.name), "event POST"];

/** Search words: common and rarer words of the seed's descriptions and topics (an empty result is an answer too). */
const WORDS = (
	"api library tool app kubernetes graphql terraform dashboard parser compiler cli docker react server client " +
	"framework database cache queue auth monitoring editor game bot scraper testing plugin http json async"
).split(" ");

const qs = (params: Record<string, string | number>): string =>
	new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();

const FIXED_SEARCHES: string[] = [
	...WORDS.slice(0, 12).map((w) => qs({ q: w })),
	qs({ q: "graphql", language: "Go" }),
	qs({ q: "api", language: "Rust" }),
	qs({ q: "docker", language: "Python" }),
	qs({ q: "kubernetes", language: "TypeScript" }),
	qs({ q: "api", language: "javascript", min_stars: 10 }),
	qs({ q: "parser topic:rust stars:10..1000 fork:false" }),
	qs({ q: "api language:go stars:>1000" }),
	qs({ q: "topic:cli stars:>100" }),
	qs({ q: "dashboard -react topic:docker" }),
	qs({ q: '"command line" tool' }),
	qs({ q: "library fork:only" }),
	qs({ q: "app stars:<=10 language:python" }),
	...(["stars", "forks", "updated"] as const).flatMap((sort) =>
		["api", "tool", "kubernetes"].map((q) => qs({ q, sort })),
	),
	qs({ q: "api", offset: 20 }),
	qs({ q: "library", offset: 100, limit: 50 }),
	qs({ q: "tool", sort: "stars", offset: 200, limit: 100 }),
];

const CATEGORIES = ["trending", "popular", "quality"];
const TIMEFRAMES = ["day", "week", "month", "year"];
const BOARD_LANGUAGES = ["", "JavaScript", "Python", "TypeScript", "Go", "Rust", "Java"];
const BOARD_LIMITS = [10, 25, 50, 100];
const EVENT_TYPES = ["insight_added", "analysis_completed", "repository_updated", "analysis_started"];

/** What the thread generating load needs to know (structured-cloned to it). */
interface LoadSpec {
	origin: string;
	userToken: string;
	serviceToken: string;
	rate: number;
	eventsRate: number;
	durationMs: number;
	seed: number;
	/** Distinguishes this run's event ids (idempotency keys must be new). */
	runId: string;
	/** Every repository id, most stars first (Zipf rank order), and its full name. */
	ids: string[];
	names: string[];
	/** The repositories whose streams hold sockets (4 in 10 events are about one of them). */
	hubRepos: string[];
	/** Weight of each of CLASSES (--mix, else their defaults). */
	weights: number[];
	timeoutMs: number;
	maxOutstanding: number;
	drainMs: number;
}

type Check =
	| { kind: "summary"; id: string }
	| { kind: "by-name"; fullName: string }
	| { kind: "search" }
	| { kind: "leaderboard"; category: string }
	| { kind: "health" }
	| { kind: "metrics" }
	| { kind: "ping" }
	| { kind: "envelope" }
	| { kind: "event" };

interface Req {
	cls: number;
	/** A short label (for invalid requests: which one), for error samples. */
	label: string;
	method: "GET" | "POST" | "DELETE";
	path: string;
	headers: Record<string, string>;
	body?: string;
	/** The status (or statuses) that count as a correct answer. */
	expect: number | readonly number[];
	check: Check;
}

const get = (
	cls: number,
	label: string,
	path: string,
	headers: Record<string, string>,
	expect: number | readonly number[] = 200,
) => ({
	cls,
	label,
	method: "GET" as const,
	path,
	headers,
	expect,
});

/** The deliberately invalid requests, in a fixed order; each must get `expect` and the envelope. */
function invalidRequests(spec: LoadSpec): Req[] {
	const auth = { authorization: `Bearer ${spec.userToken}` };
	const service = { authorization: `Bearer ${spec.serviceToken}`, "content-type": "application/json" };
	const known = spec.ids[0] ?? "";
	const envelope: Check = { kind: "envelope" };
	const bad = (
		label: string,
		path: string,
		expect: number | readonly number[],
		headers: Record<string, string> = {},
	): Req => ({
		...get(INVALID, label, path, headers, expect),
		check: envelope,
	});
	const post = (label: string, headers: Record<string, string>, body: string, expect: number): Req => ({
		cls: INVALID,
		label,
		method: "POST",
		path: "/api/v1/events",
		headers,
		body,
		expect,
		check: envelope,
	});
	return [
		bad("summary: malformed id", "/api/v1/fast/repositories/not-a-uuid/summary", 400, auth),
		bad(
			"summary: unknown id",
			"/api/v1/fast/repositories/00000000-0000-4000-8000-00000000beef/summary",
			404,
			auth,
		),
		bad("summary: no token", `/api/v1/fast/repositories/${known}/summary`, 401),
		bad("summary: garbage token", `/api/v1/fast/repositories/${known}/summary`, 401, {
			authorization: "Bearer not.a.token",
		}),
		bad("by-name: unknown", "/api/v1/fast/repositories/by-name/nobody-soak/nothing-soak/summary", 404, auth),
		bad("search: no q", "/api/v1/fast/search", 400),
		bad("search: limit=0", `/api/v1/fast/search?${qs({ q: "api", limit: 0 })}`, 400),
		bad(
			"search: past the deep-paging cap",
			`/api/v1/fast/search?${qs({ q: "api", offset: 9950, limit: 100 })}`,
			400,
		),
		bad("search: bad sort", `/api/v1/fast/search?${qs({ q: "api", sort: "bogus" })}`, 400),
		bad("search: negative min_stars", `/api/v1/fast/search?${qs({ q: "api", min_stars: -1 })}`, 400),
		bad("leaderboard: bad category", "/api/v1/fast/leaderboard?category=bogus", 400),
		bad("leaderboard: bad timeframe", "/api/v1/fast/leaderboard?timeframe=decade", 400),
		bad("leaderboard: limit=500", "/api/v1/fast/leaderboard?limit=500", 400),
		bad("unknown route", "/api/v1/no-such-route", 404),
		bad("stream without Upgrade", "/api/v1/stream/global/activity", 426),
		bad("admin config as user", "/api/v1/admin/config", 403, auth),
		post(
			"event POST as user",
			{ ...auth, "content-type": "application/json" },
			JSON.stringify({ type: "x-soak", data: {} }),
			403,
		),
		post(
			"event POST as text/plain",
			{ ...service, "content-type": "text/plain" },
			JSON.stringify({ type: "x-soak", data: {} }),
			415,
		),
		post("event POST: unknown type", service, JSON.stringify({ type: "bogus", data: {} }), 400),
		post("event POST: malformed JSON", service, '{"type": "x-soak",', 400),
		// Hono answers an unrouted method 404 (the contract tests accept 404 or 405).
		{ ...bad("DELETE /health", "/health", [404, 405]), method: "DELETE" },
	];
}

/** Builds the requests of the mix from a seeded PRNG (the same sequence for the same --seed). */
function requestMaker(spec: LoadSpec, seed: number) {
	const random = rng(seed);
	const rank = zipf(spec.ids.length, 1.0, random);
	const auth = { authorization: `Bearer ${spec.userToken}` };
	const invalid = invalidRequests(spec);
	const total = spec.weights.reduce((a, w) => a + w, 0);
	const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
	const pickClass = (): number => {
		let u = random() * total;
		for (let i = 0; i < CLASSES.length; i++) {
			u -= spec.weights[i] ?? 0;
			if (u < 0) return i;
		}
		return 0;
	};
	let invalidNext = 0;
	const make = (cls: number): Req => {
		switch (cls) {
			case 0: {
				const id = spec.ids[rank()] ?? "";
				return {
					...get(cls, "summary", `/api/v1/fast/repositories/${id}/summary`, auth),
					check: { kind: "summary", id },
				};
			}
			case 1: {
				const fullName = spec.names[rank()] ?? "";
				const [owner = "", name = ""] = fullName.split("/");
				const o = random() < 1 / 3 ? owner.toUpperCase() : owner;
				const path = `/api/v1/fast/repositories/by-name/${encodeURIComponent(o)}/${encodeURIComponent(name)}/summary`;
				return { ...get(cls, "by-name", path, auth), check: { kind: "by-name", fullName } };
			}
			case 2: {
				const query =
					random() < 0.7
						? pickOf(FIXED_SEARCHES)
						: qs({ q: `${pickOf(WORDS)} ${pickOf(WORDS)}`, ...(random() < 0.3 ? { sort: "stars" } : {}) });
				return { ...get(cls, "search", `/api/v1/fast/search?${query}`, {}), check: { kind: "search" } };
			}
			case 3: {
				const category = pickOf(CATEGORIES);
				const language = pickOf(BOARD_LANGUAGES);
				const query = qs({
					category,
					timeframe: pickOf(TIMEFRAMES),
					limit: pickOf(BOARD_LIMITS),
					...(language ? { language } : {}),
				});
				return {
					...get(cls, "leaderboard", `/api/v1/fast/leaderboard?${query}`, {}),
					check: { kind: "leaderboard", category },
				};
			}
			case 4:
				return { ...get(cls, "health", "/health", {}), check: { kind: "health" } };
			case 5:
				return { ...get(cls, "metrics", "/metrics", {}), check: { kind: "metrics" } };
			case 6:
				return { ...get(cls, "ping", "/ping", {}), check: { kind: "ping" } };
			default:
				// Round robin, so every invalid kind is exercised evenly.
				return invalid[invalidNext++ % invalid.length] as Req;
		}
	};
	/** The n-th event: 4 in 10 about a held repository, 4 in 10 about any (Zipf), 2 custom. */
	const event = (n: number, dueMono: number): Req => {
		const r = random();
		const about = r < 0.4 ? spec.hubRepos[n % spec.hubRepos.length] : r < 0.8 ? spec.ids[rank()] : undefined;
		const body = {
			id: `${spec.runId}-${n}`,
			type: about ? (EVENT_TYPES[n % EVENT_TYPES.length] ?? "insight_added") : "x-soak",
			...(about ? { repository_id: about } : {}),
			data: { soak: n, t: dueMono },
		};
		return {
			cls: EVENTS,
			label: "event",
			method: "POST",
			path: "/api/v1/events",
			headers: { authorization: `Bearer ${spec.serviceToken}`, "content-type": "application/json" },
			body: JSON.stringify(body),
			expect: 202,
			check: { kind: "event" },
		};
	};
	return { next: () => make(pickClass()), make, event, invalid };
}

/** Why an answer is not the expected one; null when it is. */
function verdict(req: Req, status: number, body: string): string | null {
	const expected = typeof req.expect === "number" ? [req.expect] : req.expect;
	if (!expected.includes(status)) return `status ${status}, expected ${expected.join(" or ")}`;
	const c = req.check;
	if (c.kind === "metrics") return body.includes("gitinsight_build_info") ? null : "no gitinsight_build_info";
	if (c.kind === "ping") return body === "pong" ? null : "not pong";
	let json: Record<string, unknown>;
	try {
		json = JSON.parse(body) as Record<string, unknown>;
	} catch {
		return "body is not JSON";
	}
	switch (c.kind) {
		case "summary":
			return String(json.id).toLowerCase() === c.id.toLowerCase() ? null : `summary of ${String(json.id)}`;
		case "by-name":
			return String(json.full_name).toLowerCase() === c.fullName.toLowerCase()
				? null
				: `summary of ${String(json.full_name)}`;
		case "search":
			return Array.isArray(json.repositories) && typeof json.total === "number" && json.facets
				? null
				: "not a search answer";
		case "leaderboard":
			return json.category === c.category && Array.isArray(json.entries)
				? null
				: "not the leaderboard asked for";
		case "health":
			return json.status === "healthy" || json.status === "degraded" ? null : `health ${String(json.status)}`;
		case "envelope": {
			const e = json.error as { code?: unknown; request_id?: unknown } | undefined;
			return typeof e?.code === "string" && typeof e.request_id === "string" ? null : "no error envelope";
		}
		case "event":
			return json.status === "accepted" ? null : `event ${String(json.status)}`;
	}
}

/** Milliseconds on CLOCK_MONOTONIC: the same clock in every thread (performance.now is not). */
const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

// ---------------------------------------------------------------------------------------------
// The load thread

interface ClassResult {
	name: string;
	sent: number;
	completed: number;
	/** Answered as expected (status and body). */
	ok: number;
	/** Anything else: unexpected status, bad body, transport error, timeout, dropped. */
	errors: number;
	statuses: Record<string, number>;
	tiers: Record<string, number>;
	errorSamples: string[];
	/** Milliseconds from the due time, sorted; every answered request (also errors). */
	latencies: Float64Array;
}

interface LoadResult {
	elapsedMs: number;
	classes: ClassResult[];
	/** Event-loop utilisation of the load thread (near 1: the client limits the figures). */
	clientBusy: number;
}

interface LoadProgress {
	progress: true;
	atMs: number;
	completed: number;
	errors: number;
	windowCount: number;
	windowP99: number;
}

async function generateLoad(spec: LoadSpec, progress: (p: LoadProgress) => void): Promise<LoadResult> {
	const maker = requestMaker(spec, spec.seed);
	const url = new URL(spec.origin);
	const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
	const results: (Omit<ClassResult, "latencies"> & { latencies: number[] })[] = CLASS_NAMES.map((name) => ({
		name,
		sent: 0,
		completed: 0,
		ok: 0,
		errors: 0,
		statuses: {},
		tiers: {},
		errorSamples: [],
		latencies: [],
	}));
	const inflight = new Set<ClientRequest>();
	let outstanding = 0;
	let window: number[] = [];
	let allDone: (() => void) | undefined;
	const bump = (into: Record<string, number>, key: string) => {
		into[key] = (into[key] ?? 0) + 1;
	};

	const record = (req: Req, status: string, latency: number, problem: string | null, tier?: string) => {
		const r = results[req.cls];
		if (!r) return;
		r.completed++;
		bump(r.statuses, status);
		if (tier) bump(r.tiers, tier);
		if (latency >= 0) {
			r.latencies.push(latency);
			window.push(latency);
		}
		if (problem === null) r.ok++;
		else {
			r.errors++;
			if (r.errorSamples.length < 8)
				r.errorSamples.push(`${req.method} ${req.path} (${req.label}): ${problem}`);
		}
	};

	const send = (req: Req, due: number) => {
		const r = results[req.cls];
		if (r) r.sent++;
		if (outstanding >= spec.maxOutstanding) {
			record(req, "dropped", -1, `dropped: ${outstanding} requests outstanding`);
			return;
		}
		outstanding++;
		let done = false;
		const finish = (status: string, problem: string | null, tier?: string) => {
			if (done) return;
			done = true;
			outstanding--;
			inflight.delete(hr);
			record(req, status, performance.now() - due, problem, tier);
			if (outstanding === 0) allDone?.();
		};
		const hr = request(
			{ agent, host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers },
			(res) => {
				let body = "";
				res.setEncoding("utf8");
				res.on("data", (chunk: string) => {
					if (body.length < 1_000_000) body += chunk;
				});
				res.on("error", (err) => finish(`error:${err.message}`, `transport: ${err.message}`));
				res.on("end", () => {
					const status = res.statusCode ?? 0;
					const tier = res.headers["x-cache-tier"];
					finish(String(status), verdict(req, status, body), typeof tier === "string" ? tier : undefined);
				});
			},
		);
		inflight.add(hr);
		hr.setTimeout(spec.timeoutMs, () => hr.destroy(new Error(`no answer in ${spec.timeoutMs} ms`)));
		hr.on("error", (err) => finish(`error:${err.message.slice(0, 40)}`, `transport: ${err.message}`));
		hr.end(req.body);
	};

	const t0 = performance.now();
	const mono0 = monoMs();
	const elu0 = performance.eventLoopUtilization();
	const ticker = setInterval(() => {
		const w = Float64Array.from(window).sort();
		window = [];
		progress({
			progress: true,
			atMs: performance.now() - t0,
			completed: results.reduce((a, r) => a + r.completed, 0),
			errors: results.reduce((a, r) => a + r.errors, 0),
			windowCount: w.length,
			windowP99: percentile(w, 99),
		});
	}, 10_000);

	/** An open-loop schedule: `rate`/s evenly spaced for the duration, each sent at its due time. */
	const schedule = (rate: number, fire: (n: number, due: number) => void): Promise<void> =>
		new Promise((resolve) => {
			const total = Math.floor((rate * spec.durationMs) / 1000);
			const interval = 1000 / rate;
			let next = 0;
			const tick = () => {
				const now = performance.now();
				while (next < total && t0 + next * interval <= now) {
					fire(next, t0 + next * interval);
					next++;
				}
				if (next < total) setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
				else resolve();
			};
			tick();
		});

	await Promise.all([
		schedule(spec.rate, (_n, due) => send(maker.next(), due)),
		spec.eventsRate > 0
			? schedule(spec.eventsRate, (n, due) => send(maker.event(n, mono0 + (due - t0)), due))
			: Promise.resolve(),
	]);
	if (outstanding > 0) {
		// Answers still outstanding get drainMs; then they count as errors ("unfinished").
		let cut: NodeJS.Timeout | undefined;
		await new Promise<void>((resolve) => {
			allDone = resolve;
			cut = setTimeout(() => {
				for (const hr of inflight) hr.destroy(new Error("unfinished when the run ended"));
			}, spec.drainMs);
		});
		clearTimeout(cut);
	}
	const elapsedMs = performance.now() - t0;
	clearInterval(ticker);
	agent.destroy();
	return {
		elapsedMs,
		clientBusy: performance.eventLoopUtilization(elu0).utilization,
		classes: results.map((r) => ({ ...r, latencies: Float64Array.from(r.latencies).sort() })),
	};
}

// ---------------------------------------------------------------------------------------------
// The socket thread

interface SocketTarget {
	/** "global/<shard>" or "repository/<id>". */
	key: string;
	path: string;
	auth: boolean;
	count: number;
}

interface SocketSpec {
	origin: string;
	userToken: string;
	targets: SocketTarget[];
	concurrency: number;
	connectTimeoutMs: number;
}

type SocketCommand = { cmd: "finish"; waitMs: number } | { cmd: "close" };

interface LatencySummary {
	n: number;
	p50: number;
	p95: number;
	p99: number;
	max: number;
}

interface HubStats {
	key: string;
	sockets: number;
	open: number;
	welcomeMin: number;
	welcomeMax: number;
	/** The hub's seq after the load (a fresh socket's welcome). */
	head: number;
	received: number;
	/** Sum over open sockets of head − welcome seq. */
	expected: number;
	missing: number;
	duplicates: number;
	anomalies: number;
}

type SocketReport =
	| { ev: "connected"; ok: number; failed: number; retries: number; errors: string[]; ms: number }
	| { ev: "progress"; open: number; received: number; unexpectedCloses: number }
	| {
			ev: "finished";
			hubs: HubStats[];
			unexpectedCloses: number;
			closeCodes: Record<string, number>;
			pings: number;
			pongs: number;
			anomalySamples: string[];
			/** Event frame latency from the event's due time; global and repository streams. */
			latency: { global: LatencySummary; repository: LatencySummary };
			settledMs: number;
	  }
	| { ev: "closed"; closedInTime: number };

/** 0.1 ms buckets up to 10 s (the maximum is kept exactly). */
class Histogram {
	readonly counts = new Uint32Array(100_000);
	n = 0;
	max = 0;
	add(ms: number): void {
		const b = Math.min(99_999, Math.max(0, Math.floor(ms * 10)));
		this.counts[b] = (this.counts[b] ?? 0) + 1;
		this.n++;
		if (ms > this.max) this.max = ms;
	}
	/** Upper edge of the bucket holding the p-th percentile. */
	pct(p: number): number {
		if (this.n === 0) return Number.NaN;
		const want = Math.max(1, Math.ceil((p / 100) * this.n));
		let seen = 0;
		for (let b = 0; b < this.counts.length; b++) {
			seen += this.counts[b] ?? 0;
			if (seen >= want) return Math.min(this.max, (b + 1) / 10);
		}
		return this.max;
	}
	summary(): LatencySummary {
		return { n: this.n, p50: this.pct(50), p95: this.pct(95), p99: this.pct(99), max: this.max };
	}
}

async function holdSockets(spec: SocketSpec, report: (m: SocketReport) => void): Promise<void> {
	const { WebSocket } = await import("ws");
	type Sock = {
		ws: InstanceType<typeof WebSocket> | undefined;
		target: number;
		welcome: number;
		last: number;
		received: number;
		gaps: number;
		duplicates: number;
		anomalies: number;
		open: boolean;
	};
	const wsBase = spec.origin.replace(/^http/, "ws");
	const headersOf = (t: SocketTarget) =>
		t.auth ? { authorization: `Bearer ${spec.userToken}` } : ({} as Record<string, string>);
	const socks: Sock[] = spec.targets.flatMap((t, target) =>
		Array.from({ length: t.count }, () => ({
			ws: undefined,
			target,
			welcome: 0,
			last: 0,
			received: 0,
			gaps: 0,
			duplicates: 0,
			anomalies: 0,
			open: false,
		})),
	);
	const hist = { global: new Histogram(), repository: new Histogram() };
	const closeCodes: Record<string, number> = {};
	const anomalySamples: string[] = [];
	let closing = false;
	let unexpectedCloses = 0;
	let pings = 0;
	let pongs = 0;
	let received = 0;

	const onFrame = (s: Sock, text: string) => {
		if (text.startsWith('{"type":"pong"')) {
			pongs++;
			return;
		}
		let m: { type?: unknown; seq?: unknown; data?: { t?: unknown } };
		try {
			m = JSON.parse(text) as typeof m;
		} catch {
			m = {};
		}
		if (typeof m.seq !== "number" || typeof m.data !== "object" || m.data === null) {
			s.anomalies++;
			if (anomalySamples.length < 5) anomalySamples.push(text.slice(0, 200));
			return;
		}
		if (m.seq <= s.last) {
			s.duplicates++;
			return;
		}
		if (m.seq > s.last + 1) s.gaps += m.seq - s.last - 1;
		s.last = m.seq;
		s.received++;
		received++;
		if (typeof m.data.t === "number") {
			(spec.targets[s.target]?.key.startsWith("global") ? hist.global : hist.repository).add(
				monoMs() - m.data.t,
			);
		}
	};

	/** One connection attempt; resolves with the welcome's seq, or an error text. */
	const connect = (t: SocketTarget, onEvent?: (text: string) => void) =>
		new Promise<{ ws: InstanceType<typeof WebSocket>; seq: number } | { error: string }>((resolve) => {
			const ws = new WebSocket(`${wsBase}${t.path}`, { headers: headersOf(t), perMessageDeflate: false });
			let settled = false;
			const settle = (v: { ws: InstanceType<typeof WebSocket>; seq: number } | { error: string }) => {
				if (settled) return;
				settled = true;
				clearTimeout(timer);
				resolve(v);
			};
			const timer = setTimeout(() => {
				ws.terminate();
				settle({ error: "no welcome in time" });
			}, spec.connectTimeoutMs);
			ws.on("message", (data: Buffer) => {
				const text = data.toString();
				if (!settled) {
					const m = JSON.parse(text) as { type?: string; seq?: number };
					if (m.type === "welcome" && typeof m.seq === "number") settle({ ws, seq: m.seq });
					else settle({ error: `first frame: ${text.slice(0, 100)}` });
					return;
				}
				onEvent?.(text);
			});
			ws.on("unexpected-response", (req, res) => {
				req.destroy();
				settle({ error: `HTTP ${res.statusCode}` });
			});
			ws.on("error", (err) => settle({ error: err.message }));
			ws.on("close", (code) => settle({ error: `closed ${code}` }));
		});

	// Connect everything, `concurrency` at a time; a failed connect is retried 3 times with jitter.
	const t0 = performance.now();
	let next = 0;
	let ok = 0;
	let failed = 0;
	let retries = 0;
	const errors: string[] = [];
	const one = async (s: Sock) => {
		const t = spec.targets[s.target];
		if (!t) return;
		for (let attempt = 0; ; attempt++) {
			const r = await connect(t, (text) => onFrame(s, text));
			if ("ws" in r) {
				s.ws = r.ws;
				s.welcome = r.seq;
				s.last = r.seq;
				s.open = true;
				ok++;
				r.ws.on("close", (code) => {
					s.open = false;
					if (closing) return;
					unexpectedCloses++;
					closeCodes[String(code)] = (closeCodes[String(code)] ?? 0) + 1;
				});
				return;
			}
			if (errors.length < 5) errors.push(`${t.key}: ${r.error}`);
			if (attempt === 3) {
				failed++;
				return;
			}
			retries++;
			await new Promise((res) => setTimeout(res, 100 + Math.random() * 400 * (attempt + 1)));
		}
	};
	await Promise.all(
		Array.from({ length: spec.concurrency }, async () => {
			while (next < socks.length) {
				const s = socks[next++];
				if (s) await one(s);
			}
		}),
	);
	report({ ev: "connected", ok, failed, retries, errors, ms: performance.now() - t0 });

	// Heartbeat: each socket pings every 30 s, 1/30 of them each second.
	let tick = 0;
	const heart = setInterval(() => {
		tick++;
		for (let i = tick % 30; i < socks.length; i += 30) {
			const s = socks[i];
			if (s?.open && s.ws) {
				s.ws.send('{"type":"ping"}');
				pings++;
			}
		}
	}, 1000);
	const progress = setInterval(() => {
		report({ ev: "progress", open: socks.filter((s) => s.open).length, received, unexpectedCloses });
	}, 10_000);

	const commands: SocketCommand[] = [];
	let wake: (() => void) | undefined;
	parentPort?.on("message", (c: SocketCommand) => {
		commands.push(c);
		wake?.();
	});
	const nextCommand = async (): Promise<SocketCommand> => {
		for (;;) {
			const c = commands.shift();
			if (c) return c;
			await new Promise<void>((resolve) => {
				wake = resolve;
			});
		}
	};

	for (;;) {
		const c = await nextCommand();
		if (c.cmd === "finish") {
			// Each hub's head: the welcome of a fresh socket (closed at once).
			const heads = await Promise.all(
				spec.targets.map(async (t) => {
					const r = await connect(t);
					if ("ws" in r) {
						r.ws.close(1000, "probe");
						return r.seq;
					}
					throw new Error(`probe of ${t.key}: ${r.error}`);
				}),
			);
			const behind = () => socks.some((s) => s.open && s.last < (heads[s.target] ?? 0));
			const w0 = performance.now();
			while (behind() && performance.now() - w0 < c.waitMs) await new Promise((res) => setTimeout(res, 50));
			const settledMs = performance.now() - w0;
			const hubs: HubStats[] = spec.targets.map((t, i) => {
				const mine = socks.filter((s) => s.target === i);
				const open = mine.filter((s) => s.open);
				const head = heads[i] ?? 0;
				return {
					key: t.key,
					sockets: mine.length,
					open: open.length,
					welcomeMin: Math.min(...mine.map((s) => s.welcome)),
					welcomeMax: Math.max(...mine.map((s) => s.welcome)),
					head,
					received: mine.reduce((a, s) => a + s.received, 0),
					expected: open.reduce((a, s) => a + (head - s.welcome), 0),
					missing: open.reduce((a, s) => a + s.gaps + Math.max(0, head - s.last), 0),
					duplicates: mine.reduce((a, s) => a + s.duplicates, 0),
					anomalies: mine.reduce((a, s) => a + s.anomalies, 0),
				};
			});
			report({
				ev: "finished",
				hubs,
				unexpectedCloses,
				closeCodes,
				pings,
				pongs,
				anomalySamples,
				latency: { global: hist.global.summary(), repository: hist.repository.summary() },
				settledMs,
			});
		} else {
			closing = true;
			clearInterval(heart);
			clearInterval(progress);
			const open = socks.filter((s) => s.open && s.ws);
			const closed = await Promise.all(
				open.map(
					(s) =>
						new Promise<boolean>((resolve) => {
							const ws = s.ws;
							if (!ws) return resolve(true);
							const t = setTimeout(() => {
								ws.terminate();
								resolve(false);
							}, 5000);
							ws.once("close", () => {
								clearTimeout(t);
								resolve(true);
							});
							ws.close(1000, "soak done");
						}),
				),
			);
			report({ ev: "closed", closedInTime: closed.filter(Boolean).length });
			return;
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Thread entry points

type ThreadData = { soakLoad: LoadSpec } | { soakSockets: SocketSpec };

if (!isMainThread && parentPort && workerData && typeof workerData === "object") {
	const port = parentPort;
	const data = workerData as Partial<{ soakLoad: LoadSpec; soakSockets: SocketSpec }>;
	if (data.soakLoad) {
		generateLoad(data.soakLoad, (p) => port.postMessage(p)).then(
			(result) => {
				port.postMessage(
					result,
					result.classes.map((c) => c.latencies.buffer as ArrayBuffer),
				);
				port.close();
			},
			(err: unknown) => {
				throw err;
			},
		);
	} else if (data.soakSockets) {
		holdSockets(data.soakSockets, (m) => port.postMessage(m)).then(
			() => port.close(),
			(err: unknown) => {
				throw err;
			},
		);
	}
} else if (isMainThread) {
	await main();
}

// ---------------------------------------------------------------------------------------------
// The orchestration

type Mem = { rss: number; anon: number; hwm: number };

/** Summed over the workerd processes, in MiB; NaN when one is gone or none was found. */
function memoryOf(pids: number[], read: (pid: number) => Mem | null): Mem {
	const sum: Mem = { rss: 0, anon: 0, hwm: 0 };
	for (const pid of pids) {
		const m = read(pid);
		if (!m) return { rss: Number.NaN, anon: Number.NaN, hwm: Number.NaN };
		sum.rss += m.rss / 1024;
		sum.anon += m.anon / 1024;
		sum.hwm += m.hwm / 1024;
	}
	return pids.length ? sum : { rss: Number.NaN, anon: Number.NaN, hwm: Number.NaN };
}

type Heap = { used: number; total: number };

/**
 * --inspect: the V8 heap of the Worker's isolate (Runtime.getHeapUsage over the inspector that
 * Miniflare serves on loopback), in MiB; null when it does not answer within 5 s. Tells a JS-heap
 * growth (the app, its libraries) from a native one (the runtime). Only getHeapUsage is sent:
 * HeapProfiler.collectGarbage stalled this workerd in a trial (no answer, workerd restarted).
 */
async function heapProbe(inspector: URL): Promise<{ probe: () => Promise<Heap | null>; close: () => void }> {
	const session = await connectInspector(inspector);
	const probe = async (): Promise<Heap | null> => {
		const u = (await session.send("Runtime.getHeapUsage")) as {
			usedSize?: unknown;
			totalSize?: unknown;
		} | null;
		return typeof u?.usedSize === "number" && typeof u.totalSize === "number"
			? { used: u.usedSize / 2 ** 20, total: u.totalSize / 2 ** 20 }
			: null;
	};
	return { probe, close: () => session.close() };
}

/** Least-squares slope of y over x (per unit of x); NaN with fewer than 3 points. */
function slope(points: { x: number; y: number }[]): number {
	const p = points.filter((q) => Number.isFinite(q.y));
	if (p.length < 3) return Number.NaN;
	const mx = p.reduce((a, q) => a + q.x, 0) / p.length;
	const my = p.reduce((a, q) => a + q.y, 0) / p.length;
	const num = p.reduce((a, q) => a + (q.x - mx) * (q.y - my), 0);
	const den = p.reduce((a, q) => a + (q.x - mx) ** 2, 0);
	return den === 0 ? Number.NaN : num / den;
}

/**
 * A worker thread running this file. Reports `onReport` takes are handled at once (progress);
 * the others wait in a queue for `next`.
 */
function startThread<M>(
	data: ThreadData,
	signal: AbortSignal,
	defer: (name: string, fn: () => Promise<void>) => void,
	onReport: (m: M) => boolean,
) {
	const w = new Worker(new URL(import.meta.url), { workerData: data });
	const queue: M[] = [];
	let waiter: (() => void) | undefined;
	let failure: Error | undefined;
	let exited = false;
	const stop = () => void w.terminate();
	signal.addEventListener("abort", stop, { once: true });
	defer("worker thread", async () => {
		signal.removeEventListener("abort", stop);
		if (!exited) await w.terminate();
	});
	w.on("message", (m: M) => {
		if (onReport(m)) return;
		queue.push(m);
		waiter?.();
	});
	w.once("error", (err) => {
		failure = err;
		waiter?.();
	});
	w.once("exit", (code) => {
		exited = true;
		failure ??= new Error(`worker thread exited with ${code}`);
		waiter?.();
	});
	const next = async <T extends M>(accept: (m: M) => m is T, timeoutMs: number): Promise<T> => {
		const deadline = performance.now() + timeoutMs;
		for (;;) {
			const i = queue.findIndex(accept);
			if (i >= 0) return queue.splice(i, 1)[0] as T;
			if (signal.aborted) throw signal.reason;
			if (failure) throw failure;
			const left = deadline - performance.now();
			if (left <= 0) throw new Error(`worker thread: no answer in ${Math.round(timeoutMs / 1000)} s`);
			await new Promise<void>((resolve) => {
				const t = setTimeout(resolve, Math.min(left, 1000));
				waiter = () => {
					clearTimeout(t);
					resolve();
				};
			});
		}
	};
	return { next, send: (c: SocketCommand) => w.postMessage(c) };
}

function table(header: string[], rows: string[][], leftColumns = 1): void {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) =>
		`  ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
	console.log(line(header));
	for (const r of rows) console.log(line(r));
}

const counts = (r: Record<string, number>): string =>
	Object.entries(r)
		.sort((a, b) => b[1] - a[1])
		.map(([k, v]) => `${k}:${v}`)
		.join(" ") || "-";

async function main(): Promise<void> {
	const lib = await import("./lib.ts");
	const { fmtInt, fmtMs, log } = lib;
	const { values } = parseArgs({
		options: {
			duration: { type: "string", default: "180" },
			rate: { type: "string", default: "200" },
			sockets: { type: "string", default: "500" },
			"events-rate": { type: "string", default: "5" },
			repos: { type: "string", default: "10000" },
			"hub-repos": { type: "string", default: "4" },
			idle: { type: "string", default: "20" },
			seed: { type: "string", default: "1" },
			"keep-db": { type: "boolean", default: false },
			json: { type: "boolean", default: false },
			mix: { type: "string", default: "" },
			inspect: { type: "boolean", default: false },
		},
		strict: true,
	});
	// --mix "summary=80,health=20": only these classes, with these weights (to bisect a finding).
	const WEIGHTS: number[] = CLASSES.map((c) => c.weight);
	if (values.mix) {
		WEIGHTS.fill(0);
		for (const part of values.mix.split(",")) {
			const [key = "", w = ""] = part.split("=").map((x) => x.trim());
			const i = CLASSES.findIndex((c) => c.short === key);
			if (i < 0 || !(Number(w) >= 0)) {
				console.error(
					`--mix: "${part}" is not <class>=<weight>; classes: ${CLASSES.map((c) => c.short).join(", ")}`,
				);
				process.exit(2);
			}
			WEIGHTS[i] = Number(w);
		}
		const sumW = WEIGHTS.reduce((a, b) => a + b, 0);
		if (!(sumW > 0)) {
			console.error("--mix: the weights must add up to more than 0");
			process.exit(2);
		}
		for (let i = 0; i < WEIGHTS.length; i++) WEIGHTS[i] = (100 * (WEIGHTS[i] ?? 0)) / sumW;
	}
	const invalidShare = (WEIGHTS[INVALID] ?? 0) / 100;
	const DURATION_S = Number(values.duration);
	const RATE = Number(values.rate);
	const SOCKETS = Number(values.sockets);
	const EVENTS_RATE = Number(values["events-rate"]);
	const REPOS = Number(values.repos);
	const HUB_REPOS = Number(values["hub-repos"]);
	const IDLE_S = Number(values.idle);
	const SEED = Number(values.seed);
	for (const [name, v, min, max] of [
		["duration", DURATION_S, 10, 1800],
		["rate", RATE, 1, 5000],
		["sockets", SOCKETS, 0, 9000],
		["events-rate", EVENTS_RATE, 0, 200],
		["repos", REPOS, 100, 2_000_000],
		["hub-repos", HUB_REPOS, 1, 64],
		["idle", IDLE_S, 0, 600],
		["seed", SEED, 0, 2 ** 31],
	] as const) {
		if (!(Number.isInteger(v) && v >= min && v <= max)) {
			console.error(`--${name} must be an integer from ${min} to ${max}`);
			process.exit(2);
		}
	}
	const mib = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
	const signed = (x: number) => (Number.isNaN(x) ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(1)}`);

	lib.runBench(
		async (signal) => {
			const started = performance.now();
			const load0 = loadavg();
			log(
				`${availableParallelism()} CPUs, load average ${load0.map((l) => l.toFixed(2)).join(" ")} (a shared machine: figures are noisy)`,
			);
			const { execFileSync } = await import("node:child_process");
			const fds = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
			if (Number.isFinite(fds) && 2 * SOCKETS + 512 > fds) {
				throw new Error(
					`ulimit -n is ${fds} and workerd needs 2 descriptors per socket: use --sockets ${Math.floor((fds - 512) / 2)} or fewer`,
				);
			}
			const build = lib.buildWorker();
			const shards = Number(build.vars.GLOBAL_HUB_SHARDS ?? 4);
			const dbUrl = await lib.ensureBenchDatabase("gi_bench_soak", REPOS, {
				dropIfCreated: !values["keep-db"],
			});
			const stack = await lib.startStack(dbUrl, "gi:bench:soak:");
			const { SignJWT } = await import("jose");
			const userToken = await lib.mintToken(stack.secret, build.vars);
			const serviceToken = await new SignJWT({ role: "service" })
				.setProtectedHeader({ alg: "HS256", typ: "JWT" })
				.setIssuer(build.vars.JWT_ISSUER ?? "")
				.setAudience(build.vars.JWT_AUDIENCE ?? "")
				.setSubject("soak-publisher")
				.setIssuedAt()
				.setExpirationTime("2h")
				.sign(new TextEncoder().encode(stack.secret));
			const limits = { RATE_LIMIT_SEARCH: "off", RATE_LIMIT_READ: "off", RATE_LIMIT_EVENTS: "off" };
			const worker = await lib.startWorker(
				build,
				"soak",
				{ ...stack.vars, ...limits },
				values.inspect ? { inspectorPort: 0 } : {},
			);
			const inspector = values.inspect ? await heapProbe(await worker.mf.getInspectorURL()) : undefined;
			if (inspector) lib.defer("inspector", () => inspector.close());
			const heapNow = async (): Promise<Heap | null> => (inspector ? inspector.probe() : null);
			const heapText = (h: Heap | null) => (h ? `; V8 heap ${mib(h.used)} used of ${mib(h.total)} MiB` : "");
			const pids = lib.workerdPids();
			log(
				`workerd (Miniflare, direct socket) at ${worker.origin}, pid ${pids.join(", ") || "NOT FOUND (no memory figures)"}; GLOBAL_HUB_SHARDS=${shards}`,
			);
			log(
				`rate limits OFF for the soak (${Object.entries(limits)
					.map(([k, v]) => `${k}=${v}`)
					.join(
						", ",
					)}: one caller sends everything); AE_SINK_URL empty (datapoints are dropped); Redis tier ${stack.redis ? "on" : "OFF"}`,
			);
			const memPhases: { phase: string; atS: number | null; mem: Mem; heap: Heap | null }[] = [];
			const snap = async (phase: string, atS: number | null = null): Promise<Mem> => {
				const mem = memoryOf(pids, lib.processMemoryKiB);
				const heap = await heapNow();
				memPhases.push({ phase, atS, mem, heap });
				log(
					`workerd memory, ${phase}: RSS ${mib(mem.rss)} MiB (anon ${mib(mem.anon)}, peak ${mib(mem.hwm)})${heapText(heap)}`,
				);
				return mem;
			};
			await snap("after start-up");

			const rows = await lib.query<{ id: string; full_name: string }>(
				dbUrl,
				"SELECT id, full_name FROM repositories ORDER BY stars DESC, id",
			);
			const spec: LoadSpec = {
				origin: worker.origin,
				userToken,
				serviceToken,
				rate: RATE,
				eventsRate: EVENTS_RATE,
				durationMs: DURATION_S * 1000,
				seed: SEED,
				runId: `soak-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`,
				ids: rows.map((r) => r.id),
				names: rows.map((r) => r.full_name),
				hubRepos: rows.slice(0, HUB_REPOS).map((r) => r.id),
				weights: WEIGHTS,
				timeoutMs: 10_000,
				maxOutstanding: 4000,
				drainMs: 5000,
			};

			// Preflight: every invalid request, three of each valid kind and three events, checked.
			const pre = requestMaker({ ...spec, runId: `${spec.runId}-pre` }, SEED + 1);
			const preflight: Req[] = [
				...pre.invalid,
				...CLASSES.slice(0, INVALID).flatMap((_, cls) => [0, 1, 2].map(() => pre.make(cls))),
				...[0, 1, 2].map((n) => pre.event(n, monoMs())),
			];
			const preflightProblems: string[] = [];
			console.log("\ninvalid requests (round robin, 10% of the mix), as answered in the preflight:");
			for (const req of preflight) {
				const res = await fetch(`${worker.origin}${req.path}`, {
					method: req.method,
					headers: req.headers,
					...(req.body === undefined ? {} : { body: req.body }),
					signal,
				});
				const body = await res.text();
				const problem = verdict(req, res.status, body);
				if (req.cls === INVALID) {
					const code = /"code":"([a-z_]+)"/.exec(body)?.[1] ?? "-";
					console.log(
						`  ${problem ? "UNEXPECTED" : "ok"}  ${req.method} ${res.status} ${code}  ${req.label}${problem ? ` (${problem})` : ""}`,
					);
				}
				if (problem) {
					preflightProblems.push(
						`${req.method} ${req.path} (${req.label}): ${problem}: ${body.slice(0, 200)}`,
					);
				}
			}
			for (const p of preflightProblems.slice(0, 10)) console.log(`  preflight problem: ${p}`);

			console.log(
				`\nthe mix at ${RATE} req/s (weights in %${values.mix ? `, from --mix ${values.mix}` : ""}), plus event POSTs at ${EVENTS_RATE}/s:`,
			);
			CLASSES.forEach((c, i) => {
				const w = WEIGHTS[i] ?? 0;
				if (w > 0)
					console.log(`  ${String(Number(w.toFixed(1))).padStart(4)}  ${c.name.padEnd(23)} ${c.what}`);
			});
			console.log(
				`        ${"event POST".padEnd(23)} POST /api/v1/events, service token: 40% about a held repository, 40% about any (Zipf), 20% custom x-soak (global only)`,
			);
			await snap("after the preflight");

			// Sockets: half on the global stream over every shard, half over the repository streams.
			const globalCount = SOCKETS - Math.floor(SOCKETS / 2);
			const repoCount = SOCKETS - globalCount;
			const targets: SocketTarget[] = [
				...Array.from({ length: shards }, (_, s) => ({
					key: `global/${s}`,
					path: `/api/v1/stream/global/activity?shard=${s}`,
					auth: false,
					count: Math.floor(globalCount / shards) + (s < globalCount % shards ? 1 : 0),
				})),
				...spec.hubRepos.map((id, i) => ({
					key: `repository/${id.slice(0, 8)}`,
					path: `/api/v1/stream/repository/${id}/updates`,
					auth: true,
					count: Math.floor(repoCount / HUB_REPOS) + (i < repoCount % HUB_REPOS ? 1 : 0),
				})),
			].filter((t) => t.count > 0);
			let lastSockets: Extract<SocketReport, { ev: "progress" }> | undefined;
			const sockets = startThread<SocketReport>(
				{
					soakSockets: {
						origin: worker.origin,
						userToken,
						targets,
						concurrency: 16,
						connectTimeoutMs: 20_000,
					},
				},
				signal,
				lib.defer,
				(m) => {
					if (m.ev !== "progress") return false;
					lastSockets = m;
					return true;
				},
			);
			const connected = await sockets.next(
				(m): m is Extract<SocketReport, { ev: "connected" }> => m.ev === "connected",
				300_000,
			);
			log(
				`${fmtInt(connected.ok)}/${fmtInt(SOCKETS)} sockets held after ${(connected.ms / 1000).toFixed(1)} s (${targets
					.map((t) => `${t.key} ${t.count}`)
					.join(", ")})${connected.retries ? `, ${connected.retries} connects retried` : ""}${
					connected.errors.length ? `; errors: ${connected.errors.join("; ")}` : ""
				}`,
			);
			await lib.sleep(2000, signal);
			const memBefore = await snap("sockets held, before the load", 0);

			// The load, with a memory sample and a progress line every 10 s.
			console.log(
				`\nload for ${DURATION_S} s; every 10 s: workerd memory, and the requests answered in those 10 s`,
			);
			const series: {
				atS: number;
				rssMiB: number;
				anonMiB: number;
				answeredPerS: number;
				p99Ms: number;
				errors: number;
				socketsOpen: number;
				framesReceived: number;
				heapUsedMiB: number;
			}[] = [];
			// Every 10 s the load thread reports; the memory sample is taken then, so both cover
			// the same moment.
			let lastCompleted = 0;
			const onProgress = async (p: LoadProgress) => {
				const mem = memoryOf(pids, lib.processMemoryKiB);
				const atS = Math.round(p.atMs / 1000);
				const heap = await heapNow();
				memPhases.push({ phase: "load", atS, mem, heap });
				const row = {
					atS,
					rssMiB: mem.rss,
					anonMiB: mem.anon,
					answeredPerS: (p.completed - lastCompleted) / 10,
					p99Ms: p.windowP99,
					errors: p.errors,
					socketsOpen: lastSockets?.open ?? connected.ok,
					framesReceived: lastSockets?.received ?? 0,
					heapUsedMiB: heap?.used ?? Number.NaN,
				};
				lastCompleted = p.completed;
				series.push(row);
				console.log(
					`  ${String(atS).padStart(5)} s  RSS ${mib(row.rssMiB).padStart(7)} MiB (anon ${mib(row.anonMiB)})  ${fmtInt(row.answeredPerS).padStart(5)} answers/s  p99 ${fmtMs(row.p99Ms).padStart(6)} ms  errors ${row.errors}  sockets open ${row.socketsOpen}  frames received ${fmtInt(row.framesReceived)}${heap ? `  V8 heap ${mib(heap.used)} MiB` : ""}`,
				);
			};
			const load = startThread<LoadResult | LoadProgress>({ soakLoad: spec }, signal, lib.defer, (m) => {
				if (!("progress" in m)) return false;
				void onProgress(m);
				return true;
			});
			const result = await load.next((m): m is LoadResult => !("progress" in m), DURATION_S * 1000 + 120_000);
			const memAfter = await snap("after the load", Math.round(result.elapsedMs / 1000));

			// Deliveries: every held socket must reach its hub's head.
			sockets.send({ cmd: "finish", waitMs: 20_000 });
			const finished = await sockets.next(
				(m): m is Extract<SocketReport, { ev: "finished" }> => m.ev === "finished",
				120_000,
			);
			await lib.sleep(IDLE_S * 1000, signal);
			const memIdle = await snap(`after ${IDLE_S} s idle (sockets still held)`);
			sockets.send({ cmd: "close" });
			const closed = await sockets.next(
				(m): m is Extract<SocketReport, { ev: "closed" }> => m.ev === "closed",
				60_000,
			);
			await lib.sleep(3000, signal);
			const memClosed = await snap("3 s after closing the sockets");

			// ---- the report
			const elapsedS = result.elapsedMs / 1000;
			const classes = result.classes;
			console.log(
				`\nresults: ${DURATION_S} s at ${RATE} req/s offered + ${EVENTS_RATE} events/s, ${fmtInt(connected.ok)} sockets held; latency from each request's due time (open loop), ms; load average now ${loadavg()
					.map((l) => l.toFixed(2))
					.join(" ")}`,
			);
			table(
				[
					"class",
					"sent",
					"as expected",
					"errors",
					"error rate",
					"p50",
					"p95",
					"p99",
					"max",
					"answers/s",
					"statuses",
					"X-Cache-Tier",
				],
				classes
					.filter((c) => c.sent > 0)
					.map((c) => [
						c.name,
						fmtInt(c.sent),
						fmtInt(c.ok),
						fmtInt(c.errors),
						c.sent ? `${((100 * c.errors) / c.sent).toFixed(c.errors ? 3 : 0)}%` : "-",
						fmtMs(percentile(c.latencies, 50)),
						fmtMs(percentile(c.latencies, 95)),
						fmtMs(percentile(c.latencies, 99)),
						fmtMs(c.latencies.at(-1) ?? Number.NaN),
						(c.completed / elapsedS).toFixed(1),
						counts(c.statuses),
						counts(c.tiers),
					]),
			);
			const valid = classes.filter((_, i) => i !== INVALID);
			const invalid = classes[INVALID];
			const validSent = valid.reduce((a, c) => a + c.sent, 0);
			const validErrors = valid.reduce((a, c) => a + c.errors, 0);
			const allLatencies = Float64Array.from(valid.flatMap((c) => [...c.latencies])).sort();
			console.log(
				`  valid requests: ${fmtInt(validSent)} sent, ${fmtInt(validErrors)} errors (error rate ${validSent ? ((100 * validErrors) / validSent).toFixed(3) : "-"}%, must be 0); p50 ${fmtMs(percentile(allLatencies, 50))} p95 ${fmtMs(percentile(allLatencies, 95))} p99 ${fmtMs(percentile(allLatencies, 99))} ms; achieved ${(valid.reduce((a, c) => a + c.completed, 0) / elapsedS).toFixed(1)} answers/s of ${Number((RATE * (1 - invalidShare) + EVENTS_RATE).toFixed(1))} offered`,
			);
			console.log(
				`  expected 4xx: ${fmtInt(invalid?.ok ?? 0)} of ${fmtInt(invalid?.sent ?? 0)} invalid requests got their 4xx and the envelope; ${fmtInt(invalid?.errors ?? 0)} did not`,
			);
			console.log(`  load generator busy ${Math.round(100 * result.clientBusy)}% (event-loop utilisation)`);
			for (const c of classes) {
				for (const e of c.errorSamples.slice(0, 5)) console.log(`  error sample, ${c.name}: ${e}`);
			}

			const hubs = finished.hubs;
			const sum = (f: (h: HubStats) => number) => hubs.reduce((a, h) => a + f(h), 0);
			const accepted = classes[EVENTS]?.ok ?? 0;
			if (hubs.length === 0) {
				console.log(
					`\nno sockets held (--sockets 0): ${fmtInt(accepted)} events accepted, deliveries not checked`,
				);
			} else {
				console.log(
					`\nevent deliveries (${fmtInt(accepted)} events accepted; every held socket must get every seq from its welcome to its hub's head after the load)`,
				);
				table(
					[
						"hub",
						"sockets",
						"open at end",
						"welcome seq",
						"head",
						"expected",
						"received",
						"missing",
						"dup/out of order",
						"other frames",
					],
					[
						...hubs.map((h) => [
							h.key,
							fmtInt(h.sockets),
							fmtInt(h.open),
							h.welcomeMin === h.welcomeMax ? String(h.welcomeMin) : `${h.welcomeMin}–${h.welcomeMax}`,
							String(h.head),
							fmtInt(h.expected),
							fmtInt(h.received),
							fmtInt(h.missing),
							fmtInt(h.duplicates),
							fmtInt(h.anomalies),
						]),
						[
							"all",
							fmtInt(sum((h) => h.sockets)),
							fmtInt(sum((h) => h.open)),
							"",
							"",
							fmtInt(sum((h) => h.expected)),
							fmtInt(sum((h) => h.received)),
							fmtInt(sum((h) => h.missing)),
							fmtInt(sum((h) => h.duplicates)),
							fmtInt(sum((h) => h.anomalies)),
						],
					],
				);
				const shardAdvance = hubs
					.filter((h) => h.key.startsWith("global/"))
					.map((h) => h.head - h.welcomeMax);
				const shardMismatch = shardAdvance.some((a) => a !== accepted);
				console.log(
					`  global shards advanced by ${[...new Set(shardAdvance)].join("/")} during the load (accepted POSTs: ${accepted})${shardMismatch ? " — MISMATCH (a POST that failed may still have been published)" : ""}`,
				);
				const lat = finished.latency;
				console.log(
					`  delivery latency from the event's due time, ms: global p50 ${fmtMs(lat.global.p50)} p95 ${fmtMs(lat.global.p95)} p99 ${fmtMs(lat.global.p99)} max ${fmtMs(lat.global.max)} (${fmtInt(lat.global.n)} frames); repository p50 ${fmtMs(lat.repository.p50)} p95 ${fmtMs(lat.repository.p95)} p99 ${fmtMs(lat.repository.p99)} max ${fmtMs(lat.repository.max)} (${fmtInt(lat.repository.n)} frames)`,
				);
				console.log(
					`  sockets: ${fmtInt(SOCKETS)} asked, ${fmtInt(connected.ok)} held at the start, ${fmtInt(sum((h) => h.open))} at the end; ${finished.unexpectedCloses} closed by the server${finished.unexpectedCloses ? ` (codes ${counts(finished.closeCodes)})` : ""}; ${fmtInt(finished.pings)} pings, ${fmtInt(finished.pongs)} pongs; ${closed.closedInTime} closed cleanly at the end; the last deliveries settled ${fmtMs(finished.settledMs)} ms after the probe`,
				);
				for (const a of finished.anomalySamples) console.log(`  other frame: ${a}`);
			}

			console.log("\nworkerd memory (MiB, summed over its processes)");
			const phases = memPhases.filter((p) => p.phase !== "load");
			table(
				["phase", "RSS", "anon", "peak RSS", ...(inspector ? ["V8 heap used", "V8 heap total"] : [])],
				phases.map((p) => [
					p.phase,
					mib(p.mem.rss),
					mib(p.mem.anon),
					mib(p.mem.hwm),
					...(inspector ? [mib(p.heap?.used ?? Number.NaN), mib(p.heap?.total ?? Number.NaN)] : []),
				]),
			);
			// Warm-up (V8 heap growth, caches filling) flattens out; a leak keeps its slope: compare
			// the trend of the first and the second half of the samples.
			const points = series.map((s) => ({ x: s.atS / 60, y: s.rssMiB }));
			const half = Math.floor(points.length / 2);
			const trend = slope(points);
			const trendFirst = slope(points.slice(0, half));
			const trendSecond = slope(points.slice(half));
			console.log(
				`  delta RSS: after the load ${signed(memAfter.rss - memBefore.rss)} MiB, after the idle ${signed(memIdle.rss - memBefore.rss)} MiB, after closing the sockets ${signed(memClosed.rss - memBefore.rss)} MiB (vs sockets held, before the load)`,
			);
			console.log(
				`  RSS trend during the load (least squares): ${signed(trend)} MiB/min over ${points.length} samples; first half ${signed(trendFirst)}, second half ${signed(trendSecond)} MiB/min (a leak keeps its slope, a warm-up flattens)${half < 6 ? "; too few samples to tell: the default mix warmed up over ~150 s in a 600 s run" : ""}`,
			);
			console.log(`  RSS every 10 s during the load: ${series.map((s) => mib(s.rssMiB)).join(" ")}`);
			if (worker.problems.count > 0) {
				console.log(`\nthe Worker logged ${fmtInt(worker.problems.count)} warnings/errors:`);
				for (const [kind, n] of Object.entries(worker.problems.byKind).sort((a, b) => b[1] - a[1]))
					console.log(`  ${fmtInt(n).padStart(7)}  ${kind}`);
				for (const s of worker.problems.samples.slice(0, 3)) console.log(`  e.g. ${s}`);
			}

			const failures: string[] = [];
			if (validErrors > 0) failures.push(`${validErrors} valid requests failed`);
			if ((invalid?.errors ?? 0) > 0)
				failures.push(`${invalid?.errors} invalid requests did not get their 4xx`);
			if (preflightProblems.length > 0)
				failures.push(`${preflightProblems.length} preflight answers were wrong`);
			if (connected.ok < SOCKETS) failures.push(`${SOCKETS - connected.ok} sockets did not connect`);
			if (finished.unexpectedCloses > 0)
				failures.push(`${finished.unexpectedCloses} sockets closed by the server`);
			if (sum((h) => h.missing) > 0) failures.push(`${sum((h) => h.missing)} deliveries lost`);
			if (sum((h) => h.duplicates) > 0) failures.push(`${sum((h) => h.duplicates)} duplicate deliveries`);

			if (values.json) {
				const lat3 = (l: Float64Array) => ({
					p50: percentile(l, 50),
					p95: percentile(l, 95),
					p99: percentile(l, 99),
					max: l.at(-1) ?? null,
				});
				const report = {
					config: {
						durationS: DURATION_S,
						rate: RATE,
						eventsRate: EVENTS_RATE,
						sockets: SOCKETS,
						repos: REPOS,
						hubRepos: HUB_REPOS,
						idleS: IDLE_S,
						seed: SEED,
						globalHubShards: shards,
						rateLimits: "off",
						weights: Object.fromEntries(CLASSES.map((c, i) => [c.name, WEIGHTS[i]])),
						loadAverageAtStart: load0,
					},
					elapsedS,
					classes: classes.map((c) => ({
						name: c.name,
						sent: c.sent,
						completed: c.completed,
						asExpected: c.ok,
						errors: c.errors,
						errorRate: c.sent ? c.errors / c.sent : 0,
						latencyMs: lat3(c.latencies),
						answersPerS: c.completed / elapsedS,
						statuses: c.statuses,
						cacheTiers: c.tiers,
						errorSamples: c.errorSamples,
					})),
					valid: { sent: validSent, errors: validErrors, latencyMs: lat3(allLatencies) },
					expected4xx: {
						sent: invalid?.sent ?? 0,
						asExpected: invalid?.ok ?? 0,
						wrong: invalid?.errors ?? 0,
					},
					preflightProblems,
					events: { accepted, hubs, deliveryLatencyMs: finished.latency },
					sockets: {
						asked: SOCKETS,
						heldAtStart: connected.ok,
						openAtEnd: sum((h) => h.open),
						unexpectedCloses: finished.unexpectedCloses,
						closeCodes: finished.closeCodes,
						pings: finished.pings,
						pongs: finished.pongs,
					},
					memoryMiB: {
						pids,
						phases: phases.map((p) => ({
							phase: p.phase,
							...p.mem,
							heapUsed: p.heap?.used,
							heapTotal: p.heap?.total,
						})),
						deltaAfterLoad: memAfter.rss - memBefore.rss,
						deltaAfterIdle: memIdle.rss - memBefore.rss,
						deltaAfterClose: memClosed.rss - memBefore.rss,
						trendPerMin: trend,
						trendPerMinFirstHalf: trendFirst,
						trendPerMinSecondHalf: trendSecond,
					},
					series,
					workerProblems: worker.problems,
					clientBusy: result.clientBusy,
					passed: failures.length === 0,
					failures,
				};
				console.log(
					JSON.stringify(
						report,
						(_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v),
						2,
					),
				);
			}
			log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
			if (failures.length > 0) throw new Error(`soak FAILED: ${failures.join("; ")}`);
			log(
				"soak passed: no valid request failed, every invalid one got its 4xx, no delivery lost, no socket dropped",
			);
		},
		(DURATION_S + IDLE_S + 600) * 1000,
	);
}

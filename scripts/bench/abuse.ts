// `npm run bench:abuse -- [--rounds 3] [--seconds 60] [--only a,b]`: issue 11's floods, each for
// `--seconds` at a fixed, stated rate while a legitimate client runs the normal mix, side by side
// with the same mix alone (the quiet run), medians over rounds. Per round: one quiet run, then
// one run per scenario (rotating order), then a second quiet run ("quiet-again": the noise floor,
// how much two runs without attackers differ), each against the same Worker.
//
// The legitimate client (the same in every run):
//   requests  lib.ts's open-loop runner at LEGIT_RATE req/s, latency from each request's scheduled
//             time: 60% cached summaries (100 ids, a user token), 25% searches (20 common
//             queries), 15% leaderboards; p99 and errors (any non-2xx/304 answer, drop or timeout);
//   events    a service posts EVENT_RATE events/s about one repository; a viewer holds a socket
//             on that repository's stream and another on global shard 0: publish-to-receive p99
//             over both, and events that never arrived (errors).
// The scenarios (the attacker: anonymous, one client address, unless said):
//   resume-flood    5 sockets on the viewer's repository hub, each sending `resume` from the
//                   start of a ~1 MB log at 10 commands/s (its whole budget);
//   nocache         `Cache-Control: no-cache` searches, 20 distinct queries, 100 req/s;
//   search-scan     distinct random searches (each a cache miss: Postgres), 30 req/s;
//   sockets         100 sockets held on global shard 0 plus 20 more attempts a second (429s);
//   health          GET /health at 100 req/s.
// (Each rate is 10-50 × what one client address gets past the production rate limits.)
// Rate limits are raised for the whole run (as in the other benchmarks), so what is measured is
// the other bounds (cache floor, replay budgets, socket caps, health probe memo); with the
// production budgets each attacker here would also be refused past 2 searches or 10 reads a
// second. One 2-core machine runs workerd, Postgres, Redis, the stand-ins, the legitimate client
// and the attackers: the ratios, not the absolute figures, are the result.
import { randomUUID } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
	buildWorker,
	ensureBenchDatabase,
	fmtMs,
	type LoadPlan,
	log,
	median,
	mintToken,
	percentile,
	query,
	runBench,
	runLoad,
	sleep,
	startStack,
	startWorker,
} from "./lib.ts";

const { values: args } = parseArgs({
	options: {
		rounds: { type: "string", default: "3" },
		seconds: { type: "string", default: "60" },
		only: { type: "string" },
	},
	strict: true,
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const DB_NAME = "gi_bench_summary";
const REPOS = 10_000;
const LEGIT_RATE = 100;
const EVENT_RATE = 5;
const SCENARIOS = ["resume-flood", "nocache", "search-scan", "sockets", "health"] as const;
type Scenario = (typeof SCENARIOS)[number];
const chosen = args.only ? (args.only.split(",") as Scenario[]) : [...SCENARIOS];
for (const s of chosen) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);

const ATTACKER_IP = "198.51.100.66";
const COMMON_QUERIES = ["api", "web", "cli", "data", "rust", "go", "react", "server", "tool", "framework"];

interface RunFigures {
	requestP99: number;
	requestErrors: number;
	requests: number;
	deliveryP99: number;
	deliveryErrors: number;
	events: number;
	/** What the attack itself saw (its own statuses, bytes): one line. */
	attack: string;
}

/** A Node WebSocket client that records when each event id arrived. */
function viewer(
	url: string,
	headers: Record<string, string>,
	arrived: Map<string, number>,
): Promise<WebSocket> {
	return new Promise((resolve, reject) => {
		// Node's WebSocket takes no headers; the token goes as the subprotocol pair the API accepts.
		const protocols = headers.authorization
			? ["gitinsight.v1", `bearer.${headers.authorization.slice("Bearer ".length)}`]
			: ["gitinsight.v1"];
		const ws = new WebSocket(url, protocols);
		ws.addEventListener("message", (e) => {
			const m = JSON.parse(String(e.data)) as { type: string; id?: string };
			if (m.type === "welcome") resolve(ws);
			if (m.id?.startsWith("legit-")) arrived.set(`${url}|${m.id}`, performance.now());
		});
		ws.addEventListener("error", () => reject(new Error(`socket to ${url} failed`)));
	});
}

runBench(
	async (signal) => {
		log(
			`${availableParallelism()} CPUs, load average ${loadavg()
				.map((l) => l.toFixed(2))
				.join(" ")}; ${ROUNDS} rounds of ${SECONDS} s runs: quiet, then ${chosen.join(", ")}`,
		);
		const build = buildWorker();
		const dbUrl = await ensureBenchDatabase(DB_NAME, REPOS);
		const stack = await startStack(dbUrl, "gi:bench:abuse:");
		const worker = await startWorker(build, "abuse", {
			...stack.vars,
			RATE_LIMIT_SEARCH: "100000000/60",
			RATE_LIMIT_READ: "100000000/60",
			RATE_LIMIT_EVENTS: "100000000/60",
		});
		const base = worker.origin;
		const wsBase = base.replace(/^http/, "ws");
		const user = await mintToken(stack.secret, build.vars);
		const service = await mintToken(stack.secret, build.vars, "service");
		const rows = await query<{ id: string }>(
			dbUrl,
			"SELECT id::text AS id FROM repositories ORDER BY id LIMIT 101",
		);
		const ids = rows.map((r) => r.id);
		const streamed = ids[100] ?? "";
		const post = (body: unknown, path = "/api/v1/events") =>
			fetch(`${base}${path}`, {
				method: "POST",
				headers: { authorization: `Bearer ${service}`, "content-type": "application/json" },
				body: JSON.stringify(body),
			});

		// A ~1 MB log on the streamed repository's hub, for the resume flood to ask for.
		const pad = "x".repeat(2500);
		for (let b = 0; b < 4; b++) {
			const events = Array.from({ length: 100 }, (_, i) => ({
				type: "insight_added",
				repository_id: streamed,
				data: { n: b * 100 + i, pad },
			}));
			const res = await post({ events }, "/api/v1/events/batch");
			if (res.status !== 202) throw new Error(`seeding the log: ${res.status} ${await res.text()}`);
		}

		const legitPaths: string[] = [];
		const mix = (i: number) => i % 20;
		for (let i = 0; i < 200; i++) {
			const k = mix(i);
			if (k < 12) legitPaths.push(`/api/v1/fast/repositories/${ids[i % 100]}/summary`);
			else if (k < 17) legitPaths.push(`/api/v1/fast/search?q=${COMMON_QUERIES[i % COMMON_QUERIES.length]}`);
			else legitPaths.push(`/api/v1/fast/leaderboard?category=${["trending", "popular", "quality"][i % 3]}`);
		}
		// Warm the legitimate client's keys, as a service in steady state would have them.
		for (const p of new Set(legitPaths)) {
			await (await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${user}` } })).arrayBuffer();
		}

		const legitPlan = (durationMs: number): LoadPlan => ({
			mode: "open",
			origins: [base],
			paths: legitPaths,
			groups: ["legit"],
			cycle: true,
			headers: { authorization: `Bearer ${user}`, "cf-connecting-ip": "203.0.113.10" },
			ratePerS: LEGIT_RATE,
			durationMs,
			connections: 16,
			timeoutMs: 5000,
			maxOutstanding: 2000,
		});
		const floodPlan = (paths: string[], ratePerS: number, headers: Record<string, string>): LoadPlan => ({
			mode: "open",
			origins: [base],
			paths,
			groups: ["attack"],
			cycle: true,
			headers: { "cf-connecting-ip": ATTACKER_IP, ...headers },
			ratePerS,
			durationMs: SECONDS * 1000,
			connections: 32,
			timeoutMs: 5000,
			maxOutstanding: 5000,
		});

		/** Starts an attack; resolves to a stop function that says what the attack saw. */
		async function startAttack(scenario: Scenario): Promise<() => Promise<string>> {
			const controller = new AbortController();
			const stopOn = AbortSignal.any([signal, controller.signal]);
			const statusLine = async (run: Promise<import("./lib.ts").LoadResult>) => {
				const r = await run;
				const g = r.groups[0];
				return `${r.sent} sent, statuses ${JSON.stringify(g?.statuses ?? {})}, x-cache ${JSON.stringify(g?.xCache ?? {})}`;
			};
			if (scenario === "nocache" || scenario === "search-scan" || scenario === "health") {
				const paths =
					scenario === "nocache"
						? Array.from({ length: 20 }, (_, i) => `/api/v1/fast/search?q=framework+${i}`)
						: scenario === "health"
							? ["/health"]
							: Array.from(
									{ length: 60 * SECONDS },
									() => `/api/v1/fast/search?q=${randomUUID().slice(0, 8)}`,
								);
				const rate = scenario === "search-scan" ? 30 : 100;
				const headers: Record<string, string> = scenario === "nocache" ? { "cache-control": "no-cache" } : {};
				const run = runLoad(floodPlan(paths, rate, headers), stopOn);
				return () => statusLine(run);
			}
			if (scenario === "resume-flood") {
				let bytes = 0;
				let resets = 0;
				const sockets = await Promise.all(
					Array.from({ length: 5 }, async (_, k) => {
						const token = await mintToken(stack.secret, build.vars);
						const ws = new WebSocket(`${wsBase}/api/v1/stream/repository/${streamed}/updates`, [
							"gitinsight.v1",
							`bearer.${token}`,
						]);
						ws.addEventListener("message", (e) => {
							const text = String(e.data);
							bytes += text.length;
							if (text.includes('"too_much_to_replay"')) resets++;
						});
						await new Promise((resolve) => ws.addEventListener("open", resolve, { once: true }));
						return { ws, k };
					}),
				);
				const timer = setInterval(() => {
					for (const { ws } of sockets) {
						if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "resume", since: 0 }));
					}
				}, 100);
				return async () => {
					clearInterval(timer);
					for (const { ws } of sockets) ws.close(1000, "done");
					return `5 sockets × 10 resumes/s: ${(bytes / 2 ** 20).toFixed(1)} MiB received, ${resets} too_much_to_replay resets`;
				};
			}
			// sockets: 100 held on global shard 0, then 20 more attempts a second.
			const held: WebSocket[] = [];
			const url = `${wsBase}/api/v1/stream/global/activity?shard=0`;
			// Node's WebSocket sends no CF-Connecting-IP: every anonymous socket of this process is
			// one caller ("ip:unknown"), so the hoarder has shard 0 and the viewer sits on shard 1.
			for (let i = 0; i < 100; i++) {
				const ws = new WebSocket(url, ["gitinsight.v1"]);
				held.push(ws);
			}
			let refused = 0;
			let accepted = 0;
			const timer = setInterval(() => {
				const ws = new WebSocket(url, ["gitinsight.v1"]);
				ws.addEventListener("open", () => {
					accepted++;
					held.push(ws);
				});
				ws.addEventListener("error", () => refused++);
			}, 50);
			return async () => {
				clearInterval(timer);
				for (const ws of held) ws.close(1000, "done");
				return `100 held + 20 attempts/s: ${accepted} more accepted, ${refused} refused`;
			};
		}

		async function run(scenario: Scenario | "quiet" | "quiet-again"): Promise<RunFigures> {
			const arrived = new Map<string, number>();
			const streams = [
				`${wsBase}/api/v1/stream/repository/${streamed}/updates`,
				`${wsBase}/api/v1/stream/global/activity?shard=1`,
			];
			const sockets = await Promise.all([
				viewer(streams[0] ?? "", { authorization: `Bearer ${user}` }, arrived),
				viewer(streams[1] ?? "", {}, arrived),
			]);
			const stopAttack =
				scenario === "quiet" || scenario === "quiet-again" ? async () => "-" : await startAttack(scenario);
			const sent = new Map<string, number>();
			let n = 0;
			const producer = setInterval(() => {
				const id = `legit-${randomUUID()}`;
				sent.set(id, performance.now());
				n++;
				void post({ id, type: "analysis_started", repository_id: streamed, data: { n } }).then(
					(r) => r.arrayBuffer(),
					() => undefined,
				);
			}, 1000 / EVENT_RATE);
			const load = await runLoad(legitPlan(SECONDS * 1000), signal);
			clearInterval(producer);
			await sleep(1500, signal);
			const attack = await stopAttack();
			for (const ws of sockets) ws.close(1000, "done");
			const delays: number[] = [];
			let missing = 0;
			for (const [id, at] of sent) {
				for (const s of streams) {
					const got = arrived.get(`${s}|${id}`);
					if (got === undefined) missing++;
					else delays.push(got - at);
				}
			}
			delays.sort((a, b) => a - b);
			const g = load.groups[0];
			const latencies = g?.latencies ?? new Float64Array();
			return {
				requestP99: percentile(latencies, 99),
				requestErrors: (g?.errors ?? 0) + load.dropped,
				requests: g?.completed ?? 0,
				deliveryP99: percentile(delays, 99),
				deliveryErrors: missing,
				events: sent.size * streams.length,
				attack,
			};
		}

		const results = new Map<string, RunFigures[]>();
		for (let round = 1; round <= ROUNDS; round++) {
			const order = [
				...chosen.slice((round - 1) % chosen.length),
				...chosen.slice(0, (round - 1) % chosen.length),
			];
			// A second quiet run, last: how far two runs without any attack differ (the noise floor).
			for (const scenario of ["quiet" as const, ...order, "quiet-again" as const]) {
				const f = await run(scenario);
				results.set(scenario, [...(results.get(scenario) ?? []), f]);
				log(
					`round ${round} ${scenario}: request p99 ${fmtMs(f.requestP99)} ms, ${f.requestErrors} errors of ${f.requests}; delivery p99 ${fmtMs(f.deliveryP99)} ms, ${f.deliveryErrors} missing of ${f.events}; attack: ${f.attack}`,
				);
				await sleep(2000, signal);
			}
		}

		const quiet = results.get("quiet") ?? [];
		const quietP99 = median(quiet.map((f) => f.requestP99));
		console.log("");
		console.log(
			`medians of ${ROUNDS} rounds, ${SECONDS} s each; legitimate client: ${LEGIT_RATE} req/s (summary/search/leaderboard), ${EVENT_RATE} events/s to 2 viewers`,
		);
		console.log(
			"| run | request p99 (ms) | × quiet | request errors | delivery p99 (ms) | events missing | targets met |",
		);
		console.log("|---|--:|--:|--:|--:|--:|---|");
		for (const scenario of ["quiet", ...chosen, "quiet-again"]) {
			const fs = results.get(scenario) ?? [];
			const p99 = median(fs.map((f) => f.requestP99));
			const errors = fs.reduce((a, f) => a + f.requestErrors, 0);
			const delivery = median(fs.map((f) => f.deliveryP99));
			const missing = fs.reduce((a, f) => a + f.deliveryErrors, 0);
			const ratio = p99 / quietP99;
			const met = errors === 0 && missing === 0 && delivery <= 500 && ratio <= 2;
			console.log(
				`| ${scenario} | ${fmtMs(p99)} | ${ratio.toFixed(2)} | ${errors} | ${fmtMs(delivery)} | ${missing} | ${met ? "yes" : "NO"} |`,
			);
		}
		console.log("targets: 0 errors, delivery p99 ≤ 500 ms, request p99 ≤ 2 × the quiet run's median");
		if (worker.problems.count > 0) {
			log(
				`the Worker logged ${worker.problems.count} warnings/errors: ${JSON.stringify(worker.problems.byKind)}`,
			);
		}
	},
	(ROUNDS * (chosen.length + 2) * (SECONDS + 10) + 600) * 1000,
);

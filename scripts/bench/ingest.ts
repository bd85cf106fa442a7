// `npm run bench:ingest -- [--seconds 8] [--rounds 3] [--concurrency 1,16,64] [--batch-concurrency 4]
//  [--profile <file> [--profile-scenario one|many|global|batch-one|batch-many]]`: throughput of event ingestion, POST /api/v1/events and /events/batch, in
// workerd, and workerd's CPU per event (user + system time of the process, /proc). --profile: a V8
// CPU profile of the Worker's isolate (Worker and Durable Objects share it) during an extra run of
// one scenario ("one hub, 16 in flight" by default) after the rounds (written to <file>.cpuprofile, top functions printed).
//
// Set-up (torn down at the end, also on Ctrl-C and at a hard limit of 8 minutes): the bundle
// `wrangler deploy` would upload, run by Miniflare's Node API on a direct workerd socket;
// database gi_bench_realtime (1,000 repositories) and the Neon/Upstash stand-ins (each event
// about a repository first invalidates its cached summary: a Redis DEL through the Upstash
// stand-in and a Cache API delete); a per-run JWT secret and a service token; wrangler.toml's
// GLOBAL_HUB_SHARDS (4): every event is published to its RepoHub and to every GlobalHub shard.
// Scenarios, each a closed loop (N requests in flight, back to back) for --seconds, per round in
// rotating order, from a worker thread:
//   one hub     every event about the same repository: one RepoHub (+ the global shards);
//   many hubs   each event about another of 1,000 repositories: 1,000 RepoHubs;
//   global only custom `x-bench` events without a repository: the global shards only, no cache
//               invalidation;
//   batch       /events/batch, 100 events per request, about one repository or about 100
//               distinct ones.
// Reported: requests/s and events/s, p50/p99 latency, errors, median over rounds. Each hub is one
// Durable Object: a single-threaded actor documented at ~1,000 requests/s; every publish reaches
// every global shard, so the global shards cap ingest whatever N (see the README's capacity notes).
import { availableParallelism, loadavg } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

interface Scenario {
	name: string;
	path: "/api/v1/events" | "/api/v1/events/batch" | "/event";
	kind: "one" | "many" | "global" | "batch-one" | "batch-many" | "floor";
	concurrency: number;
}

interface LoadSpec {
	/** The app's Worker, or the floor Worker for the "floor" scenario. */
	origin: string;
	token: string;
	scenario: Scenario;
	repoIds: string[];
	durationMs: number;
	/** Distinguishes the ids of this run's events (idempotency keys must be new). */
	prefix: string;
}

interface LoadOutcome {
	elapsedMs: number;
	ok: number;
	events: number;
	statuses: Record<string, number>;
	errorSamples: string[];
	latencies: Float64Array;
	clientBusy: number;
	/** workerd's CPU seconds during the run (filled in by the main thread). */
	serverCpu: number;
}

const BATCH = 100;

function bodyOf(spec: LoadSpec, i: number): { body: string; events: number } {
	const ids = spec.repoIds;
	const one = (k: number, repo: string | undefined) => ({
		id: `${spec.prefix}-${i}-${k}`,
		type: repo ? "insight_added" : "x-bench",
		...(repo ? { repository_id: repo } : {}),
		data: { bench: "ingest", i, k, note: "x".repeat(80) },
	});
	switch (spec.scenario.kind) {
		case "one":
		case "floor":
			return { body: JSON.stringify(one(0, ids[0])), events: 1 };
		case "many":
			return { body: JSON.stringify(one(0, ids[i % ids.length])), events: 1 };
		case "global":
			return { body: JSON.stringify(one(0, undefined)), events: 1 };
		case "batch-one":
			return {
				body: JSON.stringify({ events: Array.from({ length: BATCH }, (_, k) => one(k, ids[0])) }),
				events: BATCH,
			};
		case "batch-many":
			return {
				body: JSON.stringify({
					events: Array.from({ length: BATCH }, (_, k) => one(k, ids[(i * BATCH + k) % ids.length])),
				}),
				events: BATCH,
			};
	}
}

/** The worker-thread side: a closed loop of POSTs over keep-alive connections. */
async function generate(spec: LoadSpec): Promise<LoadOutcome> {
	const { Agent, request } = await import("node:http");
	const target = new URL(spec.origin);
	const agent = new Agent({
		keepAlive: true,
		maxSockets: spec.scenario.concurrency,
		maxFreeSockets: spec.scenario.concurrency,
	});
	const latencies: number[] = [];
	const statuses: Record<string, number> = {};
	const errorSamples: string[] = [];
	let ok = 0;
	let events = 0;
	let next = 0;
	const count = (k: string) => {
		statuses[k] = (statuses[k] ?? 0) + 1;
	};
	const one = (i: number): Promise<void> =>
		new Promise((resolve) => {
			const { body, events: n } = bodyOf(spec, i);
			const t0 = performance.now();
			const req = request(
				{
					agent,
					host: target.hostname,
					port: target.port,
					path: spec.scenario.path,
					method: "POST",
					headers: {
						authorization: `Bearer ${spec.token}`,
						"content-type": "application/json",
						"content-length": Buffer.byteLength(body),
					},
				},
				(res) => {
					const chunks: Buffer[] = [];
					res.on("data", (c: Buffer) => chunks.push(c));
					res.on("end", () => {
						const status = res.statusCode ?? 0;
						count(String(status));
						if (status === 202) {
							ok++;
							events += n;
							latencies.push(performance.now() - t0);
						} else if (errorSamples.length < 5) {
							errorSamples.push(`${status} ${Buffer.concat(chunks).toString().slice(0, 200)}`);
						}
						resolve();
					});
					res.on("error", (err) => {
						count(`error:${err.message}`);
						resolve();
					});
				},
			);
			req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
			req.on("error", (err) => {
				count(`error:${err.message}`);
				if (errorSamples.length < 5) errorSamples.push(err.message);
				resolve();
			});
			req.end(body);
		});
	const elu0 = performance.eventLoopUtilization();
	const t0 = performance.now();
	const deadline = t0 + spec.durationMs;
	await Promise.all(
		Array.from({ length: spec.scenario.concurrency }, async () => {
			while (performance.now() < deadline) await one(next++);
		}),
	);
	const elapsedMs = performance.now() - t0;
	agent.destroy();
	return {
		elapsedMs,
		ok,
		events,
		statuses,
		errorSamples,
		latencies: Float64Array.from(latencies).sort(),
		clientBusy: performance.eventLoopUtilization(elu0).utilization,
		serverCpu: Number.NaN,
	};
}

if (!isMainThread && parentPort && (workerData as { ingest?: LoadSpec } | null)?.ingest) {
	const port = parentPort;
	generate((workerData as { ingest: LoadSpec }).ingest).then(
		(outcome) => {
			port.postMessage(outcome, [outcome.latencies.buffer as ArrayBuffer]);
			port.close();
		},
		(err: unknown) => {
			throw err;
		},
	);
} else if (isMainThread) {
	await main();
}

async function main(): Promise<void> {
	const lib = await import("./lib.ts");
	const { fmtInt, fmtMs, log, median, percentile } = lib;
	const { SignJWT } = await import("jose");
	const { values } = parseArgs({
		options: {
			seconds: { type: "string", default: "8" },
			rounds: { type: "string", default: "3" },
			concurrency: { type: "string", default: "1,16,64" },
			"batch-concurrency": { type: "string", default: "4" },
			profile: { type: "string" },
			"profile-scenario": { type: "string", default: "one" },
		},
		strict: true,
	});
	const SECONDS = Number(values.seconds);
	const ROUNDS = Number(values.rounds);
	const LEVELS = values.concurrency.split(",").map(Number);
	const BATCH_CONCURRENCY = Number(values["batch-concurrency"]);
	for (const [name, v, max] of [
		["seconds", SECONDS, 60],
		["rounds", ROUNDS, 10],
		["batch-concurrency", BATCH_CONCURRENCY, 64],
		...LEVELS.map((l) => ["concurrency", l, 512] as const),
	] as const) {
		if (!(Number.isInteger(v) && v > 0 && v <= max)) {
			console.error(`--${name} must be an integer from 1 to ${max}`);
			process.exit(2);
		}
	}
	const top = Math.max(...LEVELS);
	const scenarios: Scenario[] = [
		...LEVELS.map(
			(c): Scenario => ({
				name: `one hub, ${c} in flight`,
				path: "/api/v1/events",
				kind: "one",
				concurrency: c,
			}),
		),
		{
			name: "floor: one RPC + one SQLite row, 16 in flight",
			path: "/event",
			kind: "floor",
			concurrency: 16,
		},
		{ name: `many hubs, ${top} in flight`, path: "/api/v1/events", kind: "many", concurrency: top },
		{ name: `global only, ${top} in flight`, path: "/api/v1/events", kind: "global", concurrency: top },
		{
			name: `batch ×${BATCH}, one hub, ${BATCH_CONCURRENCY} in flight`,
			path: "/api/v1/events/batch",
			kind: "batch-one",
			concurrency: BATCH_CONCURRENCY,
		},
		{
			name: `batch ×${BATCH}, ${BATCH} hubs, ${BATCH_CONCURRENCY} in flight`,
			path: "/api/v1/events/batch",
			kind: "batch-many",
			concurrency: BATCH_CONCURRENCY,
		},
	];

	const spawn = (spec: LoadSpec, signal: AbortSignal): Promise<LoadOutcome> =>
		new Promise((resolve, reject) => {
			if (signal.aborted) return reject(signal.reason);
			const w = new Worker(new URL(import.meta.url), { workerData: { ingest: spec } });
			const onAbort = () => {
				reject(signal.reason);
				void w.terminate();
			};
			signal.addEventListener("abort", onAbort, { once: true });
			w.once("message", (m: LoadOutcome) => {
				signal.removeEventListener("abort", onAbort);
				resolve(m);
			});
			w.once("error", reject);
			w.once("exit", (code) => reject(new Error(`load generator exited with ${code}`)));
		});
	const run = async (spec: LoadSpec, signal: AbortSignal): Promise<LoadOutcome> => {
		const pids = lib.workerdPids();
		const cpu0 = lib.cpuSeconds(pids);
		const outcome = await spawn(spec, signal);
		outcome.serverCpu = pids.length > 0 ? lib.cpuSeconds(pids) - cpu0 : Number.NaN;
		return outcome;
	};

	const cpuPerEvent = (o: LoadOutcome) =>
		o.events > 0 && Number.isFinite(o.serverCpu) ? fmtInt((o.serverCpu * 1e6) / o.events) : "?";

	lib.runBench(async (signal) => {
		const started = performance.now();
		log(
			`${availableParallelism()} CPUs, load average ${loadavg()
				.map((l) => l.toFixed(2))
				.join(" ")} (a shared machine: compare within a run)`,
		);
		const build = lib.buildWorker();
		const dbUrl = await lib.ensureBenchDatabase("gi_bench_realtime", 1000);
		const stack = await lib.startStack(dbUrl, "gi:bench:ingest:");
		const token = await new SignJWT({ role: "service" })
			.setProtectedHeader({ alg: "HS256", typ: "JWT" })
			.setIssuer(build.vars.JWT_ISSUER ?? "")
			.setAudience(build.vars.JWT_AUDIENCE ?? "")
			.setSubject("bench-publisher")
			.setIssuedAt()
			.setExpirationTime("2h")
			.sign(new TextEncoder().encode(stack.secret));
		const worker = await lib.startWorker(
			build,
			"ingest",
			stack.vars,
			values.profile ? { inspectorPort: 0 } : {},
		);
		log(
			`workerd (Miniflare, direct socket) at ${worker.origin}; GLOBAL_HUB_SHARDS=${build.vars.GLOBAL_HUB_SHARDS}`,
		);
		const floorDir = dirname(fileURLToPath(import.meta.url));
		const floor = await lib.startWorker(
			{
				dir: floorDir,
				modules: [{ type: "ESModule", path: `${floorDir}/rpc-floor-worker.js` }],
				config: {
					...build.config,
					durable_objects: { bindings: [{ name: "FLOOR", class_name: "Floor" }] },
					migrations: [{ new_sqlite_classes: ["Floor"] }],
					analytics_engine_datasets: [],
				},
				vars: {},
			},
			"floor",
			{},
		);
		log(`floor Worker (scripts/bench/rpc-floor-worker.js) at ${floor.origin}`);
		const repoIds = (
			await lib.query<{ id: string }>(dbUrl, "SELECT id FROM repositories ORDER BY id LIMIT 1000")
		).map((r) => r.id);
		const prefix = `ingest-${Date.now().toString(36)}`;
		let seq = 0;
		const spec = (scenario: Scenario, durationMs: number): LoadSpec => ({
			origin: scenario.kind === "floor" ? floor.origin : worker.origin,
			token,
			scenario,
			repoIds,
			durationMs,
			prefix: `${prefix}-${seq++}`,
		});

		// Warm-up: every scenario for 1.5 s (JIT, hub creation, connections); not measured.
		for (const s of scenarios) {
			const w = await run(spec({ ...s, concurrency: Math.min(s.concurrency, 8) }, 1500), signal);
			if (w.ok === 0) throw new Error(`${s.name}: no request succeeded: ${w.errorSamples.join("; ")}`);
		}

		const results = new Map<string, LoadOutcome[]>(scenarios.map((s) => [s.name, []]));
		const width = Math.max(...scenarios.map((s) => s.name.length));
		for (let round = 0; round < ROUNDS; round++) {
			console.log(`\nround ${round + 1}/${ROUNDS}`);
			for (let k = 0; k < scenarios.length; k++) {
				const s = scenarios[(k + round) % scenarios.length] as Scenario;
				const o = await run(spec(s, SECONDS * 1000), signal);
				results.get(s.name)?.push(o);
				const secs = o.elapsedMs / 1000;
				const errors = Object.entries(o.statuses).filter(([k]) => k !== "202");
				console.log(
					`  ${s.name.padEnd(width)}  ${fmtInt(o.ok / secs)} req/s, ${fmtInt(o.events / secs)} events/s, ${cpuPerEvent(o)} µs CPU/event, p50 ${fmtMs(percentile(o.latencies, 50))} p99 ${fmtMs(percentile(o.latencies, 99))} ms` +
						(errors.length ? `, errors ${errors.map(([k, v]) => `${k} ${v}`).join(", ")}` : "") +
						(o.errorSamples.length ? ` (${o.errorSamples[0]})` : ""),
				);
				await lib.sleep(500, signal);
			}
		}

		console.log(
			`\nevent ingestion, medians over ${ROUNDS} rounds of ${SECONDS} s (closed loop; each event also goes to ${build.vars.GLOBAL_HUB_SHARDS} global shards)`,
		);
		const header = [
			"scenario",
			"req/s",
			"events/s",
			"µs CPU/event",
			"p50 ms",
			"p99 ms",
			"errors",
			"client busy",
		];
		const rows = scenarios.map((s) => {
			const os = results.get(s.name) ?? [];
			const med = (f: (o: LoadOutcome) => number) => median(os.map(f));
			const errors = os.reduce(
				(a, o) =>
					a +
					Object.entries(o.statuses)
						.filter(([k]) => k !== "202")
						.reduce((b, [, v]) => b + v, 0),
				0,
			);
			return [
				s.name,
				fmtInt(med((o) => (o.ok * 1000) / o.elapsedMs)),
				fmtInt(med((o) => (o.events * 1000) / o.elapsedMs)),
				fmtInt(med((o) => (o.events > 0 ? (o.serverCpu * 1e6) / o.events : Number.NaN))),
				fmtMs(med((o) => percentile(o.latencies, 50))),
				fmtMs(med((o) => percentile(o.latencies, 99))),
				String(errors),
				`${Math.round(100 * med((o) => o.clientBusy))}%`,
			];
		});
		const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
		const line = (cells: string[]) =>
			`  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ")}`;
		console.log(line(header));
		for (const r of rows) console.log(line(r));
		const medOf = (kind: Scenario["kind"], f: (o: LoadOutcome) => number, concurrency?: number) => {
			const sc = scenarios.find(
				(x) => x.kind === kind && (concurrency === undefined || x.concurrency === concurrency),
			);
			return sc ? median((results.get(sc.name) ?? []).map(f)) : Number.NaN;
		};
		const reqs = (o: LoadOutcome) => (o.ok * 1000) / o.elapsedMs;
		const evs = (o: LoadOutcome) => (o.events * 1000) / o.elapsedMs;
		const cpu = (o: LoadOutcome) => (o.events > 0 ? (o.serverCpu * 1e6) / o.events : Number.NaN);
		const single = medOf("one", reqs, 16);
		const floorRate = medOf("floor", reqs);
		const batch = medOf("batch-one", evs);
		console.log(`\nheadline (medians over ${ROUNDS} rounds; targets from issue 10):`);
		console.log(
			`  single events, one repository hub, 16 in flight: ${fmtInt(single)} req/s (target ≥ 1,000), ${fmtInt(medOf("one", cpu, 16))} µs workerd CPU/event`,
		);
		console.log(
			`  floor, one Worker→Durable Object RPC + one SQLite row + a log line: ${fmtInt(floorRate)} req/s, ${fmtInt(medOf("floor", cpu))} µs CPU/event → single events at ${(single / floorRate).toFixed(2)}× the floor`,
		);
		console.log(
			`  batches of ${BATCH}, one repository hub: ${fmtInt(batch)} events/s (target ≥ 20,000), ${fmtInt(medOf("batch-one", cpu))} µs CPU/event`,
		);
		console.log(
			`  (each event is logged by its RepoHub and ${build.vars.GLOBAL_HUB_SHARDS} global shards; one workerd runs the Worker, every hub and Miniflare's Cache API on one JavaScript thread)`,
		);
		if (values.profile) {
			const { connectInspector, saveProfile, startProfile } = await import("./inspector.ts");
			const inspector = await connectInspector(await worker.mf.getInspectorURL());
			const kind = values["profile-scenario"];
			const target =
				scenarios.find((s) => s.kind === kind && (kind !== "one" || s.concurrency === 16)) ??
				scenarios.find((s) => s.kind === kind);
			if (target) {
				console.log(`\nprofiled run: ${target.name}, ${SECONDS} s (sampling slows workerd: not a figure)`);
				await startProfile(inspector);
				await run(spec(target, SECONDS * 1000), signal);
				await saveProfile(inspector, `${values.profile}.cpuprofile`, 25);
			}
			inspector.close();
		}
		if (worker.problems.count > 0) {
			console.log(`\nthe Worker logged ${worker.problems.count} warnings/errors, e.g.:`);
			for (const p of worker.problems.samples.slice(0, 5)) console.log(`  ${p}`);
		}
		log(`done in ${Math.round((performance.now() - started) / 1000)} s`);
	}, 8 * 60_000);
}

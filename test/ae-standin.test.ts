// Conformance of the local Analytics Engine stand-in (scripts/stack/ae-standin.ts), from inside
// workerd: datapoints go in through the Worker's own writer (src/lib/metrics.ts) and raw sink
// POSTs, and every query /metrics sends (metricsQueries) comes back through the SQL API with exact,
// _sample_interval-weighted numbers. Also: the three FORMATs, auth, 422 for anything outside the
// dialect (injection attempts included), SHOW TABLES and the sink's validation.
// Rows with _sample_interval > 1 are written with the sink's `sampleInterval` point field, a
// stand-in extension the Worker never sends (AE itself sets the interval when it samples).
// Every test writes a dataset of its own, so files and tests never see each other's rows.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import {
	hubDataPoint,
	ingestDataPoint,
	Metrics,
	type RequestPoint,
	requestDataPoint,
	type SinkBatch,
} from "../src/lib/metrics";
import {
	COUNTER_PERIOD_DAYS,
	counterPeriodStart,
	DURATION_BUCKETS,
	metricsQueries,
} from "../src/ops/metrics.queries";

const sinkUrl = inject("aeSinkUrl");
const sqlUrl = inject("aeSqlUrl");
const token = inject("aeApiToken");

const fileTag = Math.random().toString(36).slice(2, 8);
let counter = 0;
/** A dataset name unique to one test. */
const dataset = (name: string) => `ae_${fileTag}_${name}_${++counter}`;

type Point = SinkBatch["points"][number] & { sampleInterval?: number };

async function sink(name: string, points: Point[]): Promise<void> {
	const res = await fetch(sinkUrl, { method: "POST", body: JSON.stringify({ dataset: name, points }) });
	expect(res.status, await res.text()).toBe(204);
}

function query(sql: string, auth: string | null = `Bearer ${token}`): Promise<Response> {
	const headers: Record<string, string> = { "content-type": "text/plain" };
	if (auth !== null) headers.authorization = auth;
	return fetch(sqlUrl, { method: "POST", headers, body: sql });
}

interface JsonResult {
	meta: { name: string; type: string }[];
	data: Record<string, unknown>[];
	rows: number;
	rows_before_limit_at_least: number;
}

async function json(sql: string): Promise<JsonResult> {
	const res = await query(sql);
	const text = await res.text();
	expect(res.status, text).toBe(200);
	expect(res.headers.get("content-type")).toMatch(/^application\/json/);
	return JSON.parse(text) as JsonResult;
}

async function invalid(sql: string): Promise<string> {
	const res = await query(sql);
	const text = await res.text();
	expect(res.status, `${sql} -> ${text}`).toBe(422);
	expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
	expect(text).toMatch(/^Input was invalid: /);
	return text;
}

const byKeys =
	(...keys: string[]) =>
	(a: Record<string, unknown>, b: Record<string, unknown>) => {
		for (const k of keys) {
			const x = String(a[k]);
			const y = String(b[k]);
			if (x !== y) return x < y ? -1 : 1;
		}
		return 0;
	};

/** le_0..le_10 as the query answers them: weighted counts of durations ≤ each bucket, quoted. */
function buckets(durations: [seconds: number, weight: number][]): Record<string, string> {
	return Object.fromEntries(
		DURATION_BUCKETS.map((le, i) => [
			`le_${i}`,
			String(durations.filter(([d]) => d <= le).reduce((n, [, w]) => n + w, 0)),
		]),
	);
}

const request = (p: Partial<RequestPoint>): RequestPoint => ({
	method: "GET",
	route: "/api/v1/fast/search",
	status: 200,
	cache: "",
	tier: "",
	colo: "",
	errorCode: "",
	caller: "anonymous",
	durationSeconds: 0,
	responseBytes: 100,
	...p,
});

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe("metricsQueries through the SQL API", () => {
	it("answers every /metrics query over points from the Worker's writer", async () => {
		const name = dataset("writer");
		const ctx = createExecutionContext();
		const metrics = new Metrics({ dataset: undefined, datasetName: name, sinkUrl, ctx });
		// Durations are binary fractions, so sums are exact whatever the summation order.
		metrics.write(requestDataPoint(request({ cache: "hit", tier: "memory", durationSeconds: 0.00390625 })));
		metrics.write(requestDataPoint(request({ cache: "miss", tier: "origin", durationSeconds: 0.25 })));
		metrics.write(requestDataPoint(request({ cache: "miss", tier: "origin", durationSeconds: 0.75 })));
		metrics.write(
			requestDataPoint(
				request({
					method: "POST",
					route: "/api/v1/events",
					status: 202,
					caller: "service",
					durationSeconds: 0.03125,
				}),
			),
		);
		metrics.write(
			requestDataPoint(
				request({ route: "unmatched", status: 404, errorCode: "not_found", durationSeconds: 0.0009765625 }),
			),
		);
		// Hub reports within one second (AE timestamps are whole seconds): the latest report is the
		// one with the highest report clock (double4), whatever order the points were written in.
		let clock = 1_000;
		const hub =
			(hubKind: "repo" | "global", id: string, action: "connect" | "disconnect" | "publish") =>
			(sockets: number, published = 0, delivered = 0, reportedAt = ++clock) =>
				metrics.write(hubDataPoint({ hubKind, hub: id, action, sockets, published, delivered, reportedAt }));
		hub("repo", "r1", "connect")(1);
		hub("repo", "r1", "connect")(2);
		hub("repo", "r1", "publish")(2, 1, 2);
		hub("repo", "r1", "disconnect")(1);
		hub("repo", "r2", "connect")(3, 0, 0, 5_000);
		hub("repo", "r2", "disconnect")(2, 0, 0, 4_000); // written later, reported earlier
		hub("global", "global:0", "publish")(5, 1, 5);
		metrics.write(ingestDataPoint({ type: "analysis_completed", accepted: 3, duplicates: 1 }));
		metrics.write(ingestDataPoint({ type: "x-deploy", accepted: 2, duplicates: 0 }));
		metrics.write(ingestDataPoint({ type: "analysis_completed", accepted: 1, duplicates: 0 }));
		await waitOnExecutionContext(ctx);

		const q = metricsQueries(name);
		const totals = await json(q.requestTotals);
		expect(totals.meta).toEqual([
			{ name: "method", type: "String" },
			{ name: "endpoint", type: "String" },
			{ name: "status", type: "String" },
			{ name: "requests", type: "UInt64" },
			{ name: "duration_sum", type: "Float64" },
			...DURATION_BUCKETS.map((_, i) => ({ name: `le_${i}`, type: "UInt64" })),
		]);
		expect(totals.data).toEqual([
			{
				method: "GET",
				endpoint: "/api/v1/fast/search",
				status: "200",
				requests: "3",
				duration_sum: 0.00390625 + 0.25 + 0.75,
				...buckets([
					[0.00390625, 1],
					[0.25, 1],
					[0.75, 1],
				]),
			},
			{
				method: "GET",
				endpoint: "unmatched",
				status: "404",
				requests: "1",
				duration_sum: 0.0009765625,
				...buckets([[0.0009765625, 1]]),
			},
			{
				method: "POST",
				endpoint: "/api/v1/events",
				status: "202",
				requests: "1",
				duration_sum: 0.03125,
				...buckets([[0.03125, 1]]),
			},
		]);
		expect(totals.rows).toBe(3);
		expect(totals.rows_before_limit_at_least).toBe(3);

		const recent = await json(q.recent(300));
		expect(recent.meta.map((m) => m.type)).toEqual(["String", "String", "UInt64", "Float64"]);
		expect(recent.data.sort(byKeys("cache", "tier"))).toEqual([
			{ cache: "", tier: "", requests: "2", duration_sum: 0.03125 + 0.0009765625 },
			{ cache: "hit", tier: "memory", requests: "1", duration_sum: 0.00390625 },
			{ cache: "miss", tier: "origin", requests: "2", duration_sum: 1 },
		]);

		const connections = await json(q.connections);
		expect(connections.meta).toEqual([
			{ name: "hub_kind", type: "String" },
			{ name: "sockets", type: "Float64" },
			{ name: "hubs", type: "UInt64" },
		]);
		expect(connections.data.sort(byKeys("hub_kind"))).toEqual([
			{ hub_kind: "global", sockets: 5, hubs: "1" },
			{ hub_kind: "repo", sockets: 1 + 3, hubs: "2" },
		]);

		const ingested = await json(q.ingested);
		expect(ingested.data).toEqual([
			{ type: "analysis_completed", accepted: 4, duplicates: 1 },
			{ type: "custom", accepted: 2, duplicates: 0 },
		]);

		const delivered = await json(q.delivered);
		expect(delivered.data).toEqual([
			{ hub_kind: "global", published: 1, delivered: 5 },
			{ hub_kind: "repo", published: 1, delivered: 2 },
		]);
	});

	it("weights by _sample_interval and honours each query's time window", async () => {
		const name = dataset("sampled");
		const now = Date.now();
		const req = (
			timestamp: number,
			cache: string,
			tier: string,
			duration: number,
			sampleInterval: number,
		): Point => ({
			timestamp,
			sampleInterval,
			indexes: ["request:/x"],
			blobs: ["request", "1", "GET", "/x", "200", cache, tier, "", "", "user"],
			doubles: [duration, 200, 10],
		});
		const hub = (timestamp: number, id: string, d: [number, number, number], sampleInterval = 1): Point => ({
			timestamp,
			sampleInterval,
			indexes: [`hub:${id}`],
			blobs: ["hub", "1", "repo", id, "publish"],
			doubles: [...d, timestamp],
		});
		await sink(name, [
			req(now, "hit", "memory", 0.0625, 10),
			req(now - 10 * 60_000, "miss", "origin", 0.5, 3), // outside recent(300), inside the counter period
			req(now - 91 * DAY, "miss", "origin", 0.5, 100), // outside every window
			{ ...req(now, "hit", "memory", 0.0625, 50), blobs: ["request", "2", "GET", "/x", "200"] }, // layout v2: ignored
			hub(now - 25 * HOUR, "r1", [7, 1, 7]), // too old for connections, counted by delivered
			hub(now - 2 * HOUR, "r1", [2, 1, 2]),
			hub(now - HOUR, "r1", [4, 1, 4]),
			hub(now - HOUR, "r2", [9, 2, 18], 5),
			{
				timestamp: now,
				sampleInterval: 4,
				indexes: ["ingest:analysis_failed"],
				blobs: ["ingest", "1", "analysis_failed"],
				doubles: [2, 1],
			},
		]);

		// Counters from 90 days back (the default, this 30-day period's start, would make the rows
		// above straddle it on some days).
		const q = metricsQueries(name, (now - 90 * DAY) / 1000);
		expect((await json(q.requestTotals)).data).toEqual([
			{
				method: "GET",
				endpoint: "/x",
				status: "200",
				requests: "13",
				duration_sum: 10 * 0.0625 + 3 * 0.5,
				...buckets([
					[0.0625, 10],
					[0.5, 3],
				]),
			},
		]);
		expect((await json(q.recent(300))).data).toEqual([
			{ cache: "hit", tier: "memory", requests: "10", duration_sum: 0.625 },
		]);
		expect((await json(q.recent(3600))).data.sort(byKeys("cache"))).toEqual([
			{ cache: "hit", tier: "memory", requests: "10", duration_sum: 0.625 },
			{ cache: "miss", tier: "origin", requests: "3", duration_sum: 1.5 },
		]);
		// Latest report per hub within 24 h (r1: 4, r2: 9), not weighted: a gauge, not a count.
		expect((await json(q.connections)).data).toEqual([{ hub_kind: "repo", sockets: 13, hubs: "2" }]);
		expect((await json(q.delivered)).data).toEqual([
			{ hub_kind: "repo", published: 1 + 1 + 1 + 5 * 2, delivered: 7 + 2 + 4 + 5 * 18 },
		]);
		expect((await json(q.ingested)).data).toEqual([{ type: "analysis_failed", accepted: 8, duplicates: 4 }]);
	});

	it("counts from the counter period's start: rows before it are left out", async () => {
		const name = dataset("period");
		const now = Date.now();
		const since = counterPeriodStart(now);
		expect(since % (COUNTER_PERIOD_DAYS * 86_400)).toBe(0);
		expect(since * 1000).toBeLessThanOrEqual(now);
		expect(now - since * 1000).toBeLessThan(COUNTER_PERIOD_DAYS * DAY);
		const point = (timestamp: number): Point => ({
			timestamp,
			indexes: ["ingest:analysis_failed"],
			blobs: ["ingest", "1", "analysis_failed"],
			doubles: [1, 0],
		});
		// One row a second before the period, one at its first second, one now.
		await sink(name, [point(since * 1000 - 1000), point(since * 1000), point(now)]);
		const rows = (await json(metricsQueries(name, since).ingested)).data;
		expect(rows).toEqual([{ type: "analysis_failed", accepted: 2, duplicates: 0 }]);
	});

	it("answers an empty dataset (never written) with no rows", async () => {
		const q = metricsQueries(dataset("empty"));
		for (const sql of [q.requestTotals, q.recent(60), q.connections, q.ingested, q.delivered]) {
			const res = await json(sql);
			expect(res.data).toEqual([]);
			expect(res.rows).toBe(0);
		}
	});
});

describe("AE SQL dialect", () => {
	// Fixed instants: 2026-01-15 10:30:05 UTC is a Thursday.
	const T0 = Date.UTC(2026, 0, 15, 10, 30, 5);
	const rows: [ms: number, blob1: string, double1: number, weight: number][] = [
		[T0, "alpha", 1, 1],
		[T0 + 1500, "alpha", 2, 3], // 10:30:06.5, stored as 10:30:06 (AE timestamps are whole seconds)
		[T0 + 20 * 60_000, "Beta", 10, 1],
		[T0 + 2 * HOUR, "gamma", 4, 2],
		[T0 - DAY, "it's\ttab\nline\\", 0.5, 1],
	];
	async function fixture(): Promise<string> {
		const name = dataset("dialect");
		await sink(
			name,
			rows.map(([timestamp, blob1, double1, sampleInterval]) => ({
				timestamp,
				sampleInterval,
				indexes: [blob1.slice(0, 5)],
				blobs: [blob1, "x"],
				doubles: [double1],
			})),
		);
		return name;
	}

	it("time functions, bucketing and DateTime output", async () => {
		const ds = await fixture();
		const res = await json(
			`SELECT timestamp, toStartOfInterval(timestamp, INTERVAL '15' MINUTE) AS q, toStartOfHour(timestamp) AS h,
				toStartOfDay(timestamp) AS d, toStartOfMonth(timestamp) AS m, toStartOfWeek(timestamp) AS w,
				toUnixTimestamp(timestamp) AS u, intDiv(toUInt32(timestamp), 300) * 300 AS b, toYear(timestamp) AS y,
				toDayOfWeek(timestamp) AS dow, toHour(timestamp) AS hr, toYYYYMM(timestamp) AS ym
			FROM ${ds} WHERE timestamp >= toDateTime('2026-01-15 10:30:05') AND timestamp < '2026-01-15 10:31:00'
			ORDER BY timestamp FORMAT JSON`,
		);
		expect(res.meta.map((m) => `${m.name}:${m.type}`)).toEqual([
			"timestamp:DateTime",
			"q:DateTime",
			"h:DateTime",
			"d:DateTime",
			"m:DateTime",
			"w:DateTime",
			"u:UInt32",
			"b:UInt64",
			"y:UInt16",
			"dow:UInt8",
			"hr:UInt8",
			"ym:UInt32",
		]);
		const common = {
			q: "2026-01-15 10:30:00",
			h: "2026-01-15 10:00:00",
			d: "2026-01-15 00:00:00",
			m: "2026-01-01 00:00:00",
			w: "2026-01-12 00:00:00",
			y: 2026,
			dow: 4,
			hr: 10,
			ym: 202601,
		};
		expect(res.data).toEqual([
			{
				timestamp: "2026-01-15 10:30:05",
				u: T0 / 1000,
				b: String(Math.floor(T0 / 300_000) * 300),
				...common,
			},
			{
				timestamp: "2026-01-15 10:30:06",
				u: T0 / 1000 + 1,
				b: String(Math.floor(T0 / 300_000) * 300),
				...common,
			},
		]);
		const hourly = await json(
			`SELECT toStartOfInterval(timestamp, INTERVAL '1' HOUR) AS hour, sum(_sample_interval) AS count
			FROM ${ds} WHERE timestamp > toDateTime(${T0 / 1000 - 60}) GROUP BY hour ORDER BY hour ASC`,
		);
		expect(hourly.data).toEqual([
			{ hour: "2026-01-15 10:00:00", count: "5" },
			{ hour: "2026-01-15 12:00:00", count: "2" },
		]);
	});

	it("aggregates, aliases, HAVING, ORDER BY, LIMIT/OFFSET and a subquery", async () => {
		const ds = await fixture();
		const grouped = await json(
			`SELECT lower(blob1) AS name, count() AS n, SUM(_sample_interval) AS weighted,
				SUM(_sample_interval * double1) / SUM(_sample_interval) AS mean, avg(double1) AS plain_avg,
				min(double1) AS lo, max(timestamp) AS last, argMin(double1, timestamp) AS first_value
			FROM ${ds} WHERE blob2 = 'x' AND double1 BETWEEN 1 AND 10
			GROUP BY name HAVING weighted >= 2 ORDER BY weighted DESC, name LIMIT 10`,
		);
		expect(grouped.meta.map((m) => m.type)).toEqual([
			"String",
			"UInt64",
			"UInt64",
			"Float64",
			"Float64",
			"Float64",
			"DateTime",
			"Float64",
		]);
		expect(grouped.data).toEqual([
			{
				name: "alpha",
				n: "2",
				weighted: "4",
				mean: (1 + 3 * 2) / 4,
				plain_avg: 1.5,
				lo: 1,
				last: "2026-01-15 10:30:06",
				first_value: 1,
			},
			{
				name: "gamma",
				n: "1",
				weighted: "2",
				mean: 4,
				plain_avg: 4,
				lo: 4,
				last: "2026-01-15 12:30:05",
				first_value: 4,
			},
		]);
		expect(grouped.rows_before_limit_at_least).toBe(2);

		const page = await json(`SELECT blob1, double1 FROM ${ds} ORDER BY double1 DESC LIMIT 2 OFFSET 1`);
		expect(page.data).toEqual([
			{ blob1: "gamma", double1: 4 },
			{ blob1: "alpha", double1: 2 },
		]);
		expect(page.rows).toBe(2);
		expect(page.rows_before_limit_at_least).toBe(5);
		const beyond = await json(`SELECT blob1 FROM ${ds} LIMIT 10, 5`);
		expect(beyond).toMatchObject({ data: [], rows: 0, rows_before_limit_at_least: 5 });

		const nested = await json(
			`SELECT count() AS groups, sum(total) AS weight, max(top) AS top FROM (
				SELECT blob1 AS probe, SUM(_sample_interval) AS total, max(double1) AS top FROM ${ds} GROUP BY probe
			) WHERE total > 1`,
		);
		expect(nested.data).toEqual([{ groups: "2", weight: "6", top: 4 }]);
	});

	it("operators, conditionals, strings, maths and weighted quantiles", async () => {
		const ds = await fixture();
		const res = await json(
			`SELECT
				count(DISTINCT blob1) AS distinct_names,
				countIf(blob1 IN ('alpha', 'gamma')) AS in_list,
				countIf(blob1 NOT IN ('alpha')) AS not_in,
				countIf(blob1 LIKE 'a%') AS like_a,
				countIf(blob1 ILIKE 'b%') AS ilike_b,
				countIf(NOT blob1 = 'alpha' AND (double1 > 3 OR double1 < 1)) AS logic,
				sum(if(double1 >= 2, 1, 0)) AS at_least_two,
				quantileExactWeighted(0.5)(double1, _sample_interval) AS p50,
				quantileExactWeighted(0.99)(double1, _sample_interval) AS p99,
				quantileExactWeighted(0)(double1, _sample_interval) AS p0,
				argMax(blob1, double1) AS biggest,
				sumIf(_sample_interval, blob1 = 'alpha') AS alpha_weight
			FROM ${ds}`,
		);
		expect(res.data).toEqual([
			{
				distinct_names: "4",
				in_list: "3",
				not_in: "3",
				like_a: "2",
				ilike_b: "1",
				logic: "3",
				at_least_two: "3",
				// Sorted by value with weights: 0.5×1, 1×1, 2×3, 4×2, 10×1 (total 8): the 4th unit is 2.
				p50: 2,
				p99: 10,
				p0: 0.5,
				biggest: "Beta",
				alpha_weight: "4",
			},
		]);
		expect(res.meta.find((m) => m.name === "at_least_two")?.type).toBe("UInt64");

		const scalars = await json(
			`SELECT 1 AS one, 1 + 2 AS three, 7 / 2 AS half, 7 % 3 AS rem, 1 / 0 AS inf, -2 * 3 AS neg,
				intDiv(7, 2) AS idiv, round(2.5) AS r, round(3.14159, 2) AS r2, floor(-1.5) AS f, ceil(1.2) AS c,
				upper('abc') AS up, length('héllo') AS len, 'a''b' AS quoted, 'x\\'y' AS escaped,
				if(1 > 2, 'yes', 'no') AS cond, 2 > 1 AS truth, toDateTime(0) AS epoch, true AS t`,
		);
		expect(scalars.meta.map((m) => `${m.name}:${m.type}`)).toEqual([
			"one:UInt8",
			"three:UInt16",
			"half:Float64",
			"rem:UInt8",
			"inf:Float64",
			"neg:Int16",
			"idiv:UInt8",
			"r:Float64",
			"r2:Float64",
			"f:Float64",
			"c:Float64",
			"up:String",
			"len:UInt64",
			"quoted:String",
			"escaped:String",
			"cond:String",
			"truth:UInt8",
			"epoch:DateTime",
			"t:UInt8",
		]);
		expect(scalars.data).toEqual([
			{
				one: 1,
				three: 3,
				half: 3.5,
				rem: 1,
				inf: null,
				neg: -6,
				idiv: 3,
				r: 2, // banker's rounding for floats, as ClickHouse
				r2: 3.14,
				f: -2,
				c: 2,
				up: "ABC",
				len: "5",
				quoted: "a'b",
				escaped: "x'y",
				cond: "no",
				truth: 1,
				epoch: "1970-01-01 00:00:00",
				t: 1,
			},
		]);
		const today = await json("SELECT today() AS d, now() AS n");
		const day = new Date().toISOString().slice(0, 10);
		expect(today.meta).toEqual([
			{ name: "d", type: "Date" },
			{ name: "n", type: "DateTime" },
		]);
		expect([day, new Date(Date.now() - 60_000).toISOString().slice(0, 10)]).toContain(today.data[0]?.d);
		expect(today.data[0]?.n).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
	});

	it("FORMAT JSON (default), JSONEachRow and TabSeparated", async () => {
		const ds = await fixture();
		const sql = `SELECT blob1 AS name, SUM(_sample_interval) AS n, max(double1) AS top, min(timestamp) AS first
			FROM ${ds} GROUP BY name ORDER BY name`;
		const asJson = await json(sql);
		expect(await (await query(`${sql} FORMAT JSON`)).json()).toEqual(asJson);
		expect(asJson.meta).toEqual([
			{ name: "name", type: "String" },
			{ name: "n", type: "UInt64" },
			{ name: "top", type: "Float64" },
			{ name: "first", type: "DateTime" },
		]);
		expect(asJson.rows).toBe(4);

		const eachRow = await query(`${sql} FORMAT JSONEachRow`);
		expect(eachRow.status).toBe(200);
		expect(await eachRow.text()).toBe(
			[
				`{"name":"Beta","n":"1","top":10,"first":"2026-01-15 10:50:05"}`,
				`{"name":"alpha","n":"4","top":2,"first":"2026-01-15 10:30:05"}`,
				`{"name":"gamma","n":"2","top":4,"first":"2026-01-15 12:30:05"}`,
				`{"name":"it's\\ttab\\nline\\\\","n":"1","top":0.5,"first":"2026-01-14 10:30:05"}`,
				"",
			].join("\n"),
		);

		const tsv = await query(`${sql} FORMAT TabSeparated`);
		expect(tsv.status).toBe(200);
		expect(tsv.headers.get("content-type")).toMatch(/^text\/tab-separated-values/);
		expect(await tsv.text()).toBe(
			[
				"Beta\t1\t10\t2026-01-15 10:50:05",
				"alpha\t4\t2\t2026-01-15 10:30:05",
				"gamma\t2\t4\t2026-01-15 12:30:05",
				"it\\'s\\ttab\\nline\\\\\t1\t0.5\t2026-01-14 10:30:05",
				"",
			].join("\n"),
		);
	});

	it("SHOW TABLES lists the datasets written", async () => {
		const a = dataset("show_a");
		const b = dataset("show_b");
		await sink(a, [{ timestamp: T0, indexes: [], blobs: [], doubles: [] }]);
		await sink(b, [{ timestamp: T0, indexes: [], blobs: [], doubles: [] }]);
		const res = await json("SHOW TABLES");
		expect(res.meta).toEqual([{ name: "dataset", type: "String" }]);
		const names = res.data.map((r) => r.dataset);
		expect(names).toEqual(expect.arrayContaining([a, b]));
		expect(names).toEqual([...names].sort());
		const eachRow = await (await query("SHOW TABLES FORMAT JSONEachRow")).text();
		expect(eachRow).toContain(`{"dataset":"${a}"}\n`);
		expect(await json("SHOW TIMEZONE")).toMatchObject({ data: [{ timezone: "Etc/UTC" }] });
	});
});

describe("AE SQL API errors and safety", () => {
	it("needs the bearer token (Cloudflare v4 envelope)", async () => {
		for (const auth of [null, "Bearer wrong", `Basic ${token}`, "Bearer "]) {
			const res = await query("SELECT 1", auth);
			expect(res.status).toBe(401);
			expect(await res.json()).toEqual({
				success: false,
				errors: [{ code: 10000, message: "Authentication error" }],
				messages: [],
				result: null,
			});
		}
		const ok = await query("SELECT 1 AS one", `bearer ${token}`);
		expect(ok.status).toBe(200);
		const get = await fetch(sqlUrl, { headers: { authorization: `Bearer ${token}` } });
		expect(get.status).toBe(405);
		await get.body?.cancel();
	});

	it("answers 422 for anything outside the dialect, never 5xx", async () => {
		const ds = dataset("garbage");
		await sink(ds, [{ timestamp: Date.now(), indexes: [], blobs: ["a"], doubles: [1] }]);
		const deep = `SELECT ${"(".repeat(500)}1${")".repeat(500)}`;
		const cases = [
			"",
			"   ",
			"SELEC 1",
			"SELECT",
			"SELECT FROM x",
			"DROP TABLE analytics_engine.data_points",
			"DELETE FROM x",
			"INSERT INTO x VALUES (1)",
			`SELECT * FROM ${ds} JOIN other ON 1 = 1`,
			`SELECT * FROM ${ds}, other`,
			"SELECT 1 UNION ALL SELECT 2",
			"SELECT pg_sleep(10)",
			"SELECT version()",
			"SELECT nonsense(1)",
			`SELECT blob21 FROM ${ds}`,
			`SELECT Blob1 FROM ${ds}`,
			`SELECT count() FROM ${ds} WHERE count() > 1`,
			`SELECT sum(sum(double1)) FROM ${ds}`,
			`SELECT blob1, count() FROM ${ds}`,
			`SELECT sum(blob1) FROM ${ds}`,
			"SELECT 'a' + 1",
			"SELECT 1 FORMAT CSV",
			"SELECT 'unterminated",
			"SELECT 1 /* open comment",
			"SELECT toDateTime('not a date')",
			"SELECT intDiv(1, 0)",
			"SELECT 99999999999999999999",
			"SELECT NULL",
			"SELECT 1 ||| 2",
			"SELECT $1",
			"SELECT x.blob1 FROM t",
			`SELECT blob1 AS a, blob2 AS a FROM ${ds}`,
			// As in ClickHouse, an alias shadows the column everywhere, WHERE included.
			`SELECT sum(double1) AS double1 FROM ${ds} WHERE double1 > 0`,
			"SELECT INTERVAL '1' DAY",
			"SELECT INTERVAL 'one' DAY",
			`SELECT toStartOfInterval(timestamp, 5) FROM ${ds}`,
			"SELECT toDateTime(0, 'America/New_York')",
			deep,
		];
		for (const sql of cases) await invalid(sql);
		expect(await invalid(`SELECT blob1 FROM ${ds} LIMIT 1 FORMAT XML`)).toContain("FORMAT");
	});

	it("refuses statement stacking and treats quoted text as data", async () => {
		const ds = dataset("inject");
		const payload = "'); DROP TABLE analytics_engine.data_points; --";
		await sink(ds, [
			{ timestamp: Date.now(), indexes: [], blobs: ["safe"], doubles: [1] },
			{ timestamp: Date.now(), indexes: [], blobs: [payload], doubles: [2] },
		]);
		const other = dataset("inject_other");
		await sink(other, [{ timestamp: Date.now(), indexes: [], blobs: ["secret"], doubles: [3] }]);

		await invalid("SELECT 1; DROP TABLE x");
		await invalid(`SELECT count() FROM ${ds}; DELETE FROM analytics_engine.data_points`);
		await invalid(`SELECT count() FROM ${ds} -- comment\n; SELECT 2`);
		await invalid(`SELECT count() FROM ${ds} WHERE blob1 = '' OR 1=1; DROP TABLE x --'`);

		const count = async (where: string) =>
			(await json(`SELECT count() AS n FROM ${ds} WHERE ${where}`)).data[0]?.n;
		expect(await count(`blob1 = 'x'' OR ''1''=''1'`)).toBe("0");
		expect(await count(`blob1 = 'x\\' OR 1=1 --'`)).toBe("0");
		// The payload is a value: it matches exactly the row that holds it, and nothing happens.
		expect(await count(`blob1 = '${payload.replaceAll("'", "''")}'`)).toBe("1");
		expect(await count(`blob1 = '${payload.replaceAll("'", "\\'")}'`)).toBe("1");
		// WHERE cannot widen the query to another dataset.
		expect(await count(`blob1 = 'safe' OR dataset = '${other}' OR 1 = 1`)).toBe("2");
		// A quoted table name is a name, not SQL.
		expect((await json(`SELECT count() AS n FROM "${ds}; DROP TABLE x"`)).data).toEqual([{ n: "0" }]);
		expect((await json(`SELECT count() AS n FROM \`${ds}\``)).data).toEqual([{ n: "2" }]);
		// Everything still there.
		expect((await json(`SELECT count() AS n FROM ${other}`)).data).toEqual([{ n: "1" }]);
	});
});

describe("AE sink", () => {
	it("validates batches (400) and routes", async () => {
		const post = (body: string) => fetch(sinkUrl, { method: "POST", body });
		const ok = { timestamp: Date.now(), indexes: ["i"], blobs: ["b"], doubles: [1] };
		const bad = [
			"not json",
			"[]",
			JSON.stringify({ points: [] }),
			JSON.stringify({ dataset: "has space", points: [] }),
			JSON.stringify({ dataset: "ok", points: {} }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, indexes: ["a", "b"] }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, indexes: ["x".repeat(97)] }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, blobs: Array(21).fill("b") }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, blobs: [1] }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, blobs: ["x".repeat(17_000)] }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, doubles: ["1"] }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, doubles: Array(21).fill(1) }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, timestamp: "now" }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, sampleInterval: 0 }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, sample_interval: 2 }] }),
			JSON.stringify({ dataset: "ok", points: [{ ...ok, blobs: ["nul\u0000"] }] }),
		];
		for (const body of bad) {
			const res = await post(body);
			const text = await res.text();
			expect(res.status, `${body.slice(0, 80)} -> ${text}`).toBe(400);
			expect(text).toMatch(/^invalid batch: /);
		}
		const name = dataset("sink");
		expect((await post(JSON.stringify({ dataset: name, points: [] }))).status).toBe(204);
		// Missing arrays are empty; unset blobs read '' and doubles 0, as in AE.
		await sink(name, [{ timestamp: Date.UTC(2026, 0, 1) } as Point]);
		expect(
			(await json(`SELECT index1, blob1, blob20, double1, double20, _sample_interval FROM ${name}`)).data,
		).toEqual([{ index1: "", blob1: "", blob20: "", double1: 0, double20: 0, _sample_interval: "1" }]);

		const get = await fetch(sinkUrl);
		expect(get.status).toBe(405);
		await get.body?.cancel();
		const missing = await fetch(sinkUrl.replace("/ingest", "/nope"), { method: "POST", body: "{}" });
		expect(missing.status).toBe(404);
		await missing.body?.cancel();
	});
});

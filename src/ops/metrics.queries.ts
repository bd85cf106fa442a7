// Every Analytics Engine SQL query the service sends, in one place (the dialect is the
// documented AE subset: one table, no JOIN/UNION, subqueries in FROM, if(), argMax, INTERVAL
// literals with a quoted number). Counts are always weighted by _sample_interval: each stored
// row stands for that many events once AE samples.
//
// Counters (requests, events, messages) count from the start of the current 30-day period (a
// fixed instant, so between scrapes they only grow), and start again at the next period: one
// counter reset a month, which Prometheus' rate() and increase() handle. A sliding 90-day window
// would make them dip whenever old data leaves it, and every dip reads as a huge false reset.
// The layout the queries read is in src/lib/metrics.ts.
import { LAYOUT_VERSION } from "../lib/metrics";

/** Prometheus' default histogram buckets (client_golang DefBuckets), in seconds. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Counters restart every COUNTER_PERIOD_DAYS (AE keeps data for three months). */
export const COUNTER_PERIOD_DAYS = 30;

/** The start of the counter period holding `nowMs`, in unix seconds. */
export function counterPeriodStart(nowMs: number): number {
	const period = COUNTER_PERIOD_DAYS * 86_400;
	return Math.floor(nowMs / 1000 / period) * period;
}
/** A hub that has reported nothing for this long is assumed gone (restarted or emptied). */
export const HUB_SILENCE_HOURS = 24;

/** Dataset names are identifiers in AE SQL; anything else is refused before a query is built. */
const DATASET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function assertDatasetName(name: string): string {
	if (!DATASET_NAME.test(name)) throw new Error(`invalid Analytics Engine dataset name: ${name}`);
	return name;
}

function kind(k: "request" | "hub" | "ingest"): string {
	return `blob1 = '${k}' AND blob2 = '${LAYOUT_VERSION}'`;
}

function bucketColumn(le: number, i: number): string {
	return `SUM(_sample_interval * if(double1 <= ${le}, 1, 0)) AS le_${i}`;
}

export interface MetricsQueries {
	/** Per method, route and status: requests, summed duration and the duration buckets. */
	requestTotals: string;
	/** Over the last `windowSeconds`: requests and summed duration per cache result and tier. */
	recent: (windowSeconds: number) => string;
	/** Open sockets per hub kind: the latest report of each hub heard from recently. */
	connections: string;
	/** Events accepted and duplicates per event type. */
	ingested: string;
	/** Events logged and messages sent per hub kind. */
	delivered: string;
}

/** `countersSince`: unix seconds the counters count from (default: this period's start). */
export function metricsQueries(
	dataset: string,
	countersSince: number = counterPeriodStart(Date.now()),
): MetricsQueries {
	const table = assertDatasetName(dataset);
	const retention = `timestamp >= toDateTime(${Math.floor(countersSince)})`;
	return {
		requestTotals: [
			"SELECT blob3 AS method, blob4 AS endpoint, blob5 AS status,",
			"SUM(_sample_interval) AS requests,",
			"SUM(_sample_interval * double1) AS duration_sum,",
			`${DURATION_BUCKETS.map(bucketColumn).join(", ")}`,
			`FROM ${table}`,
			`WHERE ${kind("request")} AND ${retention}`,
			"GROUP BY method, endpoint, status",
			"ORDER BY method, endpoint, status",
			"LIMIT 10000",
			"FORMAT JSON",
		].join("\n"),
		recent: (windowSeconds) =>
			[
				"SELECT blob6 AS cache, blob7 AS tier,",
				"SUM(_sample_interval) AS requests,",
				"SUM(_sample_interval * double1) AS duration_sum",
				`FROM ${table}`,
				`WHERE ${kind("request")} AND timestamp > now() - INTERVAL '${Math.max(1, Math.floor(windowSeconds))}' SECOND`,
				"GROUP BY cache, tier",
				"FORMAT JSON",
			].join("\n"),
		connections: [
			"SELECT hub_kind, SUM(sockets) AS sockets, count() AS hubs",
			"FROM (",
			"SELECT blob3 AS hub_kind, blob4 AS hub, argMax(double1, double4) AS sockets",
			`FROM ${table}`,
			`WHERE ${kind("hub")} AND timestamp > now() - INTERVAL '${HUB_SILENCE_HOURS}' HOUR`,
			"GROUP BY hub_kind, hub",
			")",
			"GROUP BY hub_kind",
			"FORMAT JSON",
		].join("\n"),
		ingested: [
			"SELECT blob3 AS type,",
			"SUM(_sample_interval * double1) AS accepted,",
			"SUM(_sample_interval * double2) AS duplicates",
			`FROM ${table}`,
			`WHERE ${kind("ingest")} AND ${retention}`,
			"GROUP BY type",
			"ORDER BY type",
			"FORMAT JSON",
		].join("\n"),
		delivered: [
			"SELECT blob3 AS hub_kind,",
			"SUM(_sample_interval * double2) AS published,",
			"SUM(_sample_interval * double3) AS delivered",
			`FROM ${table}`,
			`WHERE ${kind("hub")} AND ${retention}`,
			"GROUP BY hub_kind",
			"ORDER BY hub_kind",
			"FORMAT JSON",
		].join("\n"),
	};
}

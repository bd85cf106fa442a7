// Neon Postgres clients, created per request (a Neon Pool or Client cannot outlive the request
// that opened its socket on Workers).
//   createDb   — drizzle over Neon's HTTP driver: one round trip per query, nothing to close.
//                The default for reads: summary, search, leaderboards, health.
//   createPool — drizzle over a WebSocket Pool: interactive transactions and many statements
//                on one connection. The caller must `await close()` before the request ends.
import { neon, neonConfig, Pool } from "@neondatabase/serverless";
import { type SQL, sql } from "drizzle-orm";
import { drizzle as drizzleHttp } from "drizzle-orm/neon-http";
import { drizzle as drizzleWs } from "drizzle-orm/neon-serverless";
import * as schema from "./schema";

export type DbEnv = Pick<Env, "DATABASE_URL" | "NEON_HTTP_ENDPOINT" | "NEON_WS_PROXY">;

/**
 * Points the driver at the local stand-ins when NEON_HTTP_ENDPOINT / NEON_WS_PROXY are set.
 * neonConfig is module state, but every request of an isolate carries the same Env, so setting it
 * from Env is idempotent; in production both vars are empty and Neon's defaults stay in place.
 */
export function configureNeon(env: DbEnv): void {
	if (env.NEON_HTTP_ENDPOINT) neonConfig.fetchEndpoint = env.NEON_HTTP_ENDPOINT;
	if (env.NEON_WS_PROXY) {
		neonConfig.wsProxy = env.NEON_WS_PROXY;
		// The stand-in relays plain ws:// to a local server with trust auth, which rejects the
		// driver's pipelined cleartext password; Neon's own proxy accepts it.
		neonConfig.useSecureWebSocket = false;
		neonConfig.pipelineConnect = false;
	}
}

/** The connection string: a secret, so optional in the generated Env type. */
function databaseUrl(env: DbEnv): string {
	if (!env.DATABASE_URL) throw new Error("DATABASE_URL is not set");
	return env.DATABASE_URL;
}

export function createDb(env: DbEnv) {
	configureNeon(env);
	return drizzleHttp({ client: neon(databaseUrl(env)), schema });
}
export type Db = ReturnType<typeof createDb>;

export function createPool(env: DbEnv) {
	configureNeon(env);
	const pool = new Pool({ connectionString: databaseUrl(env) });
	// workerd reports a server-closed socket as an 'error' event; unhandled, it would crash the request.
	pool.on("error", (err: Error) =>
		console.warn(JSON.stringify({ msg: "neon pool error", error: err.message })),
	);
	const db = drizzleWs({ client: pool, schema });
	return { db, pool, close: () => pool.end() };
}
export type PoolDb = ReturnType<typeof createPool>["db"];

/**
 * The settings a request's read runs under, for its transaction only: no JIT (the search and
 * ranking statements' plans carry every branch, so their estimated cost passes jit_above_cost,
 * and compiling would cost 80-200 ms for a 5-20 ms query), and a statement_timeout, after which
 * Postgres cancels the statement itself (SQLSTATE 57014). The timeout is set below the cache's
 * origin timeout (5 s): a read the Worker gives up on is not left running, so a caller who makes
 * reads slow cannot stack copies of them in Postgres (issue 11).
 */
export function readSettings(statementTimeoutMs: number): SQL {
	const ms = String(Math.max(1, Math.floor(statementTimeoutMs)));
	return sql`SELECT set_config('jit', 'off', true), set_config('statement_timeout', ${ms}, true)`;
}

/**
 * One read statement under readSettings, in one HTTP request (a batch is one transaction, so the
 * settings apply to this statement only).
 */
export async function boundedRead<T extends Record<string, unknown>>(
	db: Db,
	query: SQL,
	statementTimeoutMs: number,
): Promise<{ rows: T[] }> {
	const [, result] = await db.batch([db.execute(readSettings(statementTimeoutMs)), db.execute<T>(query)]);
	return result;
}

// Neon Postgres clients, created per request (a Neon Pool or Client cannot outlive the request
// that opened its socket on Workers).
//   createDb   — drizzle over Neon's HTTP driver: one round trip per query, nothing to close.
//                The default for reads: summary, search, leaderboards, health.
//   createPool — drizzle over a WebSocket Pool: interactive transactions and many statements
//                on one connection. The caller must `await close()` before the request ends.
import { neon, neonConfig, Pool } from "@neondatabase/serverless";
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

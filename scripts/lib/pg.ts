// Node-side Postgres helpers shared by the dev stack, the test setup and the CLI scripts:
// database lifecycle and migrations, over node-postgres (the Worker itself uses the Neon driver).
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";

export const MIGRATIONS_DIR = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** The same server as `url`, but database `name`. */
export function withDatabase(url: string, name: string): string {
	const u = new URL(url);
	u.pathname = `/${name}`;
	return u.toString();
}

export function databaseName(url: string): string {
	const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
	if (!name) throw new Error(`no database name in ${redactUrl(url)}`);
	return name;
}

/** A URL with its password replaced, safe to print. */
export function redactUrl(url: string): string {
	const u = new URL(url);
	if (u.password) u.password = "***";
	return u.toString();
}

function quoteIdent(name: string): string {
	return `"${name.replaceAll('"', '""')}"`;
}

/** Creates database `name` on the server of `serverUrl` unless it exists. Returns whether it created it. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<boolean> {
	const client = new pg.Client({ connectionString: withDatabase(serverUrl, "postgres") });
	await client.connect();
	try {
		const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
		if (found.rowCount) return false;
		await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
		return true;
	} finally {
		await client.end();
	}
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
	const client = new pg.Client({ connectionString: withDatabase(serverUrl, "postgres") });
	await client.connect();
	try {
		await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
	} finally {
		await client.end();
	}
}

/** Applies drizzle/ migrations; already-applied ones are skipped (drizzle's journal table). */
export async function migrateDatabase(url: string): Promise<void> {
	const client = new pg.Client({ connectionString: url });
	await client.connect();
	try {
		// Quiet "already exists, skipping" notices from IF NOT EXISTS statements.
		await client.query("SET client_min_messages = warning");
		await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_DIR });
	} finally {
		await client.end();
	}
}

/** Resolves when a TCP server accepts on host:port, false after `timeoutMs`. */
export async function canConnect(host: string, port: number, timeoutMs = 500): Promise<boolean> {
	const net = await import("node:net");
	return new Promise((resolve) => {
		const socket = net.connect({ host, port });
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}

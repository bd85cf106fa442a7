// What the node-e2e tests share: the Worker bindings that point at this run's stack (from the
// global setup), tokens the Worker accepts, and a seeded repository id.
import { SignJWT } from "jose";
import pg from "pg";
import { inject } from "vitest";
import { withDatabase } from "../../scripts/lib/pg.ts";
import { stackBindings as bindingsFrom } from "../node/stack-bindings.ts";
import { wranglerVars } from "./worker.ts";

/** Bindings for TestWorker.start: this run's database, stand-ins, secrets and AE stand-in. */
export function stackBindings(): Record<string, string> {
	return bindingsFrom((key) => inject(key));
}

/** An HS256 token as `npm run token` issues it, valid for 15 minutes. */
export function e2eToken(role: "user" | "service", sub: string): Promise<string> {
	const vars = wranglerVars();
	return new SignJWT({ role })
		.setProtectedHeader({ alg: "HS256", typ: "JWT" })
		.setIssuer(vars.JWT_ISSUER ?? "")
		.setAudience(vars.JWT_AUDIENCE ?? "")
		.setSubject(sub)
		.setIssuedAt()
		.setExpirationTime("15m")
		.sign(new TextEncoder().encode(inject("jwtSecret")));
}

/** The most-starred repository of this run's database (streams refuse unknown ones). */
export async function someRepository(): Promise<string> {
	const server = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
	const name = decodeURIComponent(new URL(inject("databaseUrl")).pathname.slice(1));
	const client = new pg.Client({ connectionString: withDatabase(server, name) });
	await client.connect();
	try {
		const { rows } = await client.query<{ id: string }>(
			"SELECT id FROM repositories ORDER BY stars DESC, id LIMIT 1",
		);
		const id = rows[0]?.id;
		if (!id) throw new Error("the test database has no repositories");
		return id;
	} finally {
		await client.end();
	}
}

// Conformance of the local Neon stand-in (scripts/stack/neon-standin.ts + neon-http.ts), exercised
// from inside workerd through the production client factories (src/db/client.ts) and the raw
// @neondatabase/serverless API, over both SQL-over-HTTP and the WebSocket relay, plus raw wire checks.
// Seeded rows are only read; writes go to a temp table unique to this file, dropped afterwards.
// Every neon Pool/Client gets an 'error' listener (workerd reports a server-side close as
// "Network connection lost.") and is ended inside the test that created it.
import { env } from "cloudflare:workers";
import { Client, NeonDbError, neon, Pool } from "@neondatabase/serverless";
import { asc, eq, sql } from "drizzle-orm";
import { boolean, integer, jsonb, pgTable, serial, text } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { configureNeon, createDb, createPool } from "../src/db/client";
import { repositories } from "../src/db/schema";

const TABLE = `neon_standin_probe_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const probe = pgTable(TABLE, {
	id: serial("id").primaryKey(),
	k: text("k").notNull().unique(),
	i: integer("i"),
	flag: boolean("flag"),
	doc: jsonb("doc"),
});

const ERROR_KEYS = [
	"message",
	"code",
	"detail",
	"hint",
	"position",
	"internalPosition",
	"internalQuery",
	"severity",
	"where",
	"table",
	"column",
	"schema",
	"dataType",
	"constraint",
	"file",
	"line",
	"routine",
].sort();

const UNICODE = [
	"emoji 🎉 family 👩‍👩‍👧‍👦 flag 🇯🇵",
	"CJK 漢字 かな カナ 한국어 中文",
	"combining e\u0301 a\u0308 (NFD) vs é ä (NFC)",
	"RTL مرحبا עברית, zero-width\u200b joiner\u200d, BOM\ufeff",
	"quotes ' \" \\ and $1 and {braces,commas}",
];

function sqlHttp() {
	configureNeon(env);
	return neon(inject("databaseUrl"));
}

/** A raw WS Pool after configureNeon, with the 'error' listener workerd needs. */
function wsPool(): Pool {
	configureNeon(env);
	const pool = new Pool({ connectionString: inject("databaseUrl"), max: 3 });
	pool.on("error", () => {});
	return pool;
}

function wsClient(): Client {
	configureNeon(env);
	const client = new Client(inject("databaseUrl"));
	client.on("error", () => {});
	return client;
}

async function withPool<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
	const pool = wsPool();
	try {
		return await fn(pool);
	} finally {
		await pool.end();
	}
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
	try {
		await promise;
	} catch (err) {
		if (err instanceof Error) return err as Error & Record<string, unknown>;
		throw new Error(`rejected with a non-Error: ${String(err)}`);
	}
	throw new Error("expected the query to fail");
}

/** Timestamps/dates may come back as Date (pg-types) or text (drizzle's global mappers). */
function isoInstant(value: unknown): string {
	return new Date(value instanceof Date ? value : String(value)).toISOString();
}
function isoDate(value: unknown): string {
	return value instanceof Date ? value.toISOString().slice(0, 10) : String(value).slice(0, 10);
}
function bytes(value: unknown): number[] {
	if (!(value instanceof Uint8Array)) throw new Error(`not bytes: ${String(value)}`);
	return Array.from(value);
}

async function rawSql(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
	return fetch(env.NEON_HTTP_ENDPOINT, {
		method: "POST",
		headers: { "Neon-Connection-String": inject("databaseUrl"), ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

beforeAll(async () => {
	const q = sqlHttp();
	await q.query(
		`CREATE TABLE ${TABLE} (id serial PRIMARY KEY, k text NOT NULL UNIQUE, i integer, flag boolean, doc jsonb,
		 big bigint, num numeric, f double precision, u uuid, ts timestamptz, d date, arr text[], bin bytea, t text)`,
	);
});

afterAll(async () => {
	await sqlHttp().query(`DROP TABLE IF EXISTS ${TABLE}`);
});

// Values sent as parameters, stored, and read back; the same over both transports.
const uuid = crypto.randomUUID();
const row = {
	i: 2147483647,
	big: "9223372036854775807",
	num: "12345678901234567890.000000000123",
	f: -1.25e-10,
	flag: true,
	t: UNICODE.join(" | "),
	u: uuid,
	ts: new Date("2024-02-29T23:59:58.123Z"),
	d: "2024-02-29",
	doc: { a: 1, nested: { b: [1, "x", null] }, s: "🎉 漢字" },
	arr: ["a", "b,c", 'q"uote', "back\\slash", null, "ü 🎉", ""],
	bin: new Uint8Array([0, 1, 2, 127, 128, 254, 255]),
};
const INSERT = `INSERT INTO ${TABLE} (k, i, big, num, f, flag, t, u, ts, d, doc, arr, bin)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *`;
const insertParams = (k: string) => [
	k,
	row.i,
	row.big,
	row.num,
	row.f,
	row.flag,
	row.t,
	row.u,
	row.ts,
	row.d,
	row.doc,
	row.arr,
	row.bin,
];

function expectRoundTrip(got: Record<string, unknown> | undefined): void {
	expect(got).toBeDefined();
	if (!got) return;
	expect(got.i).toBe(row.i);
	expect(got.big).toBe(row.big); // int8 stays a string: no precision loss
	expect(got.num).toBe(row.num);
	expect(got.f).toBe(row.f);
	expect(got.flag).toBe(true);
	expect(got.t).toBe(row.t);
	expect(got.u).toBe(row.u);
	expect(isoInstant(got.ts)).toBe(row.ts.toISOString());
	expect(isoDate(got.d)).toBe(row.d);
	expect(got.doc).toEqual(row.doc);
	expect(got.arr).toEqual(row.arr);
	expect(bytes(got.bin)).toEqual(Array.from(row.bin));
}

const NULL_SELECT = `SELECT $1::int AS i, $2::bigint AS big, $3::numeric AS num, $4::float8 AS f, $5::boolean AS flag,
	$6::text AS t, $7::uuid AS u, $8::timestamptz AS ts, $9::date AS d, $10::jsonb AS doc, $11::text[] AS arr,
	$12::bytea AS bin`;
const NULLS = Array.from({ length: 12 }, () => null);

describe("parameter and result types", () => {
	it("HTTP: every type round-trips through a table", async () => {
		const q = sqlHttp();
		const [inserted] = await q.query(INSERT, insertParams("types-http"));
		expectRoundTrip(inserted);
		const [selected] = await q.query(`SELECT * FROM ${TABLE} WHERE k = $1`, ["types-http"]);
		expectRoundTrip(selected);
	});

	it("WebSocket: every type round-trips through a table", async () => {
		await withPool(async (pool) => {
			const inserted = await pool.query(INSERT, insertParams("types-ws"));
			expectRoundTrip(inserted.rows[0]);
			const selected = await pool.query(`SELECT * FROM ${TABLE} WHERE k = $1`, ["types-ws"]);
			expectRoundTrip(selected.rows[0]);
		});
	});

	it("both transports return identical rows for the same data", async () => {
		const viaHttp = await sqlHttp().query(`SELECT * FROM ${TABLE} WHERE k LIKE 'types-%' ORDER BY k`);
		const viaWs = await withPool((pool) =>
			pool.query(`SELECT * FROM ${TABLE} WHERE k LIKE 'types-%' ORDER BY k`),
		);
		expect(viaHttp).toHaveLength(2);
		const normalize = (r: Record<string, unknown>) => ({
			...r,
			id: 0,
			k: "",
			ts: isoInstant(r.ts),
			d: isoDate(r.d),
			bin: bytes(r.bin),
		});
		expect(viaHttp.map(normalize)).toEqual(viaWs.rows.map(normalize));
	});

	it("NULL parameters of every type come back as null (HTTP and WebSocket)", async () => {
		const [viaHttp] = await sqlHttp().query(NULL_SELECT, NULLS);
		const viaWs = await withPool((pool) => pool.query(NULL_SELECT, NULLS));
		for (const got of [viaHttp, viaWs.rows[0]]) {
			expect(got).toBeDefined();
			expect(Object.values(got ?? {})).toEqual(NULLS);
		}
	});

	it("NULLs inside results, arrays and JSON survive", async () => {
		const query = `SELECT NULL::text AS a, ARRAY[NULL, 'x']::text[] AS b, '{"n": null}'::jsonb AS c, '' AS empty`;
		const [viaHttp] = await sqlHttp().query(query);
		const viaWs = await withPool((pool) => pool.query(query));
		for (const got of [viaHttp, viaWs.rows[0]]) {
			expect(got).toEqual({ a: null, b: [null, "x"], c: { n: null }, empty: "" });
		}
	});

	it("tagged-template HTTP queries and scalar parameter types", async () => {
		const q = sqlHttp();
		const big = "9007199254740993"; // 2^53 + 1: not representable as a JS number
		const rows = await q`SELECT ${41}::int + 1 AS n, ${big}::bigint AS big, ${"1.10"}::numeric AS num,
			${0.1}::float8 AS f, ${false}::boolean AS b, pg_typeof(${uuid}::uuid)::text AS ty`;
		expect(rows).toEqual([{ n: 42, big, num: "1.10", f: 0.1, b: false, ty: "uuid" }]);
	});
});

describe("unicode", () => {
	for (const transport of ["HTTP", "WebSocket"] as const) {
		it(`${transport}: text, identifiers and JSON round-trip byte-exactly`, async () => {
			const query = `SELECT $1::text AS s, char_length($1::text) AS n, octet_length($1::text) AS o,
				$2::jsonb AS j, 1 AS "列 🎉 é"`;
			for (const s of UNICODE) {
				const params = [s, JSON.stringify({ s })];
				const got =
					transport === "HTTP"
						? (await sqlHttp().query(query, params))[0]
						: (await withPool((pool) => pool.query(query, params))).rows[0];
				expect(got).toEqual({
					s,
					n: [...s].length,
					o: new TextEncoder().encode(s).length,
					j: { s },
					"列 🎉 é": 1,
				});
				// NFD stays NFD: nothing normalizes on the way.
				expect(String(got?.s).normalize("NFC") === s).toBe(s.normalize("NFC") === s);
			}
		});
	}
});

describe("errors carry SQLSTATE and the stand-in keeps serving", () => {
	const cases = [
		{
			name: "unique violation",
			code: "23505",
			query: `INSERT INTO ${TABLE} (k) VALUES ($1), ($1)`,
			params: ["dup"],
		},
		{ name: "undefined table", code: "42P01", query: "SELECT * FROM no_such_table_neon_standin", params: [] },
		{ name: "invalid input", code: "22P02", query: "SELECT $1::int", params: ["ü-not-a-number"] },
		{ name: "division by zero", code: "22012", query: "SELECT 1 / $1::int", params: ["0"] },
	];
	for (const c of cases) {
		it(`HTTP: ${c.name} -> ${c.code}`, async () => {
			const q = sqlHttp();
			const err = await rejection(q.query(c.query, c.params));
			expect(err).toBeInstanceOf(NeonDbError);
			expect(err.code).toBe(c.code);
			expect(err.severity).toBe("ERROR");
			expect(await q.query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
		});
		it(`WebSocket: ${c.name} -> ${c.code}`, async () => {
			await withPool(async (pool) => {
				const err = await rejection(pool.query(c.query, c.params));
				expect(err.code).toBe(c.code);
				// Same pool, possibly the same connection: still usable.
				expect((await pool.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
			});
		});
	}

	it("error details: constraint, table, position", async () => {
		const q = sqlHttp();
		await q.query(`INSERT INTO ${TABLE} (k) VALUES ('detail-1')`);
		const dup = await rejection(q.query(`INSERT INTO ${TABLE} (k) VALUES ('detail-1')`));
		expect(dup.constraint).toBe(`${TABLE}_k_key`);
		expect(dup.table).toBe(TABLE);
		expect(dup.schema).toBe("public");
		expect(String(dup.detail)).toContain("detail-1");
		const missing = await rejection(q.query("SELECT * FROM no_such_table_neon_standin"));
		expect(missing.position).toBe("15");
	});

	it("HTTP runs every query on the extended protocol: a multi-statement string is a syntax error", async () => {
		const err = await rejection(sqlHttp().query("SELECT 1; SELECT 2"));
		expect(err.code).toBe("42601");
	});

	it("HTTP requests share no session state (SET, temp tables)", async () => {
		const q = sqlHttp();
		for (let n = 0; n < 5; n++) {
			await q.query("SET statement_timeout = '1234ms'");
			await q.query("CREATE TEMP TABLE IF NOT EXISTS leak_probe (x int)");
		}
		const seen = await Promise.all(
			Array.from({ length: 8 }, () =>
				q.query("SELECT current_setting('statement_timeout') AS t, to_regclass('pg_temp.leak_probe') AS tbl"),
			),
		);
		for (const [r] of seen) expect(r).toEqual({ t: "0", tbl: null });
	});

	it("a connection left inside a transaction is never handed out again", async () => {
		const q = sqlHttp();
		await q.query("BEGIN");
		await q.query("BEGIN");
		await new Promise((resolve) => setTimeout(resolve, 60));
		const states = await Promise.all(
			Array.from({ length: 12 }, () =>
				q.query(
					"SELECT clock_timestamp() - now() < interval '40 ms' AS fresh, txid_current_if_assigned() AS x",
				),
			),
		);
		// On a connection still inside the leftover BEGIN, now() would be frozen at BEGIN time.
		for (const [r] of states) expect(r).toEqual({ fresh: true, x: null });
	});

	it("concurrent HTTP requests each get their own answer", async () => {
		const q = sqlHttp();
		const results = await Promise.all(
			Array.from({ length: 40 }, (_, n) =>
				q.query("SELECT $1::int * 2 AS v, pg_sleep(0.005)::text AS s", [n]),
			),
		);
		expect(results.map(([r]) => r?.v)).toEqual(Array.from({ length: 40 }, (_, n) => n * 2));
	});
});

describe("HTTP batch transactions (sql.transaction)", () => {
	it("commits every statement atomically", async () => {
		const q = sqlHttp();
		const [a, b, count] = await q.transaction([
			q`INSERT INTO ${q.unsafe(TABLE)} (k, i) VALUES ('batch-ok-1', 1) RETURNING k`,
			q`INSERT INTO ${q.unsafe(TABLE)} (k, i) VALUES ('batch-ok-2', 2) RETURNING k`,
			q`SELECT count(*)::int AS n FROM ${q.unsafe(TABLE)} WHERE k LIKE 'batch-ok-%'`,
		]);
		expect(a).toEqual([{ k: "batch-ok-1" }]);
		expect(b).toEqual([{ k: "batch-ok-2" }]);
		expect(count).toEqual([{ n: 2 }]);
		expect(await q.query(`SELECT k FROM ${TABLE} WHERE k LIKE 'batch-ok-%' ORDER BY k`)).toEqual([
			{ k: "batch-ok-1" },
			{ k: "batch-ok-2" },
		]);
	});

	it("rolls back entirely when a later statement fails", async () => {
		const q = sqlHttp();
		const err = await rejection(
			q.transaction([
				q`INSERT INTO ${q.unsafe(TABLE)} (k) VALUES ('batch-rb-1')`,
				q`INSERT INTO ${q.unsafe(TABLE)} (k) VALUES ('batch-rb-2')`,
				q`INSERT INTO ${q.unsafe(TABLE)} (k) VALUES ('batch-rb-1')`,
			]),
		);
		expect(err.code).toBe("23505");
		expect(await q.query(`SELECT k FROM ${TABLE} WHERE k LIKE 'batch-rb-%'`)).toEqual([]);
	});

	it("honours isolation level, read-only and deferrable", async () => {
		const q = sqlHttp();
		const [iso, ro, def] = await q.transaction(
			[q`SHOW transaction_isolation`, q`SHOW transaction_read_only`, q`SHOW transaction_deferrable`],
			{ isolationLevel: "Serializable", readOnly: true, deferrable: true },
		);
		expect([iso, ro, def]).toEqual([
			[{ transaction_isolation: "serializable" }],
			[{ transaction_read_only: "on" }],
			[{ transaction_deferrable: "on" }],
		]);
		const err = await rejection(
			q.transaction([q`INSERT INTO ${q.unsafe(TABLE)} (k) VALUES ('batch-ro')`], { readOnly: true }),
		);
		expect(err.code).toBe("25006");
		const [plain] = await q.transaction([q`SHOW transaction_isolation`]);
		expect(plain).toEqual([{ transaction_isolation: "read committed" }]);
	});

	it("drizzle db.batch() over neon-http is one transaction", async () => {
		const db = createDb(env);
		const [ins, sel] = await db.batch([
			db
				.insert(probe)
				.values({ k: "dz-batch-1", i: 7, flag: false, doc: { x: [1] } })
				.returning(),
			db.select({ k: probe.k }).from(probe).where(eq(probe.k, "dz-batch-1")),
		]);
		expect(ins[0]).toMatchObject({ k: "dz-batch-1", i: 7, flag: false, doc: { x: [1] } });
		expect(sel).toEqual([{ k: "dz-batch-1" }]);
		await expect(
			db.batch([db.insert(probe).values({ k: "dz-batch-2" }), db.insert(probe).values({ k: "dz-batch-1" })]),
		).rejects.toThrow();
		expect(await db.select().from(probe).where(eq(probe.k, "dz-batch-2"))).toEqual([]);
	});
});

describe("WebSocket interactive transactions (drizzle db.transaction)", () => {
	it("commits", async () => {
		const { db, close } = createPool(env);
		try {
			const id = await db.transaction(async (tx) => {
				const [r] = await tx.insert(probe).values({ k: "tx-commit", i: 1 }).returning({ id: probe.id });
				await tx.update(probe).set({ i: 2 }).where(eq(probe.k, "tx-commit"));
				return r?.id;
			});
			expect(id).toBeTypeOf("number");
		} finally {
			await close();
		}
		// Visible from the other transport once committed.
		expect(await createDb(env).select({ i: probe.i }).from(probe).where(eq(probe.k, "tx-commit"))).toEqual([
			{ i: 2 },
		]);
	});

	it("rolls back on a thrown error, tx.rollback() and a database error", async () => {
		const { db, close } = createPool(env);
		try {
			await expect(
				db.transaction(async (tx) => {
					await tx.insert(probe).values({ k: "tx-rb-throw" });
					throw new Error("boom");
				}),
			).rejects.toThrow("boom");
			await expect(
				db.transaction(async (tx) => {
					await tx.insert(probe).values({ k: "tx-rb-explicit" });
					tx.rollback();
				}),
			).rejects.toThrow();
			const dbErr = await rejection(
				db.transaction(async (tx) => {
					await tx.insert(probe).values({ k: "tx-rb-db" });
					await tx.insert(probe).values({ k: "tx-rb-db" });
				}),
			);
			expect(JSON.stringify({ code: dbErr.code, cause: dbErr.cause })).toContain("23505");
			// The pool still works after the rolled-back transactions.
			expect(await db.select({ k: probe.k }).from(probe).where(sql`${probe.k} LIKE 'tx-rb-%'`)).toEqual([]);
		} finally {
			await close();
		}
	});

	it("isolates uncommitted writes from other connections", async () => {
		await withPool(async (pool) => {
			const a = await pool.connect();
			try {
				await a.query("BEGIN");
				await a.query(`INSERT INTO ${TABLE} (k) VALUES ('tx-isolated')`);
				const outside = await sqlHttp().query(`SELECT k FROM ${TABLE} WHERE k = 'tx-isolated'`);
				expect(outside).toEqual([]);
				await a.query("ROLLBACK");
			} finally {
				a.release();
			}
		});
	});
});

describe("server-side connection close", () => {
	it("a terminated Client gets an error, ends, and a new connection works", async () => {
		const client = wsClient();
		const errors: Error[] = [];
		client.on("error", (err: Error) => errors.push(err));
		await client.connect();
		const pid = (await client.query("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
		const err = await rejection(client.query("SELECT pg_terminate_backend(pg_backend_pid())"));
		expect(err.code ?? err.message).toMatch(/57P01|terminat|Connection|closed/i);
		await client.end();

		const fresh = wsClient();
		await fresh.connect();
		try {
			const r = await fresh.query("SELECT pg_backend_pid() AS pid, 1 AS ok");
			expect(r.rows[0]?.ok).toBe(1);
			expect(r.rows[0]?.pid).not.toBe(pid);
		} finally {
			await fresh.end();
		}
	});

	it("a Pool drops a connection killed from outside and keeps serving", async () => {
		await withPool(async (pool) => {
			const pid = (await pool.query("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
			// Kill the pool's idle connection from a different session (the HTTP side).
			await sqlHttp().query("SELECT pg_terminate_backend($1::int)", [pid]);
			await new Promise((resolve) => setTimeout(resolve, 100));
			const r = await pool.query("SELECT pg_backend_pid() AS pid");
			expect(r.rows[0]?.pid).not.toBe(pid);
		});
	});

	it("HTTP keeps working after its pooled connection is killed", async () => {
		// A private application_name gives this test its own stand-in pool, so killing those
		// backends cannot hit other test files' in-flight HTTP queries.
		configureNeon(env);
		const url = new URL(inject("databaseUrl"));
		const appName = `neon-standin-kill-${crypto.randomUUID().slice(0, 8)}`;
		url.searchParams.set("application_name", appName);
		const q = neon(url.toString());
		expect(await q.query("SELECT current_setting('application_name') AS a")).toEqual([{ a: appName }]);
		const pids = await Promise.all(
			Array.from({ length: 4 }, () => q.query("SELECT pg_backend_pid() AS pid")),
		);
		await withPool((pool) =>
			pool.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [
				pids.map(([r]) => r?.pid),
			]),
		);
		await new Promise((resolve) => setTimeout(resolve, 100));
		for (let n = 0; n < 6; n++) expect(await q.query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
	});
});

describe("drizzle over the real schema", () => {
	it("selects a seeded repository by id identically over HTTP and WebSocket", async () => {
		const http = createDb(env);
		const [first] = await http
			.select({ id: repositories.id })
			.from(repositories)
			.orderBy(asc(repositories.id))
			.limit(1);
		expect(first?.id).toMatch(/^[0-9a-f-]{36}$/);
		const id = first?.id ?? "";
		const viaHttp = await http.select().from(repositories).where(eq(repositories.id, id));
		const { db, close } = createPool(env);
		try {
			const viaWs = await db.select().from(repositories).where(eq(repositories.id, id));
			expect(viaHttp).toHaveLength(1);
			expect(viaWs).toEqual(viaHttp);
			const repo = viaHttp[0];
			expect(repo?.topics).toBeInstanceOf(Array);
			expect(repo?.stars).toBeTypeOf("number");
			expect(repo?.createdAt).toBeTypeOf("string");

			const countQuery = sql<number>`count(*)::int`;
			const [httpCount] = await http.select({ n: countQuery }).from(repositories);
			const [wsCount] = await db.select({ n: countQuery }).from(repositories);
			expect(httpCount?.n).toBeGreaterThan(0);
			expect(wsCount).toEqual(httpCount);
		} finally {
			await close();
		}
	});

	it("db.execute returns neon-http full results (command, rowCount, fields)", async () => {
		const res = await createDb(env).execute(sql`SELECT id FROM repositories LIMIT 3`);
		expect(res.command).toBe("SELECT");
		expect(res.rowCount).toBe(res.rows.length);
		expect(res.fields.map((f) => f.name)).toEqual(["id"]);
	});
});

describe("raw wire", () => {
	it("success body: Neon's shape, raw text values, CORS", async () => {
		const res = await rawSql(
			{
				query: "SELECT 1::int AS x, NULL::text AS n, true AS b, '\\x01ff'::bytea AS bin, $1 AS p",
				params: ["é"],
			},
			{ "Neon-Raw-Text-Output": "true", "Neon-Array-Mode": "true" },
		);
		expect(res.status).toBe(200);
		expect(res.headers.get("access-control-allow-origin")).toBe("*");
		expect(res.headers.get("content-type")).toContain("application/json");
		const body = (await res.json()) as Record<string, unknown>;
		expect(Object.keys(body).sort()).toEqual(["command", "fields", "rowAsArray", "rowCount", "rows"]);
		expect(body.rows).toEqual([["1", null, "t", "\\x01ff", "é"]]);
		expect(body.command).toBe("SELECT");
		expect(body.rowCount).toBe(1);
		expect(body.rowAsArray).toBe(true);
		const fields = body.fields as Record<string, unknown>[];
		expect(fields[0]).toEqual({
			name: "x",
			dataTypeID: 23,
			tableID: 0,
			columnID: 0,
			dataTypeSize: 4,
			dataTypeModifier: -1,
			format: "text",
		});
	});

	it("batch body: results per query; command tags without a count give rowCount null", async () => {
		const res = await rawSql(
			{
				queries: [
					{ query: "CREATE TEMP TABLE wire_probe (x int)", params: [] },
					{ query: "INSERT INTO wire_probe VALUES (1), (2)", params: [] },
					{ query: "SELECT x FROM wire_probe ORDER BY x", params: [] },
				],
			},
			{
				"Neon-Array-Mode": "true",
				"Neon-Raw-Text-Output": "true",
				"Neon-Batch-Isolation-Level": "RepeatableRead",
			},
		);
		expect(res.status).toBe(200);
		expect(res.headers.get("neon-batch-isolation-level")).toBe("RepeatableRead");
		const { results } = (await res.json()) as { results: Record<string, unknown>[] };
		expect(results.map((r) => [r.command, r.rowCount])).toEqual([
			["CREATE", null],
			["INSERT", 2],
			["SELECT", 2],
		]);
		expect(results[0]?.fields).toEqual([]);
		expect(results[2]?.rows).toEqual([["1"], ["2"]]);
	});

	it("SQL error: 400 with exactly the 17 error keys", async () => {
		const res = await rawSql({ query: "SELECT 1 / 0", params: [] });
		expect(res.status).toBe(400);
		expect(res.headers.get("access-control-allow-origin")).toBe("*");
		const body = (await res.json()) as Record<string, unknown>;
		expect(Object.keys(body).sort()).toEqual(ERROR_KEYS);
		expect(body).toMatchObject({ message: "division by zero", code: "22012", severity: "ERROR" });
		for (const v of Object.values(body)) expect(v === null || typeof v === "string").toBe(true);
	});

	const badRequests: [string, () => Promise<Response>][] = [
		["bad JSON body", () => rawSql("{not json")],
		["non-object JSON body", () => rawSql("[1,2]")],
		["query not a string", () => rawSql({ query: 42 })],
		["params not an array", () => rawSql({ query: "SELECT 1", params: "x" })],
		[
			"missing Neon-Connection-String",
			() => fetch(env.NEON_HTTP_ENDPOINT, { method: "POST", body: JSON.stringify({ query: "SELECT 1" }) }),
		],
		[
			"connection string not a URL",
			() => rawSql({ query: "SELECT 1" }, { "Neon-Connection-String": "nope" }),
		],
		[
			"connection string without a database",
			() =>
				rawSql(
					{ query: "SELECT 1" },
					{ "Neon-Connection-String": "postgresql://postgres:x@db.localtest.me" },
				),
		],
		[
			"invalid isolation level",
			() => rawSql({ queries: [{ query: "SELECT 1" }] }, { "Neon-Batch-Isolation-Level": "Chaos" }),
		],
	];
	for (const [name, send] of badRequests) {
		it(`${name} -> 400 error JSON with code ""`, async () => {
			const res = await send();
			expect(res.status).toBe(400);
			const body = (await res.json()) as Record<string, unknown>;
			expect(Object.keys(body).sort()).toEqual(ERROR_KEYS);
			expect(body.code).toBe("");
			expect(body.message).toBeTypeOf("string");
		});
	}

	it("unknown database -> 400 with SQLSTATE 3D000", async () => {
		const url = new URL(inject("databaseUrl"));
		url.pathname = "/no_such_database_neon_standin";
		const res = await rawSql({ query: "SELECT 1" }, { "Neon-Connection-String": url.toString() });
		expect(res.status).toBe(400);
		expect(((await res.json()) as { code: string }).code).toBe("3D000");
	});

	it("a body over the size limit -> 413", async () => {
		const res = await rawSql({ query: `SELECT '${"x".repeat(11 * 1024 * 1024)}'` });
		expect(res.status).toBe(413);
		expect(await sqlHttp().query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
	});

	it("WebSocket relay: raw bytes both ways, closed with 1000 when Postgres hangs up", async () => {
		const ws = new WebSocket(`ws://${env.NEON_WS_PROXY}?address=db.localtest.me:5432`);
		ws.binaryType = "arraybuffer";
		const received: Uint8Array[] = [];
		const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
		ws.addEventListener("error", () => {}); // workerd: "Network connection lost." after a server close
		ws.addEventListener("message", (e) => {
			if (e.data instanceof ArrayBuffer) received.push(new Uint8Array(e.data));
		});
		await new Promise((resolve, reject) => {
			ws.addEventListener("open", resolve);
			ws.addEventListener("error", reject);
		});
		// A startup packet with protocol version 9.9: Postgres answers ErrorResponse ('E') and closes.
		const startup = new Uint8Array([0, 0, 0, 8, 0, 9, 0, 9]);
		ws.send(startup);
		const started = Date.now();
		expect(await closed).toBe(1000);
		expect(Date.now() - started).toBeLessThan(2000);
		const all = received.flatMap((chunk) => Array.from(chunk));
		expect(String.fromCharCode(all[0] ?? 0)).toBe("E");
		expect(new TextDecoder().decode(new Uint8Array(all))).toContain("0A000");
	});
});

// Fault injection (neon-standin.ts header): faults are registered per connection-string host on
// the stand-in's control endpoint, so each test breaks only a host of its own; the default host
// every other test file uses must keep working throughout.
describe("fault injection, scoped by host", () => {
	const CONTROL = new URL("/__faults", env.NEON_HTTP_ENDPOINT).toString();

	/** A connection string to the same database under a host of this test's own. */
	function faultHost(): { host: string; url: string } {
		const host = `fault-${crypto.randomUUID().slice(0, 8)}.localtest.me`;
		const url = new URL(inject("databaseUrl"));
		url.hostname = host;
		return { host, url: url.toString() };
	}

	async function control(
		method: string,
		body?: unknown,
		query = "",
	): Promise<{ status: number; json: unknown }> {
		const res = await fetch(`${CONTROL}${query}`, {
			method,
			headers: { "content-type": "application/json" },
			...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
		});
		return { status: res.status, json: await res.json() };
	}

	async function setFault(scope: string, mode: string, delayMs?: number): Promise<void> {
		const { status, json } = await control("POST", { scope, mode, delayMs });
		expect(status, JSON.stringify(json)).toBe(200);
	}

	async function clearFault(scope: string): Promise<void> {
		expect((await control("DELETE", undefined, `?scope=${encodeURIComponent(scope)}`)).status).toBe(200);
	}

	function clientFor(url: string): Client {
		configureNeon(env);
		const client = new Client(url);
		client.on("error", () => {});
		return client;
	}

	/** Settles with "pending" if `promise` has not settled within `ms`. */
	function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
		promise.catch(() => undefined);
		return Promise.race([promise, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);
	}

	it("control endpoint: registers, lists and clears faults; refuses malformed ones", async () => {
		const { host } = faultHost();
		const scope = host.toUpperCase();
		expect(await control("POST", { scope, mode: "delay", delayMs: 5 })).toEqual({
			status: 200,
			json: { scope, mode: "delay", delayMs: 5 },
		});
		const listed = (await control("GET")).json as { faults: { scope: string }[] };
		expect(listed.faults).toContainEqual({ scope: host, mode: "delay", delayMs: 5 });
		for (const bad of [
			"not json",
			[],
			{ mode: "fail" },
			{ scope: "", mode: "fail" },
			{ scope: host, mode: "explode" },
			{ scope: host, mode: "delay" },
			{ scope: host, mode: "delay", delayMs: -1 },
			{ scope: host, mode: "delay", delayMs: 1.5 },
		]) {
			const res = await control("POST", bad);
			expect(res.status, JSON.stringify(bad)).toBe(400);
			expect(res.json).toEqual({ error: expect.any(String) });
		}
		expect((await control("DELETE")).status).toBe(400);
		expect((await control("PUT", {})).status).toBe(405);
		expect(await control("DELETE", undefined, `?scope=${host}`)).toEqual({
			status: 200,
			json: { scope: host, deleted: true },
		});
		expect((await control("DELETE", undefined, `?scope=${host}`)).json).toMatchObject({ deleted: false });
	});

	it("control refuses what a web page could send: no JSON content type (415), an Origin (403)", async () => {
		const body = JSON.stringify({ scope: "from-a-page", mode: "none" });
		const plain = await fetch(CONTROL, { method: "POST", headers: { "content-type": "text/plain" }, body });
		expect(plain.status).toBe(415);
		await plain.body?.cancel();
		const cross = await fetch(CONTROL, {
			method: "POST",
			headers: { "content-type": "application/json", origin: "https://evil.example" },
			body,
		});
		expect(cross.status).toBe(403);
		await cross.body?.cancel();
		expect(JSON.stringify((await control("GET")).json)).not.toContain("from-a-page");
	});

	it("HTTP fail: 503 with Neon's error JSON for that host only; cleared, it works again", async () => {
		const { host, url } = faultHost();
		configureNeon(env);
		await setFault(host, "fail");
		try {
			const err = await rejection(neon(url).query("SELECT 1 AS ok"));
			expect(err).toBeInstanceOf(NeonDbError);
			expect(err.message).toContain("HTTP status 503");
			expect(err.message).toContain("Couldn't connect to compute node");
			const raw = await fetch(env.NEON_HTTP_ENDPOINT, {
				method: "POST",
				headers: { "Neon-Connection-String": url },
				body: JSON.stringify({ query: "SELECT 1", params: [] }),
			});
			expect(raw.status).toBe(503);
			expect(Object.keys((await raw.json()) as object).sort()).toEqual(ERROR_KEYS);
			// Other hosts (every other test file) are untouched.
			expect(await sqlHttp().query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
		} finally {
			await clearFault(host);
		}
		expect(await neon(url).query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
	});

	it("HTTP delay: the query runs, delayMs late", async () => {
		const { host, url } = faultHost();
		configureNeon(env);
		await setFault(host, "delay", 400);
		try {
			const started = Date.now();
			expect(await neon(url).query("SELECT 2 AS two")).toEqual([{ two: 2 }]);
			expect(Date.now() - started).toBeGreaterThanOrEqual(400);
		} finally {
			await clearFault(host);
		}
	});

	it("HTTP hang: no answer until the client gives up; clearing the fault answers held requests 503", async () => {
		const { host, url } = faultHost();
		await setFault(host, "hang");
		const request = (signal?: AbortSignal) =>
			fetch(env.NEON_HTTP_ENDPOINT, {
				method: "POST",
				headers: { "Neon-Connection-String": url },
				body: JSON.stringify({ query: "SELECT 1", params: [] }),
				...(signal ? { signal } : {}),
			});
		try {
			const started = Date.now();
			await expect(request(AbortSignal.timeout(300))).rejects.toThrow();
			expect(Date.now() - started).toBeLessThan(3000);
			const held = request();
			expect(await within(held, 300)).toBe("pending");
			await clearFault(host);
			// Released with the "fail" answer, never with query results.
			expect((await held).status).toBe(503);
		} finally {
			await clearFault(host);
		}
		configureNeon(env);
		expect(await neon(url).query("SELECT 1 AS ok")).toEqual([{ ok: 1 }]);
	});

	it("WebSocket fail: open sessions of the host are cut, new ones refused with a FATAL 08006", async () => {
		const { host, url } = faultHost();
		const open = clientFor(url);
		const other = wsClient();
		await open.connect();
		await other.connect();
		try {
			expect((await open.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
			await setFault(host, "fail");
			await expect(open.query("SELECT 1 AS ok")).rejects.toThrow();
			const refused = clientFor(url);
			const err = await rejection(refused.connect());
			expect(err.message).toContain("Couldn't connect to compute node");
			expect(err.code).toBe("08006");
			// Another host's session lives on.
			expect((await other.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
		} finally {
			await clearFault(host);
			// `open` and `refused` are not ended: the stand-in closed their sockets, and end() would
			// write Terminate to a closed WebSocket (workerd: an uncaught "send() after close()").
			await other.end();
		}
		const again = clientFor(url);
		await again.connect();
		try {
			expect((await again.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
		} finally {
			await again.end();
		}
	});

	it("WebSocket delay: every round trip, start-up included, is delayMs slower", async () => {
		const { host, url } = faultHost();
		const delayMs = 200;
		await setFault(host, "delay", delayMs);
		const client = clientFor(url);
		try {
			const started = Date.now();
			await client.connect();
			expect((await client.query("SELECT $1::int AS n", [7])).rows).toEqual([{ n: 7 }]);
			// Start-up and the query: at least two round trips through the delay.
			expect(Date.now() - started).toBeGreaterThanOrEqual(2 * delayMs);
		} finally {
			await clearFault(host);
			await client.end();
		}
	});

	it("WebSocket hang: connect never completes; clearing the fault drops the socket", async () => {
		const { host, url } = faultHost();
		await setFault(host, "hang");
		const client = clientFor(url);
		try {
			const connecting = client.connect();
			expect(await within(connecting, 500)).toBe("pending");
			await clearFault(host);
			await expect(connecting).rejects.toThrow();
		} finally {
			await clearFault(host); // drops the socket: nothing left to end
		}
		const fresh = clientFor(url);
		await fresh.connect();
		try {
			expect((await fresh.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
		} finally {
			await fresh.end();
		}
	});
});

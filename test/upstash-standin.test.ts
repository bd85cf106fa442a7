// Conformance of the local Upstash REST stand-in (scripts/stack/upstash-standin.ts), exercised from
// inside workerd with the real @upstash/redis client the Worker uses, plus raw fetches that pin
// the wire format (status codes, error shapes, base64 encoding). Every key starts with this run's
// prefix and this file's name, and each test adds its own segment, so files and reruns never collide.
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, inject, it } from "vitest";

const url = inject("upstashUrl");
const token = inject("upstashToken");
const base = `${inject("redisKeyPrefix")}upstash-standin:`;
const redis = new Redis({ url, token, enableTelemetry: false });

let counter = 0;
/** A key namespace unique to one test. */
function ns(name: string): (suffix?: string) => string {
	const prefix = `${base}${name}:${++counter}:`;
	return (suffix = "k") => `${prefix}${suffix}`;
}

/** POSTs a raw body to the stand-in and returns status and parsed JSON. */
async function raw(
	path: string,
	body: unknown,
	opts: { base64?: boolean; auth?: string | null; method?: string } = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
	const headers: Record<string, string> = { "content-type": "application/json" };
	if (opts.auth !== null) headers.authorization = opts.auth ?? `Bearer ${token}`;
	if (opts.base64) headers["upstash-encoding"] = "base64";
	const res = await fetch(`${url}${path}`, {
		method: opts.method ?? "POST",
		headers,
		body: opts.method === "GET" ? undefined : typeof body === "string" ? body : JSON.stringify(body),
	});
	const text = await res.text();
	return { status: res.status, json: JSON.parse(text), headers: res.headers };
}

describe("Upstash stand-in through @upstash/redis", () => {
	it("get/set with EX, PX and NX; del, exists, unlink", async () => {
		const k = ns("strings");
		expect(await redis.set(k("a"), "hello")).toBe("OK");
		expect(await redis.get(k("a"))).toBe("hello");
		expect(await redis.get(k("missing"))).toBeNull();
		expect(await redis.set(k("ex"), "v", { ex: 100 })).toBe("OK");
		const ttl = await redis.ttl(k("ex"));
		expect(ttl).toBeGreaterThan(90);
		expect(ttl).toBeLessThanOrEqual(100);
		await redis.set(k("px"), "v", { px: 50_000 });
		const pttl = await redis.pttl(k("px"));
		expect(pttl).toBeGreaterThan(40_000);
		expect(pttl).toBeLessThanOrEqual(50_000);
		expect(await redis.set(k("a"), "other", { nx: true })).toBeNull();
		expect(await redis.set(k("nx"), "first", { nx: true })).toBe("OK");
		expect(await redis.get(k("a"))).toBe("hello");
		expect(await redis.exists(k("a"), k("nx"), k("missing"))).toBe(2);
		expect(await redis.del(k("a"), k("missing"))).toBe(1);
		expect(await redis.unlink(k("nx"), k("ex"), k("px"))).toBe(3);
		expect(await redis.exists(k("a"), k("nx"), k("ex"), k("px"))).toBe(0);
	});

	it("incr, incrby, expire, ttl, pexpire", async () => {
		const k = ns("counters");
		expect(await redis.incr(k())).toBe(1);
		expect(await redis.incrby(k(), 41)).toBe(42);
		expect(await redis.incrby(k(), -2)).toBe(40);
		expect(await redis.ttl(k())).toBe(-1);
		expect(await redis.expire(k(), 60)).toBe(1);
		expect(await redis.ttl(k())).toBeGreaterThan(50);
		expect(await redis.pexpire(k(), 5_000)).toBe(1);
		const pttl = await redis.pttl(k());
		expect(pttl).toBeGreaterThan(0);
		expect(pttl).toBeLessThanOrEqual(5_000);
		expect(await redis.ttl(k("missing"))).toBe(-2);
		expect(await redis.expire(k("missing"), 10)).toBe(0);
	});

	it("mset and mget", async () => {
		const k = ns("mset");
		expect(await redis.mset({ [k("a")]: "1x", [k("b")]: { n: 2 }, [k("c")]: 3 })).toBe("OK");
		expect(await redis.mget(k("a"), k("b"), k("c"), k("missing"))).toEqual(["1x", { n: 2 }, 3, null]);
	});

	it("hset, hgetall, hincrby", async () => {
		const k = ns("hash");
		expect(await redis.hset(k(), { name: "octo", stars: 5, meta: { lang: "ts" } })).toBe(3);
		expect(await redis.hincrby(k(), "stars", 10)).toBe(15);
		expect(await redis.hgetall(k())).toEqual({ name: "octo", stars: 15, meta: { lang: "ts" } });
		expect(await redis.hgetall(k("missing"))).toBeNull();
	});

	it("zadd, zrange (scores, rev, byScore), zincrby, zscore with floats", async () => {
		const k = ns("zset");
		expect(
			await redis.zadd(
				k(),
				{ score: 1.5, member: "a" },
				{ score: 3, member: "c" },
				{ score: 2, member: "b" },
			),
		).toBe(3);
		expect(await redis.zrange(k(), 0, -1)).toEqual(["a", "b", "c"]);
		expect(await redis.zrange(k(), 0, -1, { withScores: true })).toEqual(["a", 1.5, "b", 2, "c", 3]);
		expect(await redis.zrange(k(), 0, 1, { rev: true })).toEqual(["c", "b"]);
		expect(await redis.zrange(k(), 1.6, "+inf", { byScore: true })).toEqual(["b", "c"]);
		expect(await redis.zrange(k(), "+inf", 2, { byScore: true, rev: true, withScores: true })).toEqual([
			"c",
			3,
			"b",
			2,
		]);
		expect(await redis.zincrby(k(), 0.25, "a")).toBe(1.75);
		expect(await redis.zscore(k(), "a")).toBe(1.75);
		expect(await redis.zscore(k(), "missing")).toBeNull();
	});

	it("sadd/smembers and lpush/lrange", async () => {
		const k = ns("collections");
		expect(await redis.sadd(k("s"), "x", "y", "z", "x")).toBe(3);
		expect((await redis.smembers(k("s"))).sort()).toEqual(["x", "y", "z"]);
		expect(await redis.lpush(k("l"), "a", "b", "c")).toBe(3);
		expect(await redis.lrange(k("l"), 0, -1)).toEqual(["c", "b", "a"]);
		expect(await redis.lrange(k("l"), 0, 0)).toEqual(["c"]);
	});

	it("scan walks every key under a prefix", async () => {
		const k = ns("scan");
		const keys = Array.from({ length: 40 }, (_, i) => k(`item:${i}`));
		await Promise.all(keys.map((key) => redis.set(key, 1)));
		const seen = new Set<string>();
		let cursor = "0";
		do {
			const [next, batch] = await redis.scan(cursor, { match: `${k("item:")}*`, count: 7 });
			for (const key of batch) seen.add(key);
			cursor = next;
		} while (cursor !== "0");
		expect([...seen].sort()).toEqual([...keys].sort());
	});

	it("eval, evalsha and createScript (NOSCRIPT falls back to EVAL)", async () => {
		const k = ns("script");
		expect(await redis.eval("return {KEYS[1], ARGV[1], 7}", [k()], ["arg"])).toEqual([k(), "arg", 7]);
		// A never-seen script body, so the first EVALSHA really gets NOSCRIPT from Redis.
		const script = redis.createScript<number>(
			`-- ${crypto.randomUUID()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`,
		);
		expect(await script.exec([k()], ["5"])).toBe(5);
		expect(await script.exec([k()], ["5"])).toBe(10);
		expect(await script.evalsha([k()], ["1"])).toBe(11);
		await expect(redis.evalsha("0".repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
	});

	it("publish returns the subscriber count", async () => {
		expect(await redis.publish(ns("pub")("channel"), { hello: "world" })).toBe(0);
	});

	it("pipeline: a failing entry throws the client's per-entry error, keepErrors returns it", async () => {
		const k = ns("pipeline");
		const build = () => redis.pipeline().set(k(), "abc").incr(k()).get(k()).incr(k("n"));
		await expect(build().exec()).rejects.toThrow(
			/Command 2 \[ incr \] failed: ERR value is not an integer or out of range/,
		);
		const results = await build().exec({ keepErrors: true });
		expect(results[0]).toEqual({ result: "OK", error: undefined });
		expect(results[1].error).toMatch(/^ERR value is not an integer or out of range/);
		expect(results[2]).toEqual({ result: "abc", error: undefined });
		expect(results[3]).toEqual({ result: 2, error: undefined });
	});

	it("multi runs as a transaction", async () => {
		const k = ns("multi");
		const results = await redis.multi().set(k(), 1).incr(k()).incrby(k(), 10).get(k()).exec();
		expect(results).toEqual(["OK", 2, 12, 12]);
	});

	it("auto-pipelines many concurrent commands correctly", async () => {
		const k = ns("auto");
		const n = 300;
		const sets = await Promise.all(Array.from({ length: n }, (_, i) => redis.set(k(`${i}`), `v${i}`)));
		expect(sets.every((r) => r === "OK")).toBe(true);
		const gets = await Promise.all(Array.from({ length: n }, (_, i) => redis.get<string>(k(`${i}`))));
		expect(gets).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
	});

	it("concurrent multi-execs do not interfere with each other or with plain commands", async () => {
		const k = ns("concurrent-multi");
		const multis = Array.from({ length: 20 }, (_, i) =>
			redis
				.multi()
				.set(k(`m${i}`), i)
				.incrby(k(`m${i}`), 100)
				.incr(k(`m${i}`))
				.get(k(`m${i}`))
				.exec(),
		);
		// Plain commands with auto-pipelining off, so each one is its own POST / in flight meanwhile.
		const plain = new Redis({ url, token, enableAutoPipelining: false, enableTelemetry: false });
		const incrs = Array.from({ length: 40 }, () => plain.incr(k("plain")));
		const [multiResults, incrResults] = await Promise.all([Promise.all(multis), Promise.all(incrs)]);
		multiResults.forEach((r, i) => {
			expect(r).toEqual(["OK", i + 100, i + 101, i + 101]);
		});
		expect([...incrResults].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
		expect(await redis.get(k("plain"))).toBe(40);
	});

	it("round-trips unicode, NUL bytes, 'OK' and a 1 MB value, with and without base64", async () => {
		const k = ns("binary");
		const values = {
			emoji: "🚀🔥 party 🎉 👩‍💻",
			cjk: "漢字かなカナ한국어",
			nul: "a\u0000b\u0000",
			onlyNul: "\u0000",
			ok: "OK",
			queued: "QUEUED",
			big: `${"x".repeat(1024 * 1024 - 8)}é漢🚀`,
		};
		const plainText = new Redis({ url, token, responseEncoding: false, enableTelemetry: false });
		for (const client of [redis, plainText]) {
			await Promise.all(Object.entries(values).map(([name, v]) => client.set(k(name), v)));
			for (const [name, v] of Object.entries(values)) {
				expect(await client.get(k(name)), name).toBe(v);
			}
			expect(await client.strlen(k("big"))).toBe(new TextEncoder().encode(values.big).length);
			expect(await client.mget(k("ok"), k("emoji"), k("nul"))).toEqual([values.ok, values.emoji, values.nul]);
		}
	});

	it("keeps JSON-looking strings exact with automaticDeserialization off", async () => {
		const k = ns("raw-strings");
		const exact = new Redis({ url, token, automaticDeserialization: false, enableTelemetry: false });
		for (const v of ["42", "0123", '"quoted"', "true", "null", "9007199254740993"]) {
			await exact.set(k(), v);
			expect(await exact.get(k())).toBe(v);
		}
	});

	it("round-trips JSON objects via automaticDeserialization", async () => {
		const k = ns("json");
		const value = { repo: "octo/hello", stars: 42, tags: ["a", "ü"], nested: { ok: true, none: null } };
		await redis.set(k(), value);
		expect(await redis.get(k())).toEqual(value);
	});

	it("surfaces Redis errors with Redis's message", async () => {
		const k = ns("errors");
		await redis.set(k(), "not a number");
		await expect(redis.incr(k())).rejects.toThrow(/ERR value is not an integer or out of range/);
		const direct = new Redis({ url, token, enableAutoPipelining: false, enableTelemetry: false });
		await expect(direct.incr(k())).rejects.toThrow(/^ERR value is not an integer or out of range/);
		await expect(direct.lpush(k(), "x")).rejects.toThrow(/^WRONGTYPE/);
	});

	it("rejects a bad token", async () => {
		const bad = new Redis({ url, token: "wrong-token", enableAutoPipelining: false, enableTelemetry: false });
		await expect(bad.get(ns("auth")())).rejects.toThrow(/WRONGPASS/);
	});
});

describe("Upstash stand-in wire format", () => {
	it("returns 401 with an {error} body for a missing or bad token, and accepts ?_token=", async () => {
		const k = ns("wire-auth");
		for (const auth of [null, "Bearer nope", `Basic ${token}`]) {
			const res = await raw("/", ["get", k()], { auth });
			expect(res.status).toBe(401);
			expect(res.json).toEqual({ error: expect.any(String) });
		}
		const res = await fetch(`${url}/?_token=${token}`, {
			method: "POST",
			body: JSON.stringify(["echo", "hi"]),
		});
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ result: "hi" });
	});

	it("returns 400 for malformed bodies, 404 for unknown paths, 405 for other methods", async () => {
		for (const body of ["{not json", '{"a":1}', "[]", "[[]]", '["get", null]', '["get", {"a":1}]', "42"]) {
			const res = await raw("/", body);
			expect(res.status, body).toBe(400);
			expect(res.json, body).toEqual({ error: expect.any(String) });
		}
		for (const body of ["[]", '["get","x"]', "[[]]", "{}"]) {
			expect((await raw("/pipeline", body)).status, body).toBe(400);
			expect((await raw("/multi-exec", body)).status, body).toBe(400);
		}
		const notFound = await raw("/nope", ["ping"]);
		expect(notFound.status).toBe(404);
		expect(notFound.json).toEqual({ error: expect.any(String) });
		const get = await raw("/", undefined, { method: "GET" });
		expect(get.status).toBe(405);
		expect(get.json).toEqual({ error: expect.any(String) });
	});

	it("returns 413 for a body over the size limit", async () => {
		const res = await raw("/", ["set", ns("wire-big")(), "x".repeat(11 * 1024 * 1024)]);
		expect(res.status).toBe(413);
		expect(res.json).toEqual({ error: expect.any(String) });
	});

	it("encodes every string as base64 only when asked, integers and nil stay JSON", async () => {
		const k = ns("wire-b64");
		expect((await raw("/", ["set", k(), "héllo"])).json).toEqual({ result: "OK" });
		expect((await raw("/", ["set", k(), "héllo"], { base64: true })).json).toEqual({ result: "T0s=" });
		expect((await raw("/", ["get", k()])).json).toEqual({ result: "héllo" });
		expect((await raw("/", ["get", k()], { base64: true })).json).toEqual({
			result: btoa("h\u00c3\u00a9llo"),
		});
		expect((await raw("/", ["ping"], { base64: true })).json).toEqual({ result: "UE9ORw==" });
		expect((await raw("/", ["strlen", k()], { base64: true })).json).toEqual({ result: 6 });
		expect((await raw("/", ["get", k("missing")], { base64: true })).json).toEqual({ result: null });
		// Nested arrays, and a float that must stay a string (RESP2 double).
		await raw("/", ["zadd", k("z"), 0.5, "m"]);
		const nested = await raw(
			"/",
			["eval", "return {'OK', {1, 'x'}, redis.call('ZSCORE', KEYS[1], 'm')}", 1, k("z")],
			{
				base64: true,
			},
		);
		expect(nested.json).toEqual({ result: ["T0s=", [1, "eA=="], "MC41"] });
		// Bytes that are not valid UTF-8 survive base64 exactly.
		expect((await raw("/", ["eval", "return string.char(255, 0, 1)", 0], { base64: true })).json).toEqual({
			result: "/wAB",
		});
		// Integers beyond 2^53 are written as exact JSON digits.
		await raw("/", ["set", k("big"), "9223372036854775806"]);
		const res = await fetch(`${url}/`, {
			method: "POST",
			headers: { authorization: `Bearer ${token}` },
			body: JSON.stringify(["incr", k("big")]),
		});
		expect(await res.text()).toBe('{"result":9223372036854775807}');
	});

	it("pipeline and multi-exec return per-entry results and errors; EXECABORT is a 400", async () => {
		const k = ns("wire-batch");
		const pipeline = await raw(
			"/pipeline",
			[
				["set", k(), "a"],
				["incr", k()],
				["subscribe", "x"],
				["get", k()],
			],
			{ base64: true },
		);
		expect(pipeline.status).toBe(200);
		expect(pipeline.json).toEqual([
			{ result: "T0s=" },
			{ error: "ERR value is not an integer or out of range" },
			{ error: expect.stringMatching(/not allowed/) },
			{ result: "YQ==" },
		]);
		const multi = await raw(
			"/multi-exec",
			[
				["set", k(), "a"],
				["incr", k()],
				["get", k()],
			],
			{ base64: true },
		);
		expect(multi.status).toBe(200);
		expect(multi.json).toEqual([
			{ result: "T0s=" },
			{ error: "ERR value is not an integer or out of range" },
			{ result: "YQ==" },
		]);
		const aborted = await raw("/multi-exec", [["set", k("aborted"), "a"], ["get"]]);
		expect(aborted.status).toBe(400);
		expect(aborted.json).toEqual({ error: expect.stringMatching(/^EXECABORT/) });
		expect((await raw("/", ["exists", k("aborted")])).json).toEqual({ result: 0 });
		const refused = await raw("/multi-exec", [
			["set", k(), "a"],
			["watch", k()],
		]);
		expect(refused.status).toBe(400);
	});

	it("refuses blocking and connection-state commands with 400", async () => {
		const k = ns("wire-refused");
		for (const cmd of [
			["blpop", k(), 0],
			["subscribe", k()],
			["multi"],
			["exec"],
			["watch", k()],
			["select", 1],
			["client", "setname", "x"],
			["monitor"],
			["quit"],
			["xread", "BLOCK", 0, "STREAMS", k(), "$"],
		]) {
			const res = await raw("/", cmd);
			expect(res.status, String(cmd[0])).toBe(400);
			expect(res.json).toEqual({ error: expect.any(String) });
		}
		// The shared connection is still fine afterwards.
		expect((await raw("/", ["echo", "still here"])).json).toEqual({ result: "still here" });
	});

	it("single-command errors are HTTP 400 with Redis's message; a sync token is returned", async () => {
		const k = ns("wire-error");
		await raw("/", ["set", k(), "x"]);
		const res = await raw("/", ["incr", k()]);
		expect(res.status).toBe(400);
		expect(res.json).toEqual({ error: "ERR value is not an integer or out of range" });
		const ok = await raw("/", ["get", k()]);
		expect(ok.headers.get("upstash-sync-token")).toMatch(/\S/);
	});
});

// Fault injection (upstash-standin.ts header): a fault is registered for a token of this test's
// own, which the stand-in then accepts; the configured token every other file uses is untouched.
describe("Upstash stand-in fault injection, scoped by token", () => {
	const CONTROL = `${url}/__faults`;

	async function setFault(scope: string, mode: string, delayMs?: number): Promise<void> {
		const res = await fetch(CONTROL, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ scope, mode, delayMs }),
		});
		expect(res.status, await res.text()).toBe(200);
	}

	async function clearFault(scope: string): Promise<void> {
		const res = await fetch(`${CONTROL}?scope=${encodeURIComponent(scope)}`, { method: "DELETE" });
		expect(res.status).toBe(200);
		await res.body?.cancel();
	}

	/** The Worker's client settings (src/lib/redis.ts): a timeout signal, no network retries. */
	function clientFor(faultToken: string, timeoutMs = 250): Redis {
		return new Redis({
			url,
			token: faultToken,
			enableTelemetry: false,
			enableAutoPipelining: false,
			retry: false,
			signal: () => AbortSignal.timeout(timeoutMs),
		});
	}

	const newToken = () => `fault-${crypto.randomUUID()}`;

	it("a token is accepted only while registered; 'none' makes it work like the configured one", async () => {
		const t = newToken();
		const k = ns("fault-none");
		expect((await raw("/", ["get", k()], { auth: `Bearer ${t}` })).status).toBe(401);
		await setFault(t, "none");
		try {
			expect(await clientFor(t, 5000).set(k(), "v")).toBe("OK");
			expect(await redis.get(k())).toBe("v");
			const listed = (await (await fetch(CONTROL)).json()) as { faults: unknown[] };
			expect(listed.faults).toContainEqual({ scope: t, mode: "none", delayMs: 0 });
		} finally {
			await clearFault(t);
		}
		expect((await raw("/", ["get", k()], { auth: `Bearer ${t}` })).status).toBe(401);
	});

	it("refuses malformed faults with 400 and other methods with 405", async () => {
		for (const bad of [
			"{",
			"[]",
			'{"scope":"x"}',
			'{"scope":"x","mode":"boom"}',
			'{"scope":"x","mode":"delay"}',
		]) {
			const res = await fetch(CONTROL, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: bad,
			});
			expect(res.status, bad).toBe(400);
			expect(await res.json()).toEqual({ error: expect.any(String) });
		}
		expect((await fetch(CONTROL, { method: "DELETE" })).status).toBe(400);
		expect((await fetch(CONTROL, { method: "PATCH", body: "{}" })).status).toBe(405);
	});

	it("fail: every endpoint answers 500 {error}, as with Redis down; the configured token is unaffected", async () => {
		const t = newToken();
		const k = ns("fault-fail");
		await setFault(t, "fail");
		try {
			for (const [path, body] of [
				["/", ["get", k()]],
				["/pipeline", [["get", k()]]],
				["/multi-exec", [["get", k()]]],
			] as const) {
				const res = await raw(path, body, { auth: `Bearer ${t}` });
				expect(res.status, path).toBe(500);
				expect(res.json).toEqual({ error: expect.stringContaining("Redis unavailable") });
			}
			await expect(clientFor(t).get(k())).rejects.toThrow(/Redis unavailable/);
			expect(await redis.set(k(), "fine")).toBe("OK");
		} finally {
			await clearFault(t);
		}
	});

	it("delay: commands run delayMs late", async () => {
		const t = newToken();
		const k = ns("fault-delay");
		await setFault(t, "delay", 300);
		try {
			const started = Date.now();
			expect(await clientFor(t, 5000).set(k(), "late")).toBe("OK");
			expect(Date.now() - started).toBeGreaterThanOrEqual(300);
			expect(await redis.get(k())).toBe("late");
			// Past the client's own timeout, a delay is a timeout.
			await expect(clientFor(t, 100).get(k())).rejects.toThrow();
		} finally {
			await clearFault(t);
		}
	});

	it("hang: no answer until the client gives up; changing the fault answers held requests 500", async () => {
		const t = newToken();
		const k = ns("fault-hang");
		await setFault(t, "hang");
		try {
			const started = Date.now();
			await expect(clientFor(t, 250).get(k())).rejects.toThrow();
			expect(Date.now() - started).toBeLessThan(3000);
			const held = fetch(url, {
				method: "POST",
				headers: { authorization: `Bearer ${t}` },
				body: JSON.stringify(["get", k()]),
			});
			held.catch(() => undefined);
			const settled = await Promise.race([
				held.then(() => "answered"),
				new Promise((r) => setTimeout(() => r("pending"), 300)),
			]);
			expect(settled).toBe("pending");
			await setFault(t, "none"); // any change of fault releases what a hang holds
			const released = await held;
			expect(released.status).toBe(500);
			expect(await released.json()).toEqual({ error: expect.stringContaining("Redis unavailable") });
			expect(await clientFor(t, 5000).get(k())).toBeNull();
		} finally {
			await clearFault(t);
		}
	});
});

// Hostile requests, case by case, through the real Worker entry point: malformed JSON bodies,
// wrong or missing media types (415), oversized bodies (413) — declared, streamed without a
// Content-Length, endless — unicode and control characters in every parameter, 16 KB and 64 KB
// query strings, repeated parameters, wrong methods, HEAD and OPTIONS. Whatever the input: a 4xx
// in the error envelope (or the route's normal answer), never a 5xx, never a hang.
// Cases that expose a defect in src/ are `it.fails` with a `// BUG:` note, so the suite stays
// green until the fix lands (it then fails, as a reminder to turn it into a plain `it`).
// Past 400 lines on purpose: it is tables of cases, one section per kind of hostility.
import { beforeAll, describe, expect, it } from "vitest";
import { LIMITS } from "../src/realtime/protocol";
import { hs256Token } from "./helpers";
import { expectEnvelope, namedParameters, postJson, raw, request, send } from "./hostile-helpers";

/** The ticket request's body limit (src/realtime/stream.routes.ts, readJsonBody(…, 4096)). */
const TICKET_BYTES = 4096;
const UNKNOWN_REPO = "00000000-0000-4000-8000-00000000beef";

let user: string;
let admin: string;
let service: string;

beforeAll(async () => {
	user = await hs256Token({ sub: "hostile-user", role: "user" });
	admin = await hs256Token({ sub: "hostile-admin", role: "admin" });
	service = await hs256Token({ sub: "hostile-service", role: "service" });
});

interface JsonEndpoint {
	path: string;
	token: () => string;
	limit: number;
	/** A small body the endpoint accepts, and the status it answers it with. */
	valid: () => string;
	ok: number;
}

const JSON_ENDPOINTS: JsonEndpoint[] = [
	{
		path: "/api/v1/events",
		token: () => service,
		limit: LIMITS.eventBytes,
		valid: () => JSON.stringify({ type: "x-hostile", data: { n: 1 } }),
		ok: 202,
	},
	{
		path: "/api/v1/events/batch",
		token: () => service,
		limit: LIMITS.batchBytes,
		valid: () => JSON.stringify({ events: [{ type: "x-hostile", data: {} }] }),
		ok: 202,
	},
	{
		path: "/api/v1/stream/tickets",
		token: () => user,
		limit: TICKET_BYTES,
		valid: () => JSON.stringify({ repository_id: UNKNOWN_REPO }),
		ok: 201,
	},
];

describe.each(JSON_ENDPOINTS)("JSON body of POST $path", (ep) => {
	it("accepts its valid body (the control for every refusal below)", async () => {
		const res = await postJson(ep.path, ep.valid(), ep.token());
		expect(res.status, await res.clone().text()).toBe(ep.ok);
	});

	it.each([
		["empty", ""],
		["a lone brace", "{"],
		["a closing brace", "}"],
		["a truncated literal", "nul"],
		["a truncated array", "[1,"],
		["single quotes", "{'type':'x-a'}"],
		["a trailing comma", '{"type":"x-a",}'],
		["NaN", "NaN"],
		["trailing garbage", '{"type":"x-a","data":{}} x'],
		["two documents", "{}{}"],
		["a comment", '{/* c */"type":"x-a"}'],
		["an unterminated string", '{"type":"x-a'],
		["a raw control character in a string", '{"type":"x-a","data":{"s":"a\u0001b"}}'],
		["a bad escape", '{"type":"x-a","data":{"s":"\\x41"}}'],
		["a bad unicode escape", '{"type":"x-a","data":{"s":"\\u12"}}'],
		["a NUL byte", "\u0000"],
	])("answers 400 bad_request for %s", async (_name, body) => {
		const res = await postJson(ep.path, body, ep.token());
		const err = await expectEnvelope(res, { status: 400, code: "bad_request" });
		expect(err.message).toBe("the body is not valid JSON");
	});

	it("answers 400 bad_request for bytes that are not UTF-8", async () => {
		const res = await postJson(ep.path, new Uint8Array([0x7b, 0xff, 0xfe, 0xc0, 0xaf, 0x7d]), ep.token());
		await expectEnvelope(res, { status: 400, code: "bad_request" });
	});

	it.each([
		["null", "null"],
		["a number", "42"],
		["a string", '"x"'],
		["an array", "[]"],
		["an empty object", "{}"],
		["an object with an unknown field", '{"zzz":1}'],
		["a __proto__ key", '{"__proto__":{"type":"x-a"}}'],
		["a huge number", "1e999999"],
		["deep nesting (1,000 levels)", `${"[".repeat(1000)}${"]".repeat(1000)}`],
	])("answers 400 invalid_parameter for valid JSON of the wrong shape: %s", async (_name, body) => {
		const res = await postJson(ep.path, body, ep.token());
		await expectEnvelope(res, { status: 400, code: "invalid_parameter" });
	});

	it.each([
		["missing (bytes, no type)", undefined],
		["text/plain", "text/plain"],
		["text/plain with a JSON charset", "text/plain; charset=utf-8"],
		["a form", "application/x-www-form-urlencoded"],
		["multipart", "multipart/form-data; boundary=x"],
		["a JSON-looking subtype", "application/jsonx"],
		["a vendor +json type", "application/vnd.api+json"],
		["JSON Lines", "application/json-seq"],
		["a bare 'json'", "json"],
		["garbage", "🙃/🙃"],
		["a type list", "text/html, application/json"],
	])("answers 415 for a %s content type", async (_name, type) => {
		const headers: Record<string, string> = type === undefined ? {} : { "content-type": type };
		const body = new TextEncoder().encode(ep.valid());
		const res = await raw(ep.path, { method: "POST", token: ep.token(), headers, body });
		const err = await expectEnvelope(res, { status: 415, code: "unsupported_media_type" });
		expect(err.message).toContain("application/json");
	});

	it.each([["application/json; charset=utf-8"], ["Application/JSON"], ["application/json;charset=UTF-8"]])(
		"accepts the content type %s",
		async (type) => {
			const res = await postJson(ep.path, ep.valid(), ep.token(), type);
			expect(res.status, await res.clone().text()).toBe(ep.ok);
		},
	);

	it("accepts a body of exactly the limit, and answers 413 one byte over", async () => {
		const valid = ep.valid();
		// Whitespace after the document is valid JSON: the size alone decides.
		const exact = valid + " ".repeat(ep.limit - valid.length);
		expect(new TextEncoder().encode(exact).byteLength).toBe(ep.limit);
		const atLimit = await postJson(ep.path, exact, ep.token());
		expect(atLimit.status, await atLimit.clone().text()).toBe(ep.ok);
		const over = await postJson(ep.path, `${exact} `, ep.token());
		const err = await expectEnvelope(over, { status: 413, code: "payload_too_large" });
		expect(err.message).toContain(String(ep.limit));
	});

	it("answers 413 for a chunked body without Content-Length that passes the limit", async () => {
		const chunk = new TextEncoder().encode(" ".repeat(1024));
		let sent = 0;
		const body = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(new TextEncoder().encode(ep.valid()));
				for (; sent <= ep.limit; sent += chunk.byteLength) controller.enqueue(chunk);
				controller.close();
			},
		});
		const req = request(ep.path, {
			method: "POST",
			token: ep.token(),
			headers: { "content-type": "application/json" },
			body,
		});
		expect(req.headers.get("content-length")).toBeNull();
		const res = await send(req);
		await expectEnvelope(res, { status: 413, code: "payload_too_large" });
	});

	it("answers 413 promptly for an endless body, and stops reading it", async () => {
		let pulled = 0;
		let cancelled = false;
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				pulled += 16_384;
				controller.enqueue(new Uint8Array(16_384).fill(0x20));
			},
			cancel() {
				cancelled = true;
			},
		});
		const started = Date.now();
		const res = await raw(ep.path, {
			method: "POST",
			token: ep.token(),
			headers: { "content-type": "application/json" },
			body,
		});
		await expectEnvelope(res, { status: 413, code: "payload_too_large" });
		expect(Date.now() - started).toBeLessThan(10_000);
		// It read little more than the limit (a few chunks in flight), not the stream's "end".
		expect(pulled).toBeLessThan(ep.limit + 16 * 16_384);
		// The cancellation reaches this end of the pipe asynchronously.
		for (let waited = 0; !cancelled && waited < 3000; waited += 25) {
			await new Promise((resolve) => setTimeout(resolve, 25));
		}
		expect(cancelled).toBe(true);
	});

	it("answers 413 for a declared Content-Length over the limit, before reading", async () => {
		const res = await raw(ep.path, {
			method: "POST",
			token: ep.token(),
			headers: { "content-type": "application/json", "content-length": String(ep.limit * 100) },
			body: ep.valid(),
		});
		await expectEnvelope(res, { status: 413, code: "payload_too_large" });
	});

	it("checks the caller before the body: 401 without a token, whatever the body", async () => {
		const res = await raw(ep.path, {
			method: "POST",
			headers: { "content-type": "text/plain" },
			body: "x".repeat(ep.limit + 1),
		});
		await expectEnvelope(res, { status: 401, code: "unauthorized" });
	});
});

describe("event contents", () => {
	it("answers 413 for one batch event over 64 KB inside a batch under 1 MB", async () => {
		const big = { type: "x-hostile", data: { pad: "a".repeat(LIMITS.eventBytes) } };
		const res = await postJson(
			"/api/v1/events/batch",
			JSON.stringify({ events: [{ type: "x-a" }, big] }),
			service,
		);
		const err = await expectEnvelope(res, { status: 413, code: "payload_too_large" });
		expect(err.message).toContain("events[1]");
	});

	it.each([
		["NUL", "\u0000"],
		["an RTL override", "\u202e"],
		["a lone high surrogate", "\ud800"],
		["a lone low surrogate", "\udc00"],
		["a BOM", "\ufeff"],
		["a noncharacter", "\uffff"],
		["CRLF", "\r\n"],
	])("accepts %s inside event data (it is data), as an escape and as raw JSON text", async (_name, ch) => {
		const escaped = JSON.stringify({ type: "x-hostile", data: { [`k${ch}`]: `v${ch}`, list: [ch] } });
		const res = await postJson("/api/v1/events", escaped, service);
		expect(res.status, await res.clone().text()).toBe(202);
	});

	it.each([
		["id", { id: "a\u0000b" }],
		["id", { id: "\u202eabc" }],
		["type", { type: "x-a\u0000" }],
		["type", { type: "x-\ud800" }],
		["repository_id", { repository_id: `${UNKNOWN_REPO}\u0000` }],
		["timestamp", { timestamp: "2025-01-01T00:00:00Z\u0000" }],
	])("answers 400 naming %s for control characters in a validated field", async (field, patch) => {
		const body = JSON.stringify({ type: "x-hostile", data: {}, ...patch });
		const err = await expectEnvelope(await postJson("/api/v1/events", body, service), {
			status: 400,
			code: "invalid_parameter",
		});
		expect(namedParameters(err)).toContain(field);
	});

	// Deep nesting fits in 64 KB of JSON but overflows structured clone (the hub RPCs) at a few
	// thousand levels: `data` is limited to LIMITS.dataDepth levels (400 naming data).
	it("answers 4xx, not 503, for event data nested 30,000 levels deep (within 64 KB)", async () => {
		const depth = 30_000;
		const body = `{"type":"x-hostile","data":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
		expect(body.length).toBeLessThan(LIMITS.eventBytes);
		const res = await postJson("/api/v1/events", body, service);
		await expectEnvelope(res, { status: [400, 413] });
	});

	it("accepts data nested exactly LIMITS.dataDepth levels and refuses one more, naming data", async () => {
		const nested = (levels: number) => `${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}`;
		// data itself is the first level.
		const at = `{"type":"x-hostile","data":{"a":${nested(LIMITS.dataDepth)}}}`;
		expect((await postJson("/api/v1/events", at, service)).status).toBe(202);
		const over = `{"type":"x-hostile","data":{"a":${nested(LIMITS.dataDepth + 1)}}}`;
		const err = await expectEnvelope(await postJson("/api/v1/events", over, service), {
			status: 400,
			code: "invalid_parameter",
		});
		expect(namedParameters(err)).toContain("data");
	});

	it("answers 4xx, not 503, for a batch event nested 30,000 levels deep", async () => {
		const depth = 30_000;
		const deep = `{"type":"insight_added","repository_id":"${UNKNOWN_REPO}","data":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
		const res = await postJson("/api/v1/events/batch", `{"events":[${deep}]}`, service);
		await expectEnvelope(res, { status: [400, 413] });
	});
});

// ---- every parameter, with unicode and control characters ------------------------------------------

/** Each as it travels in a URL: percent-encoded, the invalid-UTF-8 ones as raw bytes. */
const HOSTILE_CHARS = [
	["NUL", "%00"],
	["CRLF + a header", "%0D%0AX-Injected:%201"],
	["an RTL override", "%E2%80%AE"],
	["a zero-width joiner", "%E2%80%8D"],
	["a lone high surrogate (WTF-8)", "%ED%A0%80"],
	["a lone low surrogate (WTF-8)", "%ED%B0%80"],
	["an overlong '/'", "%C0%AF"],
	["a code point past U+10FFFF", "%F4%90%80%80"],
	["a broken escape", "%zz"],
	["a truncated escape", "%E0%A4%A"],
	["an emoji", "%F0%9F%92%A9"],
] as const;

interface Param {
	name: string;
	/** The URL with the hostile text appended to a plausible value of this parameter. */
	url: (text: string) => string;
	token?: () => string;
	/** "strict": 400 invalid_parameter naming the parameter; a number: that status. */
	expect: "strict" | number;
}

const uuid = "550e8400-e29b-41d4-a716-446655440000";
const PARAMS: Param[] = [
	{
		name: "repo_id",
		url: (t) => `/api/v1/fast/repositories/${uuid}${t}/summary`,
		token: () => user,
		expect: "strict",
	},
	{
		name: "owner",
		url: (t) => `/api/v1/fast/repositories/by-name/octo${t}/cat/summary`,
		token: () => user,
		expect: "strict",
	},
	{
		name: "name",
		url: (t) => `/api/v1/fast/repositories/by-name/octo/cat${t}/summary`,
		token: () => user,
		expect: "strict",
	},
	// Free text: q is normalised (controls and format characters become spaces, lone surrogates
	// dropped), so any of these is still a search.
	{ name: "q", url: (t) => `/api/v1/fast/search?q=cli${t}`, expect: 200 },
	{ name: "language", url: (t) => `/api/v1/fast/search?q=cli&language=go${t}`, expect: "strict" },
	{ name: "min_stars", url: (t) => `/api/v1/fast/search?q=cli&min_stars=1${t}`, expect: "strict" },
	{ name: "sort", url: (t) => `/api/v1/fast/search?q=cli&sort=stars${t}`, expect: "strict" },
	{ name: "limit", url: (t) => `/api/v1/fast/search?q=cli&limit=5${t}`, expect: "strict" },
	{ name: "offset", url: (t) => `/api/v1/fast/search?q=cli&offset=5${t}`, expect: "strict" },
	{ name: "category", url: (t) => `/api/v1/fast/leaderboard?category=popular${t}`, expect: "strict" },
	{ name: "timeframe", url: (t) => `/api/v1/fast/leaderboard?timeframe=week${t}`, expect: "strict" },
	{ name: "language", url: (t) => `/api/v1/fast/leaderboard?language=Python${t}`, expect: "strict" },
	{ name: "limit", url: (t) => `/api/v1/fast/leaderboard?limit=5${t}`, expect: "strict" },
	// Streams validate the path and query before asking for the upgrade (then 426).
	{ name: "repo_id", url: (t) => `/api/v1/stream/repository/${uuid}${t}/updates`, expect: "strict" },
	{ name: "since", url: (t) => `/api/v1/stream/global/activity?since=1${t}`, expect: "strict" },
	{ name: "types", url: (t) => `/api/v1/stream/global/activity?types=x-a${t}`, expect: "strict" },
	{ name: "shard", url: (t) => `/api/v1/stream/global/activity?shard=1${t}`, expect: "strict" },
	{ name: "ticket", url: (t) => `/api/v1/stream/repository/${uuid}/updates?ticket=a${t}`, expect: 426 },
];

describe.each(PARAMS)("parameter $name of $url", (param) => {
	it.each(HOSTILE_CHARS)("%s: a clear answer, never 5xx", async (_name, text) => {
		const res = await raw(param.url(text), { token: param.token?.() });
		expect(res.headers.get("x-injected")).toBeNull();
		if (param.expect === "strict") {
			const err = await expectEnvelope(res, { status: 400, code: "invalid_parameter" });
			expect(namedParameters(err)).toContain(param.name);
		} else if (param.expect >= 400) {
			await expectEnvelope(res, { status: param.expect });
		} else {
			expect(res.status, await res.text()).toBe(param.expect);
		}
	});
});

// ---- search qualifiers at the edges of their ranges -----------------------------------------------

describe("search qualifiers at the edges", () => {
	it.each([
		["stars:>=2147483647", 200],
		["stars:2147483647..*", 200],
		["stars:<0", 200],
		["cli stars:>2147483646", 200],
		["stars:2147483648", 400],
		["stars:99999999999999999999", 400],
		["stars:<-1", 400],
		["stars:-5..-1", 400],
		["stars:1e3", 400],
		["stars:>1.5", 400],
		["stars:0x10", 400],
		["stars:*", 400],
		["stars:..", 400],
		["topic:a topic:b topic:c topic:d topic:e topic:f topic:g topic:h topic:i", 400],
		["-cli", 400],
		['"', 400],
		["language:", 400],
		["language:%00", 400],
		["language:go language:rust", 400],
	])("q=%s answers %i", async (q, status) => {
		const res = await raw(`/api/v1/fast/search?q=${q.replaceAll(" ", "%20")}`);
		if (status >= 400) {
			const err = await expectEnvelope(res, { status, code: "invalid_parameter" });
			expect(namedParameters(err)).toContain("q");
		} else {
			expect(res.status, await res.clone().text()).toBe(status);
			expect(((await res.json()) as { total: number }).total).toBe(0);
		}
	});

	// `stars:>N` means min = N + 1, which must fit the integer column: N = 2147483647 is a 400.
	it("q=stars:>2147483647 answers 200 (nothing matches) or 400, not 503", async () => {
		const res = await raw("/api/v1/fast/search?q=stars:%3E2147483647");
		expect(res.status, await res.clone().text()).toBeLessThan(500);
		if (res.status >= 400) await expectEnvelope(res, { status: 400 });
	});
});

// ---- very long query strings ---------------------------------------------------------------------

const LONG_GETS: { path: string; token?: () => string; ok: number[] }[] = [
	{ path: "/health?", ok: [200] },
	{ path: "/openapi.json?", ok: [200] },
	{ path: "/docs?", ok: [200] },
	{ path: "/live?", ok: [200] },
	{ path: "/api/v1/me?", token: () => user, ok: [200] },
	{ path: "/api/v1/admin/config?", token: () => admin, ok: [200] },
	{ path: "/api/v1/fast/search?q=cli&", ok: [200] },
	{ path: "/api/v1/fast/leaderboard?", ok: [200] },
	{ path: `/api/v1/fast/repositories/${UNKNOWN_REPO}/summary?`, token: () => user, ok: [404] },
	{ path: "/api/v1/fast/repositories/by-name/octo/cat/summary?", token: () => user, ok: [404] },
	{ path: "/api/v1/stream/global/activity?", ok: [426] },
	{ path: "/no/such/route?", ok: [404] },
];

describe.each([16, 64])("a %i KB query string", (kb) => {
	const size = kb * 1024;
	it.each(LONG_GETS)("of unknown parameters on $path: the normal answer", async ({ path, token, ok }) => {
		const params = Array.from({ length: Math.ceil(size / 12) }, (_, i) => `u${i}=%00%E2%80%AE`).join("&");
		const res = await raw(`${path}${params}`.slice(0, path.length + size), { token: token?.() });
		if (ok[0] !== undefined && ok[0] >= 400) await expectEnvelope(res, { status: ok[0] });
		else expect(ok, await res.clone().text()).toContain(res.status);
	});

	it.each([
		["q", "/api/v1/fast/search?q="],
		["language", "/api/v1/fast/search?q=cli&language="],
		["language", "/api/v1/fast/leaderboard?language="],
		["category", "/api/v1/fast/leaderboard?category="],
		["types", "/api/v1/stream/global/activity?types="],
		["since", "/api/v1/stream/global/activity?since="],
	])("in one value of %s (%s): 400 naming it", async (name, prefix) => {
		const res = await raw(`${prefix}${"a".repeat(size)}`);
		const err = await expectEnvelope(res, { status: 400, code: "invalid_parameter" });
		expect(namedParameters(err)).toContain(name);
	});

	it("in a path segment: 400 for an id, 404 for an unknown route", async () => {
		const id = await raw(`/api/v1/fast/repositories/${"a".repeat(size)}/summary`, { token: user });
		await expectEnvelope(id, { status: 400, code: "invalid_parameter" });
		const route = await raw(`/${"%F0%9F%92%A9".repeat(size / 12)}`);
		await expectEnvelope(route, { status: 404, code: "not_found" });
	});
});

// ---- odd query shapes ------------------------------------------------------------------------------

describe("odd query shapes", () => {
	const SHAPES = [
		"?",
		"?&",
		"?=",
		"?==&=",
		"?&&&&",
		"?%=%",
		"?%zz=%zz",
		"?+=+",
		"?a=1;b=2",
		"?#frag",
		"?=x&=y",
	];
	const ROUTES: { path: string; token?: () => string; statuses: number[] }[] = [
		{ path: "/api/v1/fast/search", statuses: [400] }, // q is required
		{ path: "/api/v1/fast/search?q=cli&", statuses: [200] },
		{ path: "/api/v1/fast/leaderboard", statuses: [200] },
		{ path: `/api/v1/fast/repositories/${UNKNOWN_REPO}/summary`, token: () => user, statuses: [404] },
		{ path: "/api/v1/stream/global/activity", statuses: [426] },
		{ path: "/api/v1/me", token: () => user, statuses: [200] },
	];
	it.each(ROUTES.flatMap((r) => SHAPES.map((shape) => [r.path, shape, r] as const)))(
		"%s with %s: the normal answer",
		async (path, shape, route) => {
			// A shape after an existing query string continues it.
			const url = path.includes("?") ? `${path}${shape.slice(1)}` : `${path}${shape}`;
			const res = await raw(url, { token: route.token?.() });
			if ((route.statuses[0] ?? 0) >= 400) await expectEnvelope(res, { status: route.statuses[0] });
			else expect(route.statuses, await res.clone().text()).toContain(res.status);
		},
	);
});

// ---- repeated parameters ---------------------------------------------------------------------------

describe("repeated parameters", () => {
	it.each([
		"category=popular&category=quality",
		"timeframe=day&timeframe=day",
		"language=Go&language=Rust",
		"limit=1&limit=100",
	])("leaderboard refuses %s with 400 naming the parameter (documented)", async (query) => {
		const res = await raw(`/api/v1/fast/leaderboard?${query}`);
		const err = await expectEnvelope(res, { status: 400, code: "invalid_parameter" });
		expect(namedParameters(err)).toContain(query.split("=")[0]);
	});

	it.each([
		["q", "q=cli&q=zzzznomatch"],
		["sort", "q=cli&sort=stars&sort=bogus"],
		["limit", "q=cli&limit=1&limit=2"],
		["language", "q=cli&language=Go&language=Rust"],
	])("search refuses %s repeated with 400 naming it (as every route does)", async (name, both) => {
		const res = await raw(`/api/v1/fast/search?${both}`);
		const err = await expectEnvelope(res, { status: 400, code: "invalid_parameter" });
		expect(new Set(namedParameters(err))).toEqual(new Set([name]));
	});

	it.each([
		["since", "since=1&since=x"],
		["types", "types=x-a&types=%00"],
		["shard", "shard=1&shard=2"],
	])("global stream with %s repeated: never 5xx", async (_name, query) => {
		const res = await raw(`/api/v1/stream/global/activity?${query}`);
		await expectEnvelope(res, { status: [400, 426] });
	});

	it("a token parameter hidden among repeats is still refused on the repository stream", async () => {
		const res = await raw(`/api/v1/stream/repository/${UNKNOWN_REPO}/updates?ticket=a&token=x&token=y`, {
			token: user,
			headers: { upgrade: "websocket" },
		});
		const err = await expectEnvelope(res, { status: 400, code: "bad_request" });
		expect(err.message).toContain("URL");
	});
});

// ---- methods -----------------------------------------------------------------------------------

const GET_ROUTES: { path: string; token?: () => string; status: number }[] = [
	{ path: "/health", status: 200 },
	{ path: "/openapi.json", status: 200 },
	{ path: "/docs", status: 200 },
	{ path: "/live", status: 200 },
	{ path: "/api/v1/me", token: () => user, status: 200 },
	{ path: "/api/v1/me", status: 401 },
	{ path: "/api/v1/admin/config", token: () => admin, status: 200 },
	{ path: "/api/v1/admin/config", token: () => user, status: 403 },
	{ path: "/api/v1/fast/search?q=cli", status: 200 },
	{ path: "/api/v1/fast/search", status: 400 },
	{ path: "/api/v1/fast/leaderboard", status: 200 },
	{ path: `/api/v1/fast/repositories/${UNKNOWN_REPO}/summary`, token: () => user, status: 404 },
	{ path: "/api/v1/fast/repositories/by-name/octo/cat/summary", token: () => user, status: 404 },
	{ path: "/api/v1/stream/global/activity", status: 426 },
];

const POST_ROUTES = ["/api/v1/events", "/api/v1/events/batch", "/api/v1/stream/tickets"];

describe("methods", () => {
	it.each(
		GET_ROUTES.flatMap((r) => ["POST", "PUT", "PATCH", "DELETE"].map((m) => [m, r.path, r.token] as const)),
	)("%s %s: 404 or 405 in the envelope", async (method, path, token) => {
		const res = await raw(path, {
			method,
			token: (token ?? (() => service))(),
			headers: { "content-type": "application/json" },
			body: "{}",
		});
		await expectEnvelope(res, { status: [404, 405] });
	});

	it.each(POST_ROUTES.flatMap((p) => ["GET", "PUT", "PATCH", "DELETE"].map((m) => [m, p] as const)))(
		"%s %s: 404 or 405 in the envelope",
		async (method, path) => {
			const res = await raw(path, { method, token: service });
			await expectEnvelope(res, { status: [404, 405] });
		},
	);

	it.each(GET_ROUTES)(
		"HEAD $path: the GET status, no body, the request id",
		async ({ path, token, status }) => {
			const res = await raw(path, { method: "HEAD", token: token?.() });
			expect(res.status).toBe(status);
			expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
			expect((await res.arrayBuffer()).byteLength).toBe(0);
			if (status === 401) expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm=/);
		},
	);

	it.each(POST_ROUTES)("HEAD %s: 404 or 405, no body", async (path) => {
		const res = await raw(path, { method: "HEAD", token: service });
		expect([404, 405]).toContain(res.status);
		expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		expect((await res.arrayBuffer()).byteLength).toBe(0);
	});

	it.each([...GET_ROUTES.map((r) => r.path), ...POST_ROUTES, "/no/such/route"])(
		"OPTIONS %s: a preflight answer or the envelope, never 5xx",
		async (path) => {
			for (const origin of [undefined, "http://127.0.0.1:8787", "https://evil.example"]) {
				const headers: Record<string, string> = origin
					? {
							origin,
							"access-control-request-method": "POST",
							"access-control-request-headers": "authorization",
						}
					: {};
				const res = await raw(path, { method: "OPTIONS", headers });
				expect(res.status).toBeLessThan(500);
				if (res.status >= 400) await expectEnvelope(res);
				else {
					expect([200, 204]).toContain(res.status);
					// Never grants a browser origin outside the allow-list.
					if (origin === "https://evil.example") {
						expect(res.headers.get("access-control-allow-origin")).not.toBe(origin);
						expect(res.headers.get("access-control-allow-origin")).not.toBe("*");
					}
				}
			}
		},
	);
});

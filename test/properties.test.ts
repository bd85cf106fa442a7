// Property-based tests (fast-check) over every endpoint of the API: arbitrary query parameters
// (the endpoint's own names with hostile values, and unknown names), hostile path segments
// (unicode, control characters, lone surrogates as WTF-8 percent-escapes, broken escapes such as
// %zz, dot segments, very long ids), hostile bodies for the POST endpoints and hostile values in
// the headers the service reads. The properties:
//   - never a 5xx (bad input is the caller's problem, never the server's);
//   - every 4xx is the error envelope, its code mapped to the status, its request_id equal to
//     X-Request-Id (429 from the rate limiter included);
//   - every response carries X-Request-Id, the caller's own when it is well-formed;
//   - an accepted WebSocket upgrade (101) starts with a welcome frame.
// Runs are bounded (numRuns per endpoint) and seeded: a failure prints the seed and the
// counterexample path; replay a run with FC_SEED=<seed> npm test (the seed comes from the commit).
// Past 400 lines on purpose: one generator set per endpoint, sharing the arbitraries above them;
// split per endpoint, the shared ones would have to move into yet another helper module.
import fc from "fast-check";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { KNOWN_EVENT_TYPES } from "../src/realtime/protocol";
import { hs256Token } from "./helpers";
import { closeSocket, expectEnvelope, HOSTILE_URL_TEXT, raw } from "./hostile-helpers";
import { seededRepos } from "./realtime-client";

type Role = "user" | "admin" | "service";
const minted = new Map<string, Promise<string>>();
/**
 * A token whose subject belongs to one property: the rate limiter counts per subject, so each
 * property spends its own budget and none spends another suite's.
 */
function tokenFor(role: Role, label: string): Promise<string> {
	const sub = `prop-${label}-${role}`;
	let token = minted.get(sub);
	if (!token) {
		token = hs256Token({ sub, role });
		minted.set(sub, token);
	}
	return token;
}

/** From the commit under test (reproducible per commit, new inputs per commit) or FC_SEED. */
const SEED = inject("fcSeed");
const runs = (numRuns: number) => ({ seed: SEED, numRuns });
const TIMEOUT = 60_000;

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Repository ids nobody has (events about them create hubs: keep the set small). */
const UNKNOWN_REPOS = ["00000000-0000-4000-8000-0000000f00d1", "00000000-0000-4000-8000-0000000f00d2"];

let seeded: string[];

beforeAll(async () => {
	seeded = await seededRepos(200, 3);
	expect(seeded).toHaveLength(3);
});

// ---- arbitraries -------------------------------------------------------------------------------

const hex = (n: number) => `%${n.toString(16).toUpperCase().padStart(2, "0")}`;

/**
 * Percent-encodes any JS string for a URL, including lone surrogates, which encodeURIComponent
 * refuses: they are written as their WTF-8 bytes (%ED%A0%80 …), i.e. invalid UTF-8 on the wire.
 */
function pct(s: string): string {
	let out = "";
	for (const ch of s) {
		const c = ch.codePointAt(0) ?? 0;
		if (c >= 0xd800 && c <= 0xdfff)
			out += hex(0xe0 | (c >> 12)) + hex(0x80 | ((c >> 6) & 0x3f)) + hex(0x80 | (c & 0x3f));
		else out += encodeURIComponent(ch);
	}
	return out;
}

/** One printable ASCII character (what a URL or a header carries unescaped). */
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
/** One UTF-16 code unit: lone surrogates included (fc's "binary" unit never yields them). */
const utf16 = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const hostileConst = fc.constantFrom(...HOSTILE_URL_TEXT);

/** Text for a query value or path segment, already in URL form. */
const urlText: fc.Arbitrary<string> = fc.oneof(
	{ weight: 4, arbitrary: hostileConst },
	{ weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map(pct) },
	{ weight: 2, arbitrary: fc.string({ unit: utf16, maxLength: 20 }).map(pct) },
	{ weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }).map(pct) },
	// Raw printable ASCII, unescaped: stray %, &, =, #, ?, / and spaces as a careless client sends them.
	{
		weight: 2,
		arbitrary: fc.string({ unit: printable, maxLength: 30 }).map((s) => s.replaceAll("#", "")),
	},
	{ weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.bigInt()).map((v) => pct(String(v))) },
	{
		weight: 1,
		arbitrary: fc
			.tuple(fc.constantFrom("a", "%00", "%C3%A9", "%zz", "9"), fc.integer({ min: 100, max: 4000 }))
			.map(([s, n]) => s.repeat(n)),
	},
	{
		weight: 2,
		arbitrary: fc
			.array(fc.oneof(hostileConst, fc.constantFrom("a", "Go", "1", " ", ",")), { maxLength: 6 })
			.map((p) => p.join("")),
	},
);

const hostileKey: fc.Arbitrary<string> = fc.oneof(
	fc.constantFrom(
		"__proto__",
		"constructor",
		"toString",
		"hasOwnProperty",
		"",
		"a[]",
		"q[]",
		"Q",
		"LIMIT",
		"x".repeat(3000),
	),
	urlText,
);

type Values = Record<string, fc.Arbitrary<string>>;

/** A query string: the endpoint's own names (hostile or plausible values, maybe repeated) and unknown names. */
function queryOf(values: Values): fc.Arbitrary<string> {
	const names = Object.keys(values);
	const known = names.length
		? fc
				.constantFrom(...names)
				.chain((n) => fc.tuple(fc.constant(n), fc.oneof(values[n] ?? urlText, urlText), fc.boolean()))
		: null;
	const unknown = fc.tuple(hostileKey, urlText, fc.boolean());
	const pair = known ? fc.oneof({ weight: 3, arbitrary: known }, { weight: 1, arbitrary: unknown }) : unknown;
	return fc.array(pair, { maxLength: 6 }).map((pairs) => {
		const parts = pairs.map(([k, v, withValue]) => (withValue || v ? `${k}=${v}` : k));
		return parts.length ? `?${parts.join("&")}` : "";
	});
}

/** Hostile values in headers the service reads (printable ASCII: what Headers lets through). */
const headerText = fc.string({
	unit: printable,
	maxLength: 60,
});
const hostileHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
	{
		"cache-control": fc.oneof(
			headerText,
			fc.constantFrom(
				"no-cache",
				"no-store",
				"max-age=0",
				"max-age=99999999999",
				"max-age=-1",
				"max-age=1e3",
			),
		),
		"if-none-match": fc.oneof(headerText, fc.constantFrom("*", 'W/"x"', '"', ",,,")),
		"x-request-id": fc.oneof(headerText, fc.stringMatching(/^[A-Za-z0-9._:-]{8,40}$/)),
		accept: fc.oneof(headerText, fc.constantFrom("*/*", "text/html", "application/xml")),
	},
	{ requiredKeys: [] },
);

/** A path segment: hostile text, a UUID (maybe upper-case), or a seeded repository id. */
const segment: fc.Arbitrary<string> = fc.oneof(
	{ weight: 4, arbitrary: urlText.filter((s) => s.length > 0) },
	{ weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
	{ weight: 1, arbitrary: fc.uuid() },
	{ weight: 1, arbitrary: fc.constantFrom(".", "..", "%2e", "%2E%2E", "...", "a%2Fb", "a/b") },
);

const SORTS = ["relevance", "stars", "forks", "updated"];
const qText = fc.oneof(
	fc
		.array(
			fc.constantFrom(
				"cli",
				"api",
				"go",
				"rust",
				"web",
				"language:go",
				"language:",
				"topic:cli",
				"topic:",
				"stars:>100",
				"stars:10..50",
				"stars:>99999999999",
				"stars:*..*",
				"stars:..",
				"stars:-5",
				"fork:false",
				"fork:maybe",
				'"a phrase"',
				'"',
				"-cli",
				"-",
				"--",
				"&",
				"|",
				"!",
				"(",
				")",
				"'",
				"\\",
				":*",
				"<->",
				"%00",
				"%E2%80%AE",
				"%ED%A0%80",
				"%F0%9F%92%A9",
				"%zz",
				"+",
				"%20",
			),
			{ minLength: 1, maxLength: 10 },
		)
		.map((parts) => parts.join("%20")),
	urlText,
);

// ---- the properties -----------------------------------------------------------------------------

interface Sent {
	path: string;
	method?: string;
	token?: string;
	headers?: Record<string, string>;
	body?: string | null;
}

/** Sends one request and checks the invariants; returns the status. */
async function check(req: Sent): Promise<number> {
	const res = await raw(req.path, {
		method: req.method,
		token: req.token,
		headers: req.headers,
		body: req.body ?? null,
	});
	const label = `${req.method ?? "GET"} ${req.path.slice(0, 300)} -> ${res.status}`;
	const sentId = req.headers?.["x-request-id"];
	const id = res.headers.get("x-request-id");
	// GET /ping is answered before any middleware (the load balancers' bare liveness route).
	const bare = req.path.startsWith("/ping") && res.status < 400;
	if (sentId !== undefined && SAFE_REQUEST_ID.test(sentId.trim())) expect(id, label).toBe(sentId.trim());
	else if (!bare) expect(id, label).toMatch(UUID);
	if (res.status === 101) {
		await expectWelcome(res, label);
		return 101;
	}
	expect(res.status, label).toBeLessThan(500);
	if (res.status >= 400 && req.method !== "HEAD") await expectEnvelope(res);
	else await res.arrayBuffer();
	return res.status;
}

/** An accepted upgrade: the first frame is the welcome. Closes the socket. */
async function expectWelcome(res: Response, label: string): Promise<void> {
	const ws = res.webSocket;
	expect(ws, label).toBeTruthy();
	if (!ws) return;
	const first = new Promise<string>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`${label}: no frame within 3 s`)), 3000);
		ws.addEventListener("message", (e) => {
			clearTimeout(timer);
			resolve(String(e.data));
		});
		ws.addEventListener("close", (e) => {
			clearTimeout(timer);
			reject(new Error(`${label}: closed ${e.code} before any frame`));
		});
	});
	ws.accept();
	try {
		expect((JSON.parse(await first) as { type: string }).type, label).toBe("welcome");
	} finally {
		closeSocket(res);
	}
}

const statuses = new Map<string, Map<number, number>>();
/** Records which statuses a property saw, so a run that only ever hit one path is visible. */
function seen(name: string, status: number): void {
	const m = statuses.get(name) ?? new Map<number, number>();
	m.set(status, (m.get(status) ?? 0) + 1);
	statuses.set(name, m);
}
/** Asserts a property exercised both accepted and refused requests (the generators are not lopsided). */
function expectBoth(name: string, ok: (s: number) => boolean = (s) => s < 400) {
	const m = [...(statuses.get(name)?.keys() ?? [])];
	expect(m.some(ok), `${name} saw ${m.join(",")}`).toBe(true);
	expect(
		m.some((s) => s >= 400),
		`${name} saw ${m.join(",")}`,
	).toBe(true);
}

describe("public GET endpoints", () => {
	it.each([
		["/health", 30],
		["/openapi.json", 30],
		["/docs", 30],
		["/live", 30],
		// Unprotected here: the test configuration sets no METRICS_TOKEN.
		["/metrics", 20],
	] as const)("%s: any query and headers", { timeout: TIMEOUT }, async (path, n) => {
		await fc.assert(
			fc.asyncProperty(queryOf({}), hostileHeaders, async (query, headers) => {
				const status = await check({ path: `${path}${query}`, headers });
				// These ignore their query: only a rate limit may refuse them.
				expect([200, 304, 429], `${path}${query}`).toContain(status);
			}),
			runs(n),
		);
	});

	it("/api/v1/fast/search", { timeout: TIMEOUT }, async () => {
		const values: Values = {
			q: qText,
			language: fc.constantFrom(
				"go",
				"Go",
				"golang",
				"C%2B%2B",
				"C%23",
				"Jupyter%20Notebook",
				"jupyter-notebook",
				"%E4%BD%A0",
				"Ren'Py",
				"",
			),
			min_stars: fc.oneof(
				fc.integer({ min: -5, max: 3_000_000_000 }).map(String),
				fc.constantFrom("", "1.5", "1e3", "0x1"),
			),
			sort: fc.constantFrom(...SORTS, "STARS", "random", ""),
			limit: fc.oneof(fc.integer({ min: -1, max: 200 }).map(String), fc.constantFrom("", "20.0", "1e2")),
			offset: fc.oneof(
				fc.integer({ min: -1, max: 20_000 }).map(String),
				fc.constantFrom("9999", "10000", ""),
			),
		};
		await fc.assert(
			fc.asyncProperty(
				fc.option(qText, { nil: undefined }),
				queryOf(values),
				hostileHeaders,
				async (q, query, headers) => {
					// q first (most requests need it), then anything else, q possibly repeated.
					const path = `/api/v1/fast/search${q === undefined ? query : `?q=${q}${query.replace(/^\?/, "&")}`}`;
					seen("search", await check({ path, headers }));
				},
			),
			runs(200),
		);
		expectBoth("search");
	});

	it("/api/v1/fast/leaderboard", { timeout: TIMEOUT }, async () => {
		const values: Values = {
			category: fc.constantFrom("trending", "popular", "quality", "POPULAR", "%20quality%20", "best", ""),
			timeframe: fc.constantFrom("day", "week", "month", "year", "Week", "decade", ""),
			language: fc.constantFrom(
				"Python",
				"python",
				"C%2B%2B",
				"Ren'Py",
				"F*",
				"Visual%20Basic%20.NET",
				"",
				"%00",
				"a".repeat(51),
			),
			limit: fc.oneof(
				fc.integer({ min: -1, max: 150 }).map(String),
				fc.constantFrom("", "1e2", "007", " 5 "),
			),
		};
		await fc.assert(
			fc.asyncProperty(queryOf(values), hostileHeaders, async (query, headers) => {
				seen("leaderboard", await check({ path: `/api/v1/fast/leaderboard${query}`, headers }));
			}),
			runs(150),
		);
		expectBoth("leaderboard");
	});

	it("unknown paths", { timeout: TIMEOUT }, async () => {
		const prefix = fc.constantFrom(
			"",
			"/api",
			"/api/v1",
			"/api/v1/fast",
			"/api/v1/stream",
			"/api/v1/events",
			"/health",
			"/docs",
		);
		await fc.assert(
			fc.asyncProperty(
				prefix,
				fc.array(segment, { minLength: 1, maxLength: 5 }),
				queryOf({}),
				async (p, segs, query) => {
					const path = `${p}/${segs.join("/")}${query}`;
					const status = await check({ path });
					// A generated path that is really a route, or resolves to one (dot segments), may answer.
					if (status < 400) expect(status, path).toBe(200);
				},
			),
			runs(150),
		);
	});
});

describe("authenticated GET endpoints", () => {
	it("/api/v1/fast/repositories/{repo_id}/summary", { timeout: TIMEOUT }, async () => {
		const id = fc.oneof(
			{ weight: 4, arbitrary: segment },
			{ weight: 1, arbitrary: fc.constantFrom(0, 1, 2).map((i) => seeded[i] ?? "") },
		);
		await fc.assert(
			fc.asyncProperty(id, queryOf({}), hostileHeaders, async (repoId, query, headers) => {
				const path = `/api/v1/fast/repositories/${repoId}/summary${query}`;
				seen("summary", await check({ path, token: await tokenFor("user", "summary"), headers }));
			}),
			runs(150),
		);
		expectBoth("summary");
	});

	it("/api/v1/fast/repositories/by-name/{owner}/{name}/summary", { timeout: TIMEOUT }, async () => {
		const plausible = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9-]{0,10}$/);
		const part = fc.oneof({ weight: 2, arbitrary: segment }, { weight: 1, arbitrary: plausible });
		await fc.assert(
			fc.asyncProperty(part, part, queryOf({}), async (owner, name, query) => {
				const path = `/api/v1/fast/repositories/by-name/${owner}/${name}/summary${query}`;
				seen("by-name", await check({ path, token: await tokenFor("user", "by-name") }));
			}),
			runs(100),
		);
		// Plausible names of repositories that do not exist: 404 is the "accepted" answer here.
		expectBoth("by-name", (s) => s === 404);
	});

	it.each([
		["/api/v1/me", "user"],
		["/api/v1/admin/config", "admin"],
		["/api/v1/system/stats", "admin"],
	] as const)("%s: any query and headers", { timeout: TIMEOUT }, async (path, role) => {
		await fc.assert(
			fc.asyncProperty(queryOf({}), hostileHeaders, async (query, headers) => {
				const status = await check({ path: `${path}${query}`, token: await tokenFor(role, path), headers });
				expect([200, 429], `${path}${query}`).toContain(status);
			}),
			runs(40),
		);
	});
});

// ---- POST endpoints -------------------------------------------------------------------------------

const jsonTypes = fc.oneof(
	{ weight: 6, arbitrary: fc.constant("application/json") },
	{
		weight: 1,
		arbitrary: fc.constantFrom(
			"application/json; charset=utf-8",
			"APPLICATION/JSON",
			"text/plain",
			"application/x-www-form-urlencoded",
			"application/jsonx",
			"application/vnd.api+json",
			"",
		),
	},
);

const eventId = fc.oneof(
	fc.stringMatching(/^[A-Za-z0-9._:-]{1,24}$/).map((s) => `prop-${s}`),
	fc.string({ unit: utf16, maxLength: 20 }),
	fc.constant("x".repeat(129)),
);
const eventType = fc.oneof(
	{ weight: 3, arbitrary: fc.constantFrom(...KNOWN_EVENT_TYPES, "x-prop.test", "x-prop_2") },
	{
		weight: 2,
		arbitrary: fc.constantFrom(
			"x-",
			"X-a",
			"x-A",
			"welcome",
			"ack",
			"error",
			"",
			`x-${"a".repeat(63)}`,
			"x-a b",
			"x-é",
		),
	},
	{ weight: 1, arbitrary: fc.string({ unit: utf16, maxLength: 20 }) },
);
const knownRepo = fc.constantFrom(...UNKNOWN_REPOS, ...UNKNOWN_REPOS.map((u) => u.toUpperCase()));
const repositoryId = fc.oneof(
	knownRepo,
	fc.constantFrom("", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", `{${UNKNOWN_REPOS[0]}}`),
	fc.string({ unit: utf16, maxLength: 40 }),
);
const validDate = fc.date({ noInvalidDate: true, min: new Date("1970-01-01"), max: new Date("2100-01-01") });
const timestamp = fc.oneof(
	validDate.map((d) => d.toISOString()),
	fc
		.date({ noInvalidDate: true, min: new Date(-8.64e15), max: new Date(8.64e15) })
		.map((d) => d.toISOString()),
	fc.constantFrom(
		"2025-02-30T00:00:00Z",
		"2025-01-01T00:00:00+24:00",
		"2025-01-01T24:00:00Z",
		"2025-01-01",
		"yesterday",
		"0000-01-01T00:00:00Z",
	),
	fc.string({ unit: utf16, maxLength: 30 }),
);
/** Valid data that is hostile inside: any UTF-16 (lone surrogates, NUL, RTL override) in keys and values. */
const eventData = fc.dictionary(
	fc.string({ unit: utf16, maxLength: 12 }),
	fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: utf16, maxLength: 20 })),
	{ maxKeys: 6 },
);
/** An event the service must accept (202), carrying hostile but valid content. */
const validEvent = fc.record(
	{
		id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,24}$/).map((s) => `prop-${s}`),
		type: fc.constantFrom(...KNOWN_EVENT_TYPES, "x-prop.test", "x-prop_2"),
		repository_id: knownRepo,
		timestamp: validDate.map((d) => d.toISOString()),
		data: eventData,
	},
	{ requiredKeys: ["type", "repository_id"] },
);
/** Anything shaped roughly like an event. */
const hostileEvent = fc.record(
	{
		id: eventId,
		type: eventType,
		repository_id: repositoryId,
		timestamp,
		data: fc.oneof(
			{ weight: 3, arbitrary: eventData },
			{ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
		),
		user_id: fc.string({ unit: utf16 }),
	},
	{ requiredKeys: [] },
);
const eventObject = fc.oneof({ weight: 2, arbitrary: validEvent }, { weight: 3, arbitrary: hostileEvent });
const anyJson = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
const garbage = fc.oneof(
	fc.string({ unit: utf16, maxLength: 60 }),
	fc.constantFrom(
		"",
		"{",
		"}",
		"nul",
		"[1,",
		"{'a':1}",
		'{"a":1,}',
		"NaN",
		"{} x",
		"\ufeff{}",
		'{"type":"x-a"',
	),
);

function bodyOf(obj: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
	return fc.oneof(
		{ weight: 6, arbitrary: obj.map((v) => JSON.stringify(v)) },
		{ weight: 1, arbitrary: anyJson },
		{ weight: 1, arbitrary: garbage },
	);
}

describe("POST endpoints", () => {
	const cases: [string, Role, fc.Arbitrary<string>, number][] = [
		["/api/v1/events", "service", bodyOf(eventObject), 120],
		[
			"/api/v1/events/batch",
			"service",
			bodyOf(fc.record({ events: fc.array(eventObject, { maxLength: 4 }) })),
			60,
		],
		[
			"/api/v1/stream/tickets",
			"user",
			bodyOf(
				fc.oneof(
					fc.record({ repository_id: knownRepo }),
					fc.record({ repository_id: repositoryId, extra: fc.string({ unit: utf16 }) }, { requiredKeys: [] }),
				),
			),
			80,
		],
	];

	it.each(cases)(
		"%s: any body, content type and query",
		{ timeout: TIMEOUT },
		async (path, role, body, n) => {
			await fc.assert(
				fc.asyncProperty(body, jsonTypes, queryOf({}), async (text, type, query) => {
					const headers = type ? { "content-type": type } : undefined;
					seen(
						path,
						await check({
							path: `${path}${query}`,
							method: "POST",
							token: await tokenFor(role, path),
							headers,
							body: text,
						}),
					);
				}),
				runs(n),
			);
			expectBoth(path);
		},
	);
});

// ---- streams: the refusals before the upgrade, and upgrades that succeed ---------------------------

const streamValues: Values = {
	since: fc.oneof(
		fc.nat().map(String),
		fc.constantFrom("0", "999999999999999", "9999999999999999", "-1", "1.5", ""),
	),
	types: fc.oneof(
		fc
			.array(fc.constantFrom(...KNOWN_EVENT_TYPES, "x-prop.test", "x-", "bogus", "%20", ""), {
				maxLength: 10,
			})
			.map((t) => t.join(",")),
		fc.constant(Array.from({ length: 9 }, (_, i) => `x-t${i}`).join(",")),
	),
	shard: fc.oneof(fc.integer({ min: -1, max: 1000 }).map(String), fc.constantFrom("", "3", "0x1")),
	ticket: fc.oneof(fc.constantFrom("", "abc", "a.b.c"), fc.constant("t".repeat(3000))),
};
const hostileStreamHeaders = fc.record(
	{
		upgrade: fc.constantFrom("websocket", "WebSocket", "h2c", ""),
		"sec-websocket-protocol": fc.constantFrom(
			"gitinsight.v1",
			"gitinsight.v2",
			"gitinsight.v1, bearer.abc",
			", ,",
			"bearer.x",
		),
		origin: fc.constantFrom("http://127.0.0.1:8787", "https://evil.example", "null"),
	},
	{ requiredKeys: [] },
);
/** Everything a real client sends: Upgrade, maybe our subprotocol and an allowed Origin, valid values. */
const plausibleStream = fc.record({
	query: fc
		.record(
			{
				since: fc.oneof(fc.nat({ max: 50 }), fc.constant(999_999_999_999_999)).map(String),
				types: fc
					.uniqueArray(fc.constantFrom(...KNOWN_EVENT_TYPES, "x-prop.test"), { minLength: 1, maxLength: 8 })
					.map((t) => t.join(",")),
				shard: fc.integer({ min: 0, max: 5 }).map(String),
			},
			{ requiredKeys: [] },
		)
		.map((q) => {
			const parts = Object.entries(q).map(([k, v]) => `${k}=${v}`);
			return parts.length ? `?${parts.join("&")}` : "";
		}),
	headers: fc
		.record(
			{
				"sec-websocket-protocol": fc.constant("gitinsight.v1"),
				origin: fc.constantFrom("http://127.0.0.1:8787", "http://localhost:8787"),
			},
			{ requiredKeys: [] },
		)
		.map((h): Record<string, string> => ({ ...h, upgrade: "websocket" })),
});
const streamScenario = fc.oneof(
	{ weight: 1, arbitrary: plausibleStream },
	{ weight: 2, arbitrary: fc.record({ query: queryOf(streamValues), headers: hostileStreamHeaders }) },
);

describe("streams", () => {
	it("/api/v1/stream/repository/{repo_id}/updates", { timeout: TIMEOUT }, async () => {
		const id = fc.oneof(
			{ weight: 1, arbitrary: segment },
			{ weight: 2, arbitrary: fc.constantFrom(0, 1, 2).map((i) => seeded[i] ?? "") },
		);
		await fc.assert(
			fc.asyncProperty(id, streamScenario, fc.boolean(), async (repoId, { query, headers }, anonymous) => {
				const path = `/api/v1/stream/repository/${repoId}/updates${query}`;
				seen(
					"repo-stream",
					await check({
						path,
						headers,
						token: anonymous ? undefined : await tokenFor("user", "repo-stream"),
					}),
				);
			}),
			runs(120),
		);
		expectBoth("repo-stream", (s) => s === 101);
	});

	it("/api/v1/stream/global/activity", { timeout: TIMEOUT }, async () => {
		await fc.assert(
			fc.asyncProperty(streamScenario, async ({ query, headers }) => {
				seen("global-stream", await check({ path: `/api/v1/stream/global/activity${query}`, headers }));
			}),
			runs(80),
		);
		expectBoth("global-stream", (s) => s === 101);
	});
});

// ---- methods ------------------------------------------------------------------------------------

describe("any method on any route", () => {
	const PATHS = [
		"/health",
		"/openapi.json",
		"/docs",
		"/live",
		"/ping",
		"/api/v1/me",
		"/api/v1/admin/config",
		"/api/v1/system/stats",
		"/metrics",
		`/api/v1/fast/repositories/${UNKNOWN_REPOS[0]}/summary`,
		"/api/v1/fast/repositories/by-name/octo/cat/summary",
		"/api/v1/fast/search?q=cli",
		"/api/v1/fast/leaderboard",
		"/api/v1/events",
		"/api/v1/events/batch",
		"/api/v1/stream/tickets",
		`/api/v1/stream/repository/${UNKNOWN_REPOS[0]}/updates`,
		"/api/v1/stream/global/activity",
	];
	const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

	it("never 5xx; refusals in the envelope", { timeout: TIMEOUT }, async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.constantFrom(...PATHS),
				fc.constantFrom(...METHODS),
				fc.constantFrom<Role>("user", "admin", "service"),
				fc.option(anyJson, { nil: undefined }),
				async (path, method, role, body) => {
					const hasBody = body !== undefined && method !== "GET" && method !== "HEAD";
					await check({
						path,
						method,
						token: await tokenFor(role, "methods"),
						headers: hasBody ? { "content-type": "application/json" } : undefined,
						body: hasBody ? body : null,
					});
				},
			),
			runs(150),
		);
	});
});

// Shared by the hostile-input suites (jwt-attacks, properties, hostile): the one assertion they
// all make — a refusal is a 4xx in the API's error envelope whose request id is the X-Request-Id
// header and whose code maps to the status — plus raw requests (any URL, method and body, no
// helper normalising them) and the hostile strings the suites draw from.
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { type ErrorBody, type ErrorCode, statusOf } from "../src/errors";

export const BASE = "http://gitinsight.test";

export const ERROR_CODES: readonly ErrorCode[] = [
	"bad_request",
	"invalid_parameter",
	"unauthorized",
	"forbidden",
	"not_found",
	"method_not_allowed",
	"payload_too_large",
	"unsupported_media_type",
	"upgrade_required",
	"rate_limited",
	"service_unavailable",
	"internal_error",
];

export interface RawInit {
	method?: string;
	headers?: Record<string, string>;
	token?: string;
	body?: BodyInit | null;
}

/**
 * A client address of its own for one request (198.18.0.0/15, the benchmarking range). These
 * suites send thousands of requests, most of them anonymous or with invalid tokens, which the
 * rate limiter counts per client address: without this they would all spend the one budget of
 * "no address" that the other suites' anonymous requests share, turning answers under test
 * there and here into 429s.
 */
export function clientAddress(): string {
	const [a = 0, b = 0, c = 0] = crypto.getRandomValues(new Uint8Array(3));
	return `198.${18 + (a & 1)}.${b}.${c}`;
}

/** A request exactly as given (path and query untouched), with a client address of its own. */
export function request(pathAndQuery: string, init: RawInit = {}): Request {
	const headers = new Headers(init.headers);
	if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", clientAddress());
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	return new Request(`${BASE}${pathAndQuery}`, {
		method: init.method ?? "GET",
		headers,
		body: init.body ?? null,
		...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
	});
}

/** Sends a request through the Worker's real entry point (the whole middleware stack). */
export function send(req: Request): Promise<Response> {
	return exports.default.fetch(req);
}

/** request() then send(). */
export function raw(pathAndQuery: string, init: RawInit = {}): Promise<Response> {
	return send(request(pathAndQuery, init));
}

/** A JSON POST with the given token. */
export function postJson(
	path: string,
	body: string | Uint8Array,
	token?: string,
	contentType = "application/json",
) {
	return raw(path, { method: "POST", token, body, headers: { "content-type": contentType } });
}

/**
 * Asserts the one error shape: a 4xx (never 5xx), JSON, {error:{code, message, request_id}},
 * code mapped to this status, request_id equal to X-Request-Id. Reads the body.
 */
export async function expectEnvelope(
	res: Response,
	expected: { status?: number | readonly number[]; code?: ErrorCode } = {},
): Promise<ErrorBody["error"]> {
	const text = await res.text();
	const where = `${res.status} ${text.slice(0, 300)}`;
	expect(res.status, where).toBeGreaterThanOrEqual(400);
	expect(res.status, where).toBeLessThan(500);
	if (typeof expected.status === "number") expect(res.status, where).toBe(expected.status);
	else if (expected.status) expect(expected.status, where).toContain(res.status);
	expect(res.headers.get("content-type"), where).toMatch(/^application\/json/);
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		throw new Error(`error body is not JSON: ${where}`);
	}
	const err = (body as Partial<ErrorBody>).error;
	expect(err, where).toBeTypeOf("object");
	if (!err) throw new Error(`no error object: ${where}`);
	expect(ERROR_CODES, where).toContain(err.code);
	expect(statusOf(err.code), where).toBe(res.status);
	expect(err.message, where).toBeTypeOf("string");
	expect(err.message.length, where).toBeGreaterThan(0);
	expect(err.request_id, where).toBeTypeOf("string");
	expect(err.request_id, where).toBe(res.headers.get("x-request-id"));
	if (expected.code) expect(err.code, where).toBe(expected.code);
	return err;
}

/** The offending parameters an error names (a parameter's own issues may be under "name.0"). */
export function namedParameters(err: ErrorBody["error"]): string[] {
	return (err.details ?? []).flatMap((d) =>
		d.parameter ? [d.parameter, d.parameter.split(".")[0] ?? ""] : [],
	);
}

/** Closes the client end of an accepted WebSocket (a 101), so property runs leave no sockets. */
export function closeSocket(res: Response): void {
	const ws = res.webSocket;
	if (!ws) return;
	try {
		ws.accept();
		ws.close(1000, "done");
	} catch {
		// already closed
	}
}

/**
 * Hostile text as it appears in a URL: already percent-encoded or deliberately broken, so it is
 * placed into a path segment or query value verbatim.
 */
export const HOSTILE_URL_TEXT: readonly string[] = [
	"%00", // NUL
	"a%00b",
	"%01%02%1F%7F", // other controls
	"%0D%0AX-Injected:%201", // CRLF header injection attempt
	"%E2%80%AE", // RTL override
	"%E2%80%8B%E2%80%8D", // zero-width space, joiner
	"%EF%BB%BF", // BOM
	"%ED%A0%80", // lone high surrogate, UTF-8 encoded (invalid UTF-8)
	"%ED%B0%80", // lone low surrogate
	"%EF%BF%BF", // noncharacter
	"%F4%90%80%80", // beyond U+10FFFF
	"%C0%AF", // overlong '/'
	"%FF%FE",
	"%zz", // broken escapes
	"%",
	"%E0%A4%A",
	"%25",
	"%2F",
	"%2e%2e",
	"..",
	"%F0%9F%92%A9", // emoji
	"%E4%BD%A0%E5%A5%BD", // CJK
	"%EF%BC%A1", // full-width A
	"+",
	"%20%20",
	"-1",
	"1e309",
	"NaN",
	"0x10",
	"99999999999999999999999999",
	"__proto__",
	"%3Cscript%3Ealert(1)%3C%2Fscript%3E",
	"'%3B%20DROP%20TABLE%20repositories%3B--",
	"stars%3A%3E99999999999",
	"language%3A%00",
];

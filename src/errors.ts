// One error vocabulary for the whole API: a code union mapped to HTTP status in one exhaustive
// switch, one JSON envelope carrying the request id, and the app's onError/notFound handlers.
// The wire gets a clear message; internal detail goes to the logs only.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import type { AppEnv, ConfigError } from "./env";

export type ErrorCode =
	| "bad_request"
	| "invalid_parameter"
	| "unauthorized"
	| "forbidden"
	| "not_found"
	| "method_not_allowed"
	| "payload_too_large"
	| "unsupported_media_type"
	| "upgrade_required"
	| "rate_limited"
	| "service_unavailable"
	| "internal_error";

export function statusOf(code: ErrorCode): ContentfulStatusCode {
	switch (code) {
		case "bad_request":
		case "invalid_parameter":
			return 400;
		case "unauthorized":
			return 401;
		case "forbidden":
			return 403;
		case "not_found":
			return 404;
		case "method_not_allowed":
			return 405;
		case "payload_too_large":
			return 413;
		case "unsupported_media_type":
			return 415;
		case "upgrade_required":
			return 426;
		case "rate_limited":
			return 429;
		case "service_unavailable":
			return 503;
		case "internal_error":
			return 500;
		default:
			return assertNever(code);
	}
}

export function assertNever(value: never): never {
	throw new Error(`unexpected value: ${String(value)}`);
}

export interface ErrorDetail {
	/** The parameter (query, path or body field) the problem is about. */
	parameter?: string;
	message: string;
}

export interface ErrorBody {
	error: { code: ErrorCode; message: string; request_id: string; details?: ErrorDetail[] };
}

export class ApiError extends Error {
	override name = "ApiError";
	constructor(
		readonly code: ErrorCode,
		message: string,
		readonly opts: { details?: ErrorDetail[]; headers?: Record<string, string> } = {},
	) {
		super(message);
	}
}

function errorResponse(c: Context<AppEnv>, err: ApiError): Response {
	c.set("errorCode", err.code);
	const body: ErrorBody = {
		error: {
			code: err.code,
			message: err.message,
			request_id: c.get("requestId") ?? "unknown",
			...(err.opts.details ? { details: err.opts.details } : {}),
		},
	};
	return c.json(body, statusOf(err.code), err.opts.headers);
}

function codeForStatus(status: number): ErrorCode {
	switch (status) {
		case 401:
			return "unauthorized";
		case 403:
			return "forbidden";
		case 404:
			return "not_found";
		case 405:
			return "method_not_allowed";
		case 413:
			return "payload_too_large";
		case 415:
			return "unsupported_media_type";
		case 429:
			return "rate_limited";
		case 503:
			return "service_unavailable";
		default:
			return status >= 500 ? "internal_error" : "bad_request";
	}
}

/** zod issues → one detail per offending parameter. */
export function zodDetails(error: z.ZodError): ErrorDetail[] {
	return error.issues.map((i) => ({
		parameter: i.path.map(String).join(".") || undefined,
		message: i.message,
	}));
}

export function onError(err: Error, c: Context<AppEnv>): Response {
	if (err instanceof ApiError) return errorResponse(c, err);
	if (err instanceof z.ZodError) {
		return errorResponse(
			c,
			new ApiError("invalid_parameter", "invalid request", { details: zodDetails(err) }),
		);
	}
	if (err instanceof HTTPException) {
		// Hono's own 4xx (e.g. malformed JSON in a validator, body limits) keep their status.
		const code = codeForStatus(err.status);
		const message = err.status >= 500 ? "internal error" : err.message || "bad request";
		return errorResponse(c, new ApiError(code, message));
	}
	console.error(
		JSON.stringify({
			level: "error",
			msg: "unhandled error",
			request_id: c.get("requestId"),
			error: err.name,
			detail: err.message,
			stack: err.stack,
		}),
	);
	return errorResponse(c, new ApiError("internal_error", "internal error"));
}

// Isolate-scoped: the configuration refusals already logged (one line per isolate and reason).
const loggedRefusals = new WeakSet<ConfigError>();

/**
 * 503 for every request while the configuration is refused (src/env.ts): the reasons go to the
 * log once per isolate, never to the caller (they name the deployment's settings).
 */
export function misconfigured(c: Context<AppEnv>, err: ConfigError): Response {
	if (!loggedRefusals.has(err)) {
		loggedRefusals.add(err);
		console.error(
			JSON.stringify({
				level: "error",
				msg: "configuration refused: answering 503 to every request until it is fixed",
				environment: c.env.ENVIRONMENT,
				problems: err.problems,
			}),
		);
	}
	return errorResponse(
		c,
		new ApiError("service_unavailable", "the service is misconfigured and cannot serve requests", {
			headers: { "Retry-After": "300" },
		}),
	);
}

/** 405 with `Allow`, for a path that exists with other methods. */
export function methodNotAllowed(c: Context<AppEnv>, allow: string[]): Response {
	return errorResponse(
		c,
		new ApiError("method_not_allowed", `${c.req.method} is not allowed here; use ${allow.join(", ")}`, {
			headers: { Allow: allow.join(", ") },
		}),
	);
}

export function notFound(c: Context<AppEnv>): Response {
	return errorResponse(
		c,
		new ApiError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`),
	);
}

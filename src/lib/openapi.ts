// OpenAPI 3.1 from the same zod schemas the handlers validate with: each feature describes its
// operations with `ApiOperation`; `buildOpenApi` turns them into one document (JSON Schema
// 2020-12, which OpenAPI 3.1 uses natively).
import { z } from "zod";

export interface ApiOperation {
	method: "get" | "post";
	/** OpenAPI path template, e.g. /api/v1/fast/repositories/{repo_id}/summary */
	path: string;
	summary: string;
	description?: string;
	tag: string;
	/** Roles that may call it; absent = public. */
	roles?: string[];
	pathParams?: z.ZodObject;
	query?: z.ZodObject;
	response: z.ZodType;
	/** Error statuses beyond the ones every operation can answer (400, 404, 429, 500, 503). */
	errors?: number[];
	/** Whether the answer is served through the layered cache (adds X-Cache headers, 304). */
	cached?: boolean;
	/** The 200 answer's media type when it is not JSON (e.g. Prometheus text). */
	mediaType?: string;
}

const ErrorEnvelope = z.object({
	error: z.object({
		code: z.string().describe("machine-readable error code"),
		message: z.string(),
		request_id: z.string(),
		details: z.array(z.object({ parameter: z.string().optional(), message: z.string() })).optional(),
	}),
});

type JsonSchema = Record<string, unknown>;

function schemaOf(type: z.ZodType, io: "input" | "output"): JsonSchema {
	const { $schema: _ignored, ...rest } = z.toJSONSchema(type, { io, unrepresentable: "any" }) as JsonSchema;
	return rest;
}

function parameters(obj: z.ZodObject | undefined, where: "path" | "query") {
	if (!obj) return [];
	const json = schemaOf(obj, "input") as { properties?: Record<string, JsonSchema>; required?: string[] };
	return Object.entries(json.properties ?? {}).map(([name, schema]) => ({
		name,
		in: where,
		required: where === "path" || (json.required ?? []).includes(name),
		...(typeof schema.description === "string" ? { description: schema.description } : {}),
		schema,
	}));
}

const ERROR_TEXT: Record<number, string> = {
	304: "Not modified (If-None-Match matched the ETag)",
	400: "Invalid parameter (the envelope's details name it)",
	401: "Missing or invalid bearer token",
	403: "The token's role is not allowed here",
	404: "Not found",
	413: "The body is over the endpoint's limit",
	415: "The body must be application/json",
	426: "WebSocket upgrade required",
	429: "Rate limited (Retry-After)",
	500: "Internal error (never for bad input)",
	503: "A dependency is unavailable and nothing cached can stand in (Retry-After)",
};

export function buildOpenApi(ops: ApiOperation[], info: { version: string }) {
	const paths: Record<string, Record<string, unknown>> = {};
	for (const op of ops) {
		const statuses = new Set([400, 404, 429, 500, 503, ...(op.errors ?? [])]);
		if (op.roles) {
			statuses.add(401);
			statuses.add(403);
		}
		const responses: Record<string, unknown> = {
			200: {
				description: "OK",
				...(op.cached
					? {
							headers: {
								"X-Cache": { schema: { enum: ["HIT", "MISS", "STALE"] } },
								"X-Cache-Tier": { schema: { enum: ["memory", "edge", "redis", "origin"] } },
								Age: { schema: { type: "integer" } },
								ETag: { schema: { type: "string" } },
							},
						}
					: {}),
				content: { [op.mediaType ?? "application/json"]: { schema: schemaOf(op.response, "output") } },
			},
		};
		if (op.cached) responses[304] = { description: ERROR_TEXT[304] };
		for (const status of [...statuses].sort()) {
			responses[status] = {
				description: ERROR_TEXT[status] ?? "Error",
				content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
			};
		}
		const item = paths[op.path] ?? {};
		paths[op.path] = item;
		item[op.method] = {
			summary: op.summary,
			...(op.description ? { description: op.description } : {}),
			tags: [op.tag],
			operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
			...(op.roles ? { security: [{ bearer: [] }], "x-roles": op.roles } : {}),
			parameters: [...parameters(op.pathParams, "path"), ...parameters(op.query, "query")],
			responses,
		};
	}
	return {
		openapi: "3.1.0",
		info: {
			title: "GitInsight Edge API",
			version: info.version,
			description:
				"Fast repository reads (summary, faceted search, leaderboards) served from the edge, plus operations endpoints.",
		},
		servers: [{ url: "/" }],
		components: {
			securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
			schemas: { Error: schemaOf(ErrorEnvelope, "output") },
		},
		paths,
	};
}

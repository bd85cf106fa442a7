// Input validation with zod: a failure is a 400 in the API's envelope naming each parameter.
// Query strings go through parseQuery, which applies singleQuery first: every parameter the API takes is single-valued, so
// a repeated one (`?limit=1&limit=100`) is refused rather than guessed.
import type { z } from "zod";
import { ApiError, zodDetails } from "../errors";

export function parseInput<T extends z.ZodType>(
	schema: T,
	input: unknown,
	where: "path" | "query",
): z.output<T> {
	const result = schema.safeParse(input);
	if (result.success) return result.data;
	const details = zodDetails(result.error);
	const names = [...new Set(details.map((d) => d.parameter).filter(Boolean))].join(", ");
	throw new ApiError("invalid_parameter", `invalid ${where} parameter${names ? `: ${names}` : ""}`, {
		details,
	});
}

/** A query string (Hono's `c.req.queries()`) through singleQuery, then the schema. */
export function parseQuery<T extends z.ZodType>(schema: T, queries: Record<string, string[]>): z.output<T> {
	return parseInput(schema, singleQuery(queries), "query");
}

/** The query's parameters (Hono's `c.req.queries()`), each given once; 400 naming any repeat. */
function singleQuery(queries: Record<string, string[]>): Record<string, string> {
	const repeated = Object.keys(queries).filter((name) => (queries[name]?.length ?? 0) > 1);
	if (repeated.length > 0) {
		throw new ApiError("invalid_parameter", `query parameter given more than once: ${repeated.join(", ")}`, {
			details: repeated.map((parameter) => ({ parameter, message: "given more than once" })),
		});
	}
	return Object.fromEntries(Object.entries(queries).map(([name, values]) => [name, values[0] ?? ""]));
}

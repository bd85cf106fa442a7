// Input validation with zod: a failure is a 400 in the API's envelope naming each parameter.
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

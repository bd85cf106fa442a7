// Reading a JSON request body for the real-time POST endpoints: media type (415), size (413,
// counted while streaming, so a huge body is never buffered whole), syntax (400), then the
// zod schema (400 naming each offending field).
import type { Context } from "hono";
import type { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError, zodDetails } from "../errors";

const JSON_TYPE = /^application\/json\s*(;|$)/i;

async function readLimited(body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
	if (!body) return "";
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		size += value.byteLength;
		if (size > limit) {
			await reader.cancel();
			throw tooLarge(limit);
		}
		chunks.push(value);
	}
	const all = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		all.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return new TextDecoder().decode(all);
}

function tooLarge(limit: number): ApiError {
	return new ApiError("payload_too_large", `the body is limited to ${limit} bytes`);
}

export async function readJsonBody<T extends z.ZodType>(
	c: Context<AppEnv>,
	schema: T,
	limit: number,
): Promise<z.output<T>> {
	if (!JSON_TYPE.test(c.req.header("content-type") ?? "")) {
		throw new ApiError("unsupported_media_type", "the body must be application/json");
	}
	const declared = Number(c.req.header("content-length") ?? "0");
	if (declared > limit) throw tooLarge(limit);
	const text = await readLimited(c.req.raw.body, limit);
	let raw: unknown;
	try {
		raw = JSON.parse(text);
	} catch {
		throw new ApiError("bad_request", "the body is not valid JSON");
	}
	const result = schema.safeParse(raw);
	if (result.success) return result.data;
	const details = zodDetails(result.error);
	const fields = [...new Set(details.map((d) => d.parameter).filter(Boolean))].slice(0, 5).join(", ");
	throw new ApiError("invalid_parameter", `invalid body${fields ? `: ${fields}` : ""}`, { details });
}

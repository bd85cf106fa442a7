// Client frames in (pure): size check, parsing into a typed command or a typed error, and the
// close code to reciprocate with.
import { ClientCommand, COMMAND_TYPES, type WsErrorCode } from "./protocol";

export type CommandId = string | number | undefined;
export type Parsed =
	| { ok: true; command: ClientCommand }
	| { ok: false; id: CommandId; code: WsErrorCode; message: string };

const encoder = new TextEncoder();

/** Whether a frame is over `limit` bytes, encoding a string only when its length cannot tell. */
export function exceeds(message: string | ArrayBuffer, limit: number): boolean {
	if (typeof message !== "string") return message.byteLength > limit;
	if (message.length > limit) return true;
	if (message.length * 3 <= limit) return false;
	return encoder.encode(message).byteLength > limit;
}

function idOf(raw: unknown): CommandId {
	if (typeof raw !== "object" || raw === null || !("id" in raw)) return undefined;
	const { id } = raw;
	if (typeof id === "number" && Number.isFinite(id)) return id;
	return typeof id === "string" && id.length <= 64 ? id : undefined;
}

export function parseCommand(message: string | ArrayBuffer): Parsed {
	if (typeof message !== "string") {
		return {
			ok: false,
			id: undefined,
			code: "unsupported_data",
			message: "binary frames are not supported; send JSON text",
		};
	}
	let raw: unknown;
	try {
		raw = JSON.parse(message);
	} catch {
		return { ok: false, id: undefined, code: "invalid_json", message: "a command must be JSON" };
	}
	const id = idOf(raw);
	if (typeof raw !== "object" || raw === null || !("type" in raw) || typeof raw.type !== "string") {
		return {
			ok: false,
			id,
			code: "invalid_message",
			message: "a command is a JSON object with a string 'type'",
		};
	}
	if (!(COMMAND_TYPES as readonly string[]).includes(raw.type)) {
		return {
			ok: false,
			id,
			code: "unknown_command",
			message: `unknown command '${raw.type.slice(0, 40)}'; expected one of ${COMMAND_TYPES.join(", ")}`,
		};
	}
	const result = ClientCommand.safeParse(raw);
	if (result.success) return { ok: true, command: result.data };
	const issue = result.error.issues[0];
	const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
	return {
		ok: false,
		id,
		code: "invalid_message",
		message: `${where}${issue?.message ?? "invalid command"}`,
	};
}

/** The code to close with in reply to a peer's close; reserved codes cannot be sent. */
export function reciprocalCode(code: number): number {
	if (code === 1005 || code === 1006 || code === 1015) return 1000;
	return (code >= 1000 && code <= 1014) || (code >= 3000 && code <= 4999) ? code : 1000;
}

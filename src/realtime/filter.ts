// Per-connection event filters (pure). A connection has two layers: its scope (the `?types=` it
// connected with, or everything), fixed at accept and also written as its socket tags (`t:*` or
// `t:<type>`, so getWebSockets(tag) finds a type's audience); and its live filter
// (subscribe/unsubscribe commands), kept in the attachment, which narrows within the scope.
import { type Filter, LIMITS, type Scope, type WsErrorCode } from "./protocol";

export const ALL: Filter = { mode: "all", except: [] };

export function tagsFor(scope: Scope): string[] {
	return scope === "*" ? ["t:*"] : scope.map((t) => `t:${t}`);
}

export function inScope(scope: Scope, type: string): boolean {
	return scope === "*" || scope.includes(type);
}

export function matches(filter: Filter, scope: Scope, type: string): boolean {
	if (!inScope(scope, type)) return false;
	return filter.mode === "all" ? !filter.except.includes(type) : filter.types.includes(type);
}

export type FilterChange = { ok: true; filter: Filter } | { ok: false; code: WsErrorCode; message: string };

const add = (list: string[], items: string[]) => [...new Set([...list, ...items])];
const remove = (list: string[], items: string[]) => list.filter((t) => !items.includes(t));

function bounded(filter: Filter): FilterChange {
	const size = filter.mode === "all" ? filter.except.length : filter.types.length;
	if (size > LIMITS.filterTypes) {
		return {
			ok: false,
			code: "too_many_filters",
			message: `a filter holds at most ${LIMITS.filterTypes} types`,
		};
	}
	return { ok: true, filter };
}

/** Adds types; `*` means everything in scope again. Types outside the scope are refused. */
export function subscribe(filter: Filter, scope: Scope, events: string[]): FilterChange {
	if (events.includes("*")) return { ok: true, filter: ALL };
	const outside = events.filter((t) => !inScope(scope, t));
	if (outside.length > 0) {
		return {
			ok: false,
			code: "outside_scope",
			message: `not in this connection's scope (reconnect with types=… to widen it): ${outside.join(", ")}`,
		};
	}
	return bounded(
		filter.mode === "all"
			? { mode: "all", except: remove(filter.except, events) }
			: { mode: "only", types: add(filter.types, events) },
	);
}

/** Removes types; `*` means nothing until the next subscribe. */
export function unsubscribe(filter: Filter, events: string[]): FilterChange {
	if (events.includes("*")) return { ok: true, filter: { mode: "only", types: [] } };
	return bounded(
		filter.mode === "all"
			? { mode: "all", except: add(filter.except, events) }
			: { mode: "only", types: remove(filter.types, events) },
	);
}

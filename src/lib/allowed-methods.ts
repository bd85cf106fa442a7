// Which methods a path has routes for, from the app's own route table: the difference between
// 404 (no such resource) and 405 (the resource exists, not with this method; `Allow` says which).
import type { RouterRoute } from "hono/types";

/** A Hono path pattern (/a/:id/b, /x/*) as an anchored regular expression. */
function patternOf(path: string): RegExp {
	const source = path
		.split("/")
		.map((segment) => {
			if (segment === "*") return ".*";
			if (segment.startsWith(":")) return "[^/]+";
			return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
		})
		.join("/");
	return new RegExp(`^${source}/?$`);
}

export function allowedMethods(routes: RouterRoute[]): (path: string) => string[] {
	// Middleware is registered as ALL; only method-specific routes name a resource's methods.
	const table = routes
		.filter((r) => r.method !== "ALL")
		.map((r) => ({ method: r.method, re: patternOf(r.path) }));
	return (path) => {
		const methods = new Set<string>();
		for (const { method, re } of table) if (re.test(path)) methods.add(method);
		if (methods.has("GET")) methods.add("HEAD");
		if (methods.size > 0) methods.add("OPTIONS");
		return [...methods].sort();
	};
}

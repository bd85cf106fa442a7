// Baseline Worker of the summary bench (scripts/bench/summary-hit.ts): the bound of a Cache API
// hit in this runtime. Locally `caches.default` is Miniflare's cache service (a separate worker
// with its own storage), so a Worker that does nothing but one `caches.default.match` and
// returns the response it finds is as fast as a Cache-API-tier hit of the app can ever be.
//   POST /warm?keys=N  stores the request body (a summary's JSON) under N keys (default 100)
//   GET /match/<n>     `caches.default.match` of key n, returned as found (404 on a miss)
//   GET /ping-log      a bare route that writes one line shaped like the app's access log (the
//                      same fields, as an object): the floor of any route that logs each request,
//                      since locally workerd's console.log alone costs about as much as /ping
// Served as a module Worker by Miniflare; plain JavaScript, so it needs no build step.
const KEY_ORIGIN = "https://cache-match.bench.invalid/summary/";

const keyRequest = (n) => new Request(`${KEY_ORIGIN}${n}`);

export default {
	async fetch(request) {
		const url = new URL(request.url);
		if (request.method === "GET" && url.pathname.startsWith("/match/")) {
			const hit = await caches.default.match(keyRequest(url.pathname.slice("/match/".length)));
			return hit ?? new Response("miss", { status: 404 });
		}
		if (request.method === "POST" && url.pathname === "/warm") {
			const keys = Number(url.searchParams.get("keys") ?? "100");
			const body = await request.text();
			for (let n = 0; n < keys; n++) {
				await caches.default.put(
					keyRequest(n),
					new Response(body, {
						headers: { "content-type": "application/json", "cache-control": "max-age=3900" },
					}),
				);
			}
			return Response.json({ stored: keys, bytes: body.length });
		}
		if (url.pathname === "/ping") return new Response("pong");
		if (url.pathname === "/ping-log") {
			console.log({
				level: "info",
				msg: "request",
				request_id: crypto.randomUUID(),
				method: request.method,
				route: "/ping-log",
				status: 200,
				duration_ms: 0.12,
				cache: "hit",
				tier: "memory",
				caller: "user",
			});
			return new Response("pong");
		}
		return new Response("not found", { status: 404 });
	},
};

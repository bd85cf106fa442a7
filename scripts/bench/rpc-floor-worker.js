// Baseline Worker of the ingest bench (scripts/bench/ingest.ts): the floor of any ingest design
// in which each event is its own request and one Durable Object orders it. POST /event parses the
// JSON body, makes one RPC to one Durable Object that writes one SQLite row and answers its seq,
// writes one line shaped like the app's access log, and answers 202 with the seq. The app's
// single-event path does at least this (plus auth, validation, dedupe, the cache invalidation and
// the global shards), so its requests/s in the same workerd cannot pass this one's.
// Served as a module Worker by Miniflare; plain JavaScript, so it needs no build step.
import { DurableObject } from "cloudflare:workers";

export class Floor extends DurableObject {
	constructor(ctx, env) {
		super(ctx, env);
		ctx.storage.sql.exec(
			"CREATE TABLE IF NOT EXISTS floor_events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, frame TEXT NOT NULL)",
		);
	}

	log(event) {
		const frame = JSON.stringify(event);
		return this.ctx.storage.sql
			.exec("INSERT INTO floor_events (id, frame) VALUES (?, ?) RETURNING seq", String(event.id), frame)
			.one().seq;
	}
}

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		if (request.method !== "POST" || url.pathname !== "/event")
			return new Response("not found", { status: 404 });
		const started = Date.now();
		const event = JSON.parse(await request.text());
		const seq = await env.FLOOR.get(env.FLOOR.idFromName("floor")).log(event);
		console.log({
			msg: "request",
			request_id: crypto.randomUUID(),
			method: request.method,
			path: url.pathname,
			status: 202,
			duration_ms: Date.now() - started,
		});
		return Response.json({ id: event.id, seq }, { status: 202 });
	},
};

// Worker entry: the HTTP app, the cron handler, and the Durable Object classes wrangler binds.
import { createApp } from "./app";
import { createDb } from "./db/client";
import { refreshLeaderboards } from "./leaderboard/leaderboard.queries";

const app = createApp();

/** The cron (every 5 minutes, wrangler.toml): rewrites the leaderboard snapshots. Never throws. */
async function refreshOnSchedule(controller: ScheduledController, env: Env): Promise<void> {
	const started = Date.now();
	const base = { cron: controller.cron, scheduled_time: new Date(controller.scheduledTime).toISOString() };
	try {
		const stats = await refreshLeaderboards(createDb(env), { now: new Date(started) });
		console.log(
			JSON.stringify({
				level: "info",
				msg: "leaderboards refreshed",
				...base,
				duration_ms: Date.now() - started,
				...stats,
			}),
		);
	} catch (err) {
		console.error(
			JSON.stringify({
				level: "error",
				msg: "leaderboard refresh failed",
				...base,
				duration_ms: Date.now() - started,
				error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
			}),
		);
	}
}

export default {
	fetch: app.fetch,
	scheduled(controller, env, ctx) {
		ctx.waitUntil(refreshOnSchedule(controller, env));
	},
} satisfies ExportedHandler<Env>;

export { GlobalHub } from "./realtime/global-hub.do";
export { RepoHub } from "./realtime/repo-hub.do";

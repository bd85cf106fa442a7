// Worker entry: the HTTP app, the cron handler, and the Durable Object classes wrangler binds.
import { createApp } from "./app";

const app = createApp();

export default {
	fetch: app.fetch,
	async scheduled(controller, _env, _ctx) {
		// Cron: leaderboard/trending refresh hooks in here.
		console.log(JSON.stringify({ level: "info", msg: "scheduled", cron: controller.cron }));
	},
} satisfies ExportedHandler<Env>;

export { GlobalHub } from "./realtime/global-hub.do";
export { RepoHub } from "./realtime/repo-hub.do";

// Two projects, both run by `npm test`:
//   workerd:  every test inside workerd (@cloudflare/vitest-plugin) against the real
//             wrangler.toml. The global setup (Node) starts the Neon, Upstash and Analytics Engine
//             stand-ins over real Postgres and Redis, gives this run its own database and Redis
//             key prefix, and provides their addresses to the Worker's bindings.
//   node-e2e: the browser end-to-end tests (test/e2e/, Node): the same global setup gives them a
//             stack of their own; they run the built Worker in workerd (Miniflare's API) and drive
//             Debian's Chromium with playwright-core. They run after the workerd project
//             (sequence.groupOrder), so the two never compete for the machine's cores.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { configDefaults, defineConfig } from "vitest/config";
import { stackBindings } from "./test/node/stack-bindings.ts";

export default defineConfig({
	test: {
		// A focused test (.only) fails the run in CI instead of silently skipping the rest.
		allowOnly: !process.env.CI,
		// One access-log line per request is right for production and noise here (a root-only
		// option: it applies to every project).
		// (The entry is an object, printed by Node's inspect, possibly with colour codes between
		// the key and its value.)
		onConsoleLog: (log) =>
			!(log.includes("msg:") && log.includes("'request'") && log.includes("request_id:")),
		projects: [
			{
				plugins: [
					cloudflareTest(({ inject }) => ({
						wrangler: { configPath: "./wrangler.toml" },
						// Analytics Engine and friends stay local: no Cloudflare account, no network.
						remoteBindings: false,
						miniflare: {
							bindings: {
								...stackBindings(inject),
								// The suite sends thousands of requests from one "client"; rate limits have
								// their own tests with small budgets (test/rate-limit.test.ts).
								RATE_LIMIT_SEARCH: "1000000/60",
								RATE_LIMIT_READ: "1000000/60",
								RATE_LIMIT_EVENTS: "1000000/60",
							},
						},
					})),
				],
				test: {
					name: "workerd",
					globalSetup: ["./test/node/global-setup.ts"],
					include: ["test/**/*.test.ts"],
					exclude: [...configDefaults.exclude, "test/e2e/**"],
					testTimeout: 20_000,
					hookTimeout: 60_000,
					sequence: { groupOrder: 0 },
				},
			},
			{
				test: {
					name: "node-e2e",
					environment: "node",
					globalSetup: ["./test/node/global-setup.ts"],
					include: ["test/e2e/**/*.test.ts"],
					// Building the bundle, starting workerd and Chromium, a restart and backoff.
					testTimeout: 120_000,
					hookTimeout: 240_000,
					sequence: { groupOrder: 1 },
				},
			},
		],
	},
});

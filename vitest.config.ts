// Tests run inside workerd (@cloudflare/vitest-plugin) against the real wrangler.toml. The global
// setup (Node) starts the Neon and Upstash stand-ins over real Postgres and Redis, gives this run
// its own database and Redis key prefix, and provides their addresses to the Worker's bindings.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
	plugins: [
		cloudflareTest(({ inject }) => ({
			wrangler: { configPath: "./wrangler.toml" },
			// Analytics Engine and friends stay local: no Cloudflare account, no network.
			remoteBindings: false,
			miniflare: {
				bindings: {
					ENVIRONMENT: "test",
					DATABASE_URL: inject("databaseUrl"),
					NEON_HTTP_ENDPOINT: inject("neonHttpEndpoint"),
					NEON_WS_PROXY: inject("neonWsProxy"),
					UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
					UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
					REDIS_KEY_PREFIX: inject("redisKeyPrefix"),
					JWT_SECRET: inject("jwtSecret"),
					JWT_JWKS_URL: inject("jwksUrl"),
					PYTHON_API_URL: inject("pythonApiUrl"),
				},
			},
		})),
	],
	test: {
		globalSetup: ["./test/node/global-setup.ts"],
		include: ["test/**/*.test.ts"],
		testTimeout: 20_000,
		// One access-log line per request is right for production and noise here.
		onConsoleLog: (log) => !log.includes('"msg":"request"'),
		hookTimeout: 60_000,
	},
});

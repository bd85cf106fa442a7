// The Worker bindings that point at this run's stack: the values the global setup provides
// (database, stand-ins, secrets, the AE stand-in). One list for the workerd project
// (vitest.config.ts) and the Node e2e tests (test/e2e/stack.ts), each passing its own inject().
type StackKey =
	| "databaseUrl"
	| "neonHttpEndpoint"
	| "neonWsProxy"
	| "upstashUrl"
	| "upstashToken"
	| "redisKeyPrefix"
	| "jwtSecret"
	| "jwksUrl"
	| "pythonApiUrl"
	| "aeSinkUrl"
	| "aeSqlUrl"
	| "aeApiToken";

export function stackBindings(inject: (key: StackKey) => string): Record<string, string> {
	return {
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
		AE_SINK_URL: inject("aeSinkUrl"),
		AE_SQL_URL: inject("aeSqlUrl"),
		AE_API_TOKEN: inject("aeApiToken"),
	};
}

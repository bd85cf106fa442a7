// Values the global setup provides to tests (inject()) and to the Worker bindings.
import type { JWK } from "jose";

declare module "vitest" {
	export interface ProvidedContext {
		runId: string;
		databaseUrl: string;
		neonHttpEndpoint: string;
		neonWsProxy: string;
		upstashUrl: string;
		upstashToken: string;
		redisKeyPrefix: string;
		jwtSecret: string;
		jwksUrl: string;
		jwksPrivateKeys: { RS256: JWK; ES256: JWK; EdDSA: JWK };
		pythonApiUrl: string;
		hangingUrl: string;
		/** Analytics Engine stand-in: the sink (AE_SINK_URL), the SQL API (AE_SQL_URL) and its token. */
		aeSinkUrl: string;
		aeSqlUrl: string;
		aeApiToken: string;
		testSeedRepos: number;
		exampleJwtSecret: string;
		/** fast-check's seed for this run (from the commit, or FC_SEED). */
		fcSeed: number;
	}
}

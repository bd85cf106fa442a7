// GlobalHub: one shard of the global activity stream (GLOBAL_HUB_SHARDS objects). Declared with
// its binding and SQLite migration now; the fan-out arrives with the real-time work.
import { DurableObject } from "cloudflare:workers";

export class GlobalHub extends DurableObject<Env> {}

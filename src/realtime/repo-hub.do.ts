// RepoHub: the per-repository WebSocket hub (one Durable Object per repository id). Declared
// with its binding and SQLite migration now so the deployment shape is fixed; the hibernating
// WebSocket fan-out, replay log and RPC publish arrive with the real-time work.
import { DurableObject } from "cloudflare:workers";

export class RepoHub extends DurableObject<Env> {}

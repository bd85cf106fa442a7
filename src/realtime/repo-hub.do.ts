// RepoHub: the per-repository WebSocket hub, one Durable Object per repository id
// (idFromName(<lower-case repository id>)). Everything is in the shared Hub; see hub.ts.
import { Hub } from "./hub";

export class RepoHub extends Hub {
	protected readonly kind = "repo";
}

// GlobalHub: one shard of the global activity stream (GLOBAL_HUB_SHARDS objects, named
// "global:<n>"). Connections are spread over the shards and every event is published to each,
// so a shard's seq is its own: a client resumes on the shard it was told in `welcome`.
import { Hub } from "./hub";

export class GlobalHub extends Hub {
	protected readonly kind = "global";
}

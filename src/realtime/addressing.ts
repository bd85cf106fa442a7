// Where each hub lives: one RepoHub per repository (its lower-case id), GLOBAL_HUB_SHARDS
// GlobalHubs named `global:<n>`. The global shards take GLOBAL_HUB_LOCATION as a location hint
// (it only counts when an object is first created): every event goes to every shard, so they
// are best placed near the producers, not wherever the first viewer happened to connect.
import type { LocationHint } from "../env";

export const repoHubOf = (env: Env, repositoryId: string) =>
	env.REPO_HUB.get(env.REPO_HUB.idFromName(repositoryId));

/** The id of global shard `n` (computed once by callers that reuse it). */
export const globalShardId = (env: Env, n: number) => env.GLOBAL_HUB.idFromName(`global:${n}`);

export function globalShardOf(env: Env, id: DurableObjectId, hint: LocationHint | undefined) {
	return hint ? env.GLOBAL_HUB.get(id, { locationHint: hint }) : env.GLOBAL_HUB.get(id);
}

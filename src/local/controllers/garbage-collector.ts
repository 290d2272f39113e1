/**
 * Garbage collection by ownerReferences (background propagation): when an owner is deleted, its
 * dependents are deleted (a Deployment's ReplicaSets, their pods). Orphaning is done by the API's delete.
 */
import type { Logger } from "pino";
import { type Api, internalContext } from "../apiserver/api.ts";
import { WorkQueue } from "./queue.ts";
import { type Obj, ownedBy } from "./util.ts";

export function startGarbageCollector(api: Api, logger: Logger): () => void {
  const log = logger.child({ controller: "garbage-collector" });

  const reconcile = async (key: string): Promise<void> => {
    const [ns = "", uid = ""] = key.split("/");
    for (const type of api.registry.all()) {
      if (api.registry.versionsOf(type.group, type.resource)[0] !== type) continue;
      if (ns !== "" && !type.namespaced) continue;
      for (const o of api.list(type, ns || undefined).items) {
        if (!ownedBy(o, uid) || (o.metadata as Obj).deletionTimestamp) continue;
        await api
          .delete(
            type,
            (o.metadata.namespace as string | undefined) ?? "",
            o.metadata.name,
            {},
            internalContext(),
          )
          .catch((error) => {
            if ((error as { code?: number }).code !== 404) throw error;
          });
        log.debug({ dependent: `${type.resource}/${o.metadata.name}` }, "deleted dependent");
      }
    }
  };

  const queue = new WorkQueue("garbage-collector", reconcile, log);
  const unsubscribe = api.store.subscribe((event) => {
    if (event.type === "DELETED") queue.add(`${event.namespace}/${(event.object.metadata as Obj).uid}`);
  });
  return () => {
    unsubscribe();
    queue.stop();
  };
}

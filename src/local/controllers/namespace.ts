/**
 * Namespaces: every active namespace gets a `default` ServiceAccount; a namespace being deleted
 * (deletionTimestamp, phase Terminating) has its content deleted (pods gracefully, through the node
 * agent), and is removed once nothing is left in it.
 */
import type { Logger } from "pino";
import { type Api, internalContext } from "../apiserver/api.ts";
import { WorkQueue } from "./queue.ts";
import { type Obj, typeOf } from "./util.ts";

export function startNamespaceController(api: Api, logger: Logger): () => void {
  const nsType = typeOf(api, "", "namespaces");
  const saType = typeOf(api, "", "serviceaccounts");
  const log = logger.child({ controller: "namespace" });

  const reconcile = async (name: string): Promise<void> => {
    const ns = api.find(nsType, "", name) as Obj | undefined;
    if (!ns) return;
    if (!ns.metadata.deletionTimestamp) {
      if (!api.find(saType, name, "default")) {
        await api
          .create(saType, name, { metadata: { name: "default" } }, internalContext())
          .catch((error) => {
            if ((error as { code?: number }).code !== 409) throw error;
          });
      }
      return;
    }
    let remaining = 0;
    for (const type of api.registry.all()) {
      if (!type.namespaced) continue;
      // One version per group/resource is enough: storage is shared.
      if (api.registry.versionsOf(type.group, type.resource)[0] !== type) continue;
      for (const o of api.list(type, name).items) {
        remaining++;
        if ((o.metadata as Obj).deletionTimestamp) continue;
        await api.delete(type, name, o.metadata.name, {}, internalContext()).catch(() => undefined);
      }
    }
    if (remaining === 0) {
      api.finalize(nsType, "", name);
      log.info({ namespace: name }, "namespace removed");
    } else {
      queue.after(name, 500);
    }
  };

  const queue = new WorkQueue("namespace", reconcile, log);
  const unsubscribe = api.store.subscribe((event) => {
    if (event.groupResource === "/namespaces") queue.add(event.object.metadata.name);
    else if (
      event.groupResource === "/serviceaccounts" &&
      event.type === "DELETED" &&
      event.object.metadata.name === "default"
    )
      queue.add(event.namespace);
    else if (event.type === "DELETED" && event.namespace) {
      const ns = api.find(nsType, "", event.namespace) as Obj | undefined;
      if (ns?.metadata.deletionTimestamp) queue.add(event.namespace);
    }
  });
  for (const ns of api.store.list("/namespaces")) queue.add(ns.metadata.name);
  return () => {
    unsubscribe();
    queue.stop();
  };
}

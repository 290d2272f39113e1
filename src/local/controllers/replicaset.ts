/**
 * ReplicaSet → pods: keeps as many active pods as `spec.replicas` (created through the API, so admission
 * webhooks such as the sidecar injector see them), deletes the surplus (not-ready and newest first), and
 * writes `status` (replicas, readyReplicas, availableReplicas, observedGeneration).
 */

import type { Logger } from "pino";
import type { Clock } from "../../edge/clock.ts";
import { type Api, internalContext, jsonEqual } from "../apiserver/api.ts";
import type { KubeObject } from "../store/store.ts";
import { createRecorder } from "./events.ts";
import { WorkQueue } from "./queue.ts";
import { controllerOf, isPodActive, isPodReady, type Obj, ownedBy, ownerReference, typeOf } from "./util.ts";

export function startReplicaSetController(api: Api, logger: Logger, clock: Clock): () => void {
  const rsType = typeOf(api, "apps", "replicasets");
  const podType = typeOf(api, "", "pods");
  const log = logger.child({ controller: "replicaset" });
  const record = createRecorder(api, "replicaset-controller", log, clock);

  const reconcile = async (key: string): Promise<void> => {
    const [ns = "", name = ""] = key.split("/");
    const rs = api.find(rsType, ns, name) as Obj | undefined;
    if (!rs || rs.metadata.deletionTimestamp) return;
    const uid = rs.metadata.uid;
    const pods = api.store.list("/pods", ns).filter((p) => ownedBy(p, uid));
    const active = pods.filter(isPodActive);
    const want = rs.spec?.replicas ?? 1;
    if (active.length < want) {
      const template = rs.spec.template ?? {};
      for (let i = active.length; i < want; i++) {
        const pod = {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            generateName: `${name}-`,
            namespace: ns,
            labels: { ...(template.metadata?.labels ?? {}) },
            annotations: { ...(template.metadata?.annotations ?? {}) },
            ownerReferences: [ownerReference(rs as KubeObject, "apps/v1", "ReplicaSet")],
          },
          spec: structuredClone(template.spec ?? {}),
        };
        if (Object.keys(pod.metadata.annotations).length === 0) delete (pod.metadata as Obj).annotations;
        let created: KubeObject;
        try {
          created = await api.create(podType, ns, pod, internalContext());
        } catch (error) {
          await record(
            api.present(rsType, rs as KubeObject),
            "Warning",
            "FailedCreate",
            `Error creating: ${(error as Error).message}`,
          );
          throw error;
        }
        await record(
          api.present(rsType, rs as KubeObject),
          "Normal",
          "SuccessfulCreate",
          `Created pod: ${created.metadata.name}`,
        );
        log.info({ replicaset: key, pod: created.metadata.name }, "created pod");
      }
    } else if (active.length > want) {
      // Not ready first, then the newest: the ones whose loss hurts least (controller.ActivePods ordering).
      const victims = [...active]
        .sort((a, b) => {
          const ra = isPodReady(a) ? 1 : 0;
          const rb = isPodReady(b) ? 1 : 0;
          if (ra !== rb) return ra - rb;
          return String((b.metadata as Obj).creationTimestamp).localeCompare(
            String((a.metadata as Obj).creationTimestamp),
          );
        })
        .slice(0, active.length - want);
      for (const pod of victims) {
        try {
          await api.delete(podType, ns, pod.metadata.name, {}, internalContext());
          await record(
            api.present(rsType, rs as KubeObject),
            "Normal",
            "SuccessfulDelete",
            `Deleted pod: ${pod.metadata.name}`,
          );
        } catch (error) {
          if ((error as { code?: number }).code !== 404) throw error;
        }
      }
    }
    const now = api.store.list("/pods", ns).filter((p) => ownedBy(p, uid) && isPodActive(p));
    const ready = now.filter(isPodReady).length;
    const labels = rs.spec?.selector?.matchLabels ?? {};
    const status = {
      replicas: now.length,
      fullyLabeledReplicas: now.filter((p) =>
        Object.entries(labels).every(([k, v]) => (p.metadata.labels as Obj | undefined)?.[k] === v),
      ).length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata.generation ?? 1,
    };
    const current = api.find(rsType, ns, name) as Obj | undefined;
    if (current && !jsonEqual(current.status, status)) {
      await api.mutate(rsType, ns, name, (c) => ({ ...c, status }), internalContext(), "status");
    }
  };

  const queue = new WorkQueue("replicaset", reconcile, log);
  const unsubscribe = api.store.subscribe((event) => {
    if (event.groupResource === "apps/replicasets")
      queue.add(`${event.namespace}/${event.object.metadata.name}`);
    else if (event.groupResource === "/pods") {
      const owner = controllerOf(event.object) ?? (event.previous && controllerOf(event.previous));
      if (owner?.kind === "ReplicaSet") queue.add(`${event.namespace}/${owner.name}`);
    }
  });
  for (const rs of api.store.list("apps/replicasets"))
    queue.add(`${rs.metadata.namespace}/${rs.metadata.name}`);
  return () => {
    unsubscribe();
    queue.stop();
  };
}

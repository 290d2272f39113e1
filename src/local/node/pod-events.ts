/**
 * core/v1 Events about pods, as the kubelet posts them (`kubectl describe pod`, `kubectl get events`): one
 * Event per call, best effort (a failure is logged at debug), at most 100 in flight so a burst never piles up.
 * Shared by the node agent (component `kubelet`) and the osm-node DaemonSet (component `osm-node`).
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { PodEvent } from "./pod-context.ts";

export interface PodEventPosterOptions {
  readonly core: CoreV1Api;
  /** `source.component` and `reportingComponent`. */
  readonly component: string;
  /** The node: `source.host` and `reportingInstance`. */
  readonly host: string;
  readonly logger: Logger;
  /** Nothing is posted once this says so (the agent is stopping). */
  readonly stopped: () => boolean;
}

export function createPodEventPoster(o: PodEventPosterOptions): (pod: V1Pod, event: PodEvent) => void {
  let pending = 0;
  return (pod, event) => {
    if (o.stopped() || pending >= 100) return;
    const namespace = pod.metadata?.namespace ?? "default";
    const podName = pod.metadata?.name ?? "";
    const time = new Date();
    pending++;
    o.core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${podName}.${randomBytes(8).toString("hex")}`, namespace },
          involvedObject: {
            apiVersion: "v1",
            kind: "Pod",
            namespace,
            name: podName,
            ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
            ...(event.fieldPath ? { fieldPath: event.fieldPath } : {}),
          },
          type: event.type,
          reason: event.reason,
          message: event.message,
          source: { component: o.component, host: o.host },
          reportingComponent: o.component,
          reportingInstance: o.host,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      })
      .catch((error: unknown) => o.logger.debug({ err: error, reason: event.reason }, "event not posted"))
      .finally(() => {
        pending--;
      });
  };
}

/**
 * With egress disabled, a meshed pod whose app container can still send as the proxy uid (root with
 * CAP_SETUID, a setuid-root escalation, privileged, NET_ADMIN: the injector's `proxyUidPaths`, the same
 * findings `osm explain pod/…` and `osm proxy status` print) gets one Warning Event, `EgressBypassPossible`,
 * naming each container and path, so `kubectl describe pod` shows it.
 *
 * Once per pod: the paths depend only on the pod's spec (immutable securityContext), so a pod decided once
 * stays decided; the Event's name is derived from the pod's uid, so a restarted controller that posts again
 * gets 409 AlreadyExists instead of a duplicate. A failed post is retried by the next reconcile.
 */
import { createHash } from "node:crypto";
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../edge/kube-client.ts";
import { proxyUidPaths } from "../injector/index.ts";

export const EGRESS_BYPASS_REASON = "EgressBypassPossible";
/** The Event's `source.component` and `reportingComponent`. */
export const EVENT_COMPONENT = "osm-controller";
/** kube-apiserver caps events.k8s.io notes at 1 KiB; core/v1 messages are kept as short. */
const MESSAGE_LIMIT = 1024;

/** The Event to record on `pod`, or undefined when none of its containers can reach the proxy uid. Pure. */
export function egressBypassEvent(pod: V1Pod): { name: string; message: string } | undefined {
  const paths = proxyUidPaths(pod);
  if (paths.length === 0) return undefined;
  const podName = pod.metadata?.name ?? "";
  const uid = pod.metadata?.uid ?? "";
  const digest = createHash("sha256").update(`${uid}/${EGRESS_BYPASS_REASON}`).digest("hex").slice(0, 16);
  const message = `egress is disabled, but its traffic can bypass the sidecar: ${paths.join("; ")}`;
  return {
    // Deterministic per pod uid: a second create is a 409, not a second Event.
    name: `${podName.slice(0, 200)}.${digest}`,
    message: message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT - 1)}…` : message,
  };
}

/** Creates one core/v1 Event; resolves to "exists" when it was already recorded. */
export type RecordPodEvent = (
  pod: V1Pod,
  event: { name: string; message: string },
) => Promise<"created" | "exists" | "gone">;

/** The client-node implementation: a core/v1 Warning Event on the pod, as the kubelet posts its own. */
export function kubeRecordPodEvent(api: CoreV1Api, instance: string): RecordPodEvent {
  return async (pod, event) => {
    const namespace = pod.metadata?.namespace ?? "";
    const time = new Date();
    try {
      await api.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: event.name, namespace },
          involvedObject: {
            apiVersion: "v1",
            kind: "Pod",
            namespace,
            name: pod.metadata?.name ?? "",
            ...(pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
          },
          type: "Warning",
          reason: EGRESS_BYPASS_REASON,
          message: event.message,
          source: { component: EVENT_COMPONENT },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: instance,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      });
      return "created";
    } catch (error) {
      const code = apiErrorCode(error);
      if (code === 409) return "exists";
      // The namespace is being deleted (403 forbidden in a terminating namespace) or is gone.
      if (code === 404) return "gone";
      throw error;
    }
  };
}

/** Posts each pod's Event once; remembers decided pods by uid, forgetting those no longer listed. */
export class EgressBypassReporter {
  readonly #record: RecordPodEvent;
  readonly #logger: Logger;
  /** Pod uids that need nothing more: recorded, or without a path. */
  readonly #decided = new Set<string>();
  readonly #inFlight = new Map<string, Promise<void>>();

  constructor(record: RecordPodEvent, logger: Logger) {
    this.#record = record;
    this.#logger = logger;
  }

  /** Call once per reconcile with the live meshed pods, only while egress is disabled. */
  reconcile(pods: readonly V1Pod[]): void {
    const seen = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata?.uid;
      if (!uid) continue;
      seen.add(uid);
      if (this.#decided.has(uid) || this.#inFlight.has(uid)) continue;
      const event = egressBypassEvent(pod);
      if (!event) {
        this.#decided.add(uid);
        continue;
      }
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const run = this.#record(pod, event)
        .then((result) => {
          this.#decided.add(uid);
          if (result === "created")
            this.#logger.info({ pod: key }, "recorded EgressBypassPossible on the pod");
        })
        .catch((error: unknown) => {
          this.#logger.warn({ pod: key, err: error }, "could not record the EgressBypassPossible event");
        })
        .finally(() => this.#inFlight.delete(uid));
      this.#inFlight.set(uid, run);
    }
    // Bounded memory: a deleted pod's uid never comes back.
    for (const uid of this.#decided) if (!seen.has(uid)) this.#decided.delete(uid);
  }

  /** Resolves when every post started so far has finished. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight.values()]);
  }
}

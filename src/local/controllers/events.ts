/**
 * Events, as client-go's recorder writes them (core/v1 Event, aggregated: a repeat of the same reason and
 * message on the same object bumps `count` and `lastTimestamp`), so `kubectl describe` and `kubectl get
 * events` explain what the controllers did — above all why a pod could not be created (FailedCreate, e.g.
 * an admission webhook's denial). Best effort: a failure to record is logged, never thrown.
 */
import type { Logger } from "pino";
import type { Clock } from "../../edge/clock.ts";
import { type Api, internalContext, randomSuffix } from "../apiserver/api.ts";
import { nowIso } from "../apiserver/defaults.ts";
import type { KubeObject } from "../store/store.ts";
import { type Obj, typeOf } from "./util.ts";

export type Recorder = (
  involved: KubeObject,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
) => Promise<void>;

export function createRecorder(api: Api, component: string, logger: Logger, clock: Clock): Recorder {
  const eventType = typeOf(api, "", "events");
  return async (involved, type, reason, message) => {
    const meta = involved.metadata as Obj;
    const namespace: string = meta.namespace ?? "default";
    const at = clock();
    const now = nowIso(at);
    try {
      const same = api.store.list("/events", namespace).find((e) => {
        const o = e as Obj;
        return (
          o.involvedObject?.uid === meta.uid &&
          o.reason === reason &&
          o.message === message &&
          o.source?.component === component
        );
      });
      if (same) {
        await api.mutate(
          eventType,
          namespace,
          same.metadata.name,
          (c) => ({ ...c, count: ((c as Obj).count ?? 1) + 1, lastTimestamp: now }),
          internalContext(),
        );
        return;
      }
      await api.create(
        eventType,
        namespace,
        {
          metadata: { name: `${meta.name}.${at.toString(16)}${randomSuffix(3)}`, namespace },
          involvedObject: {
            apiVersion: involved.apiVersion,
            kind: involved.kind,
            namespace: meta.namespace,
            name: meta.name,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
          reason,
          message,
          type,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component },
          reportingComponent: component,
          reportingInstance: "osm-local",
        },
        internalContext(),
      );
    } catch (error) {
      logger.debug({ err: error, reason }, "cannot record event");
    }
  };
}

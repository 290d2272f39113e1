/**
 * Events expire after an hour (kube-apiserver's default `--event-ttl`), so pod churn does not grow the
 * store without bound. Checked once a minute.
 */
import type { Logger } from "pino";
import type { Clock } from "../../edge/clock.ts";
import type { Api } from "../apiserver/api.ts";
import type { Obj } from "./util.ts";

export const EVENT_TTL_MS = 60 * 60 * 1000;

export function startEventTtl(
  api: Api,
  logger: Logger,
  clock: Clock,
  ttlMs = EVENT_TTL_MS,
  everyMs = 60_000,
): () => void {
  const prune = () => {
    const cutoff = clock() - ttlMs;
    let removed = 0;
    for (const e of api.store.list("/events")) {
      const o = e as Obj;
      const last = Date.parse(o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp ?? "");
      if (Number.isFinite(last) && last < cutoff) {
        api.store.remove("/events", e.metadata.namespace ?? "", e.metadata.name);
        removed++;
      }
    }
    if (removed > 0) logger.debug({ removed }, "expired events removed");
  };
  const timer = setInterval(prune, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The live interception updates' Prometheus metrics, on a registry of their own (no global state); the daemon
 * serves them on its control socket (`GET /metrics`).
 */
import { Counter, Gauge, Registry } from "prom-client";

export interface LiveInterceptionMetrics {
  readonly registry: Registry;
  /** Updates the kernel refused (or that could not be made), per pod; each is retried with backoff. */
  readonly failures: Counter<"namespace" | "pod">;
  /** Updates made: `elements`, `replaced` (policy changes), `recorded` (the kernel already held it), `drift-repaired`. */
  readonly updates: Counter<"how">;
}

/** `failing()` is read at each scrape: the pods whose last update failed. */
export function createLiveInterceptionMetrics(failing: () => number): LiveInterceptionMetrics {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: "osm_ts_interception_live_update_failing_pods",
    help: "Meshed pods whose last live interception update failed (they keep their previous rules)",
    registers,
    collect() {
      this.set(failing());
    },
  });
  return {
    registry,
    failures: new Counter({
      name: "osm_ts_interception_live_update_failures_total",
      help: "Live interception updates that failed, by pod (each is retried with backoff)",
      labelNames: ["namespace", "pod"],
      registers,
    }),
    updates: new Counter({
      name: "osm_ts_interception_live_updates_total",
      help: "Live interception updates made, by how: elements, replaced (the policy changed), recorded (the kernel already held it), drift-repaired",
      labelNames: ["how"],
      registers,
    }),
  };
}

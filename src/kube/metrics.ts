/** The injector's Prometheus metrics, on a registry of its own (no global state). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Admission reviews answered, by webhook path and result (allowed, patched, denied, error). */
  readonly admissions: Counter<"path" | "result">;
  readonly admissionSeconds: Histogram<"path">;
  /** Seconds until the serving certificate expires (alert well before 0). */
  readonly certificateExpirySeconds: Gauge;
  readonly rotations: Counter<"what">;
}

export function createWebhookMetrics(): WebhookMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    admissions: new Counter({
      name: "osm_ts_injector_admissions_total",
      help: "Admission reviews answered, by webhook path and result",
      labelNames: ["path", "result"],
      registers,
    }),
    admissionSeconds: new Histogram({
      name: "osm_ts_injector_admission_duration_seconds",
      help: "Time to answer one admission review",
      labelNames: ["path"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers,
    }),
    certificateExpirySeconds: new Gauge({
      name: "osm_ts_injector_certificate_expiry_seconds",
      help: "Seconds until the webhook serving certificate expires",
      registers,
    }),
    rotations: new Counter({
      name: "osm_ts_injector_certificate_rotations_total",
      help: "Certificate rotations, by what was rotated (serving, ca)",
      labelNames: ["what"],
      registers,
    }),
  };
}

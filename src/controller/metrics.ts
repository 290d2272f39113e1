/** The controller's Prometheus metrics, on a registry of its own (no global state). */
import { Counter, Gauge, Registry } from "prom-client";

export interface ControllerMetrics {
  readonly registry: Registry;
  readonly informerEvents: Counter<"resource" | "kind">;
  readonly configVersions: Counter;
  readonly configResponses: Counter<"status">;
  readonly authFailures: Counter<"reason">;
  readonly watchers: Gauge;
  readonly meshedPods: Gauge;
  readonly meshEndpoints: Gauge;
  readonly stalePods: Gauge;
  readonly podPatches: Counter<"result">;
  readonly meshConfigInvalid: Gauge;
}

export function createControllerMetrics(): ControllerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    informerEvents: new Counter({
      name: "osm_ts_controller_informer_events_total",
      help: "Add/update/delete events received from the Kubernetes API, by resource",
      labelNames: ["resource", "kind"],
      registers,
    }),
    configVersions: new Counter({
      name: "osm_ts_controller_sidecar_config_versions_total",
      help: "New per-pod sidecar config versions issued (a content change for one pod)",
      registers,
    }),
    configResponses: new Counter({
      name: "osm_ts_controller_sidecar_config_responses_total",
      help: "Responses on the sidecar watch API, by HTTP status",
      labelNames: ["status"],
      registers,
    }),
    authFailures: new Counter({
      name: "osm_ts_controller_sidecar_auth_failures_total",
      help: "Sidecar watch requests refused, by reason",
      labelNames: ["reason"],
      registers,
    }),
    watchers: new Gauge({
      name: "osm_ts_controller_sidecar_watchers",
      help: "Long-polls currently held open",
      registers,
    }),
    meshedPods: new Gauge({
      name: "osm_ts_controller_meshed_pods",
      help: "Pods with the injector's sidecar token volume (those that may watch their config)",
      registers,
    }),
    meshEndpoints: new Gauge({
      name: "osm_ts_controller_mesh_endpoints",
      help: "Mesh destinations (IP:port) served to sidecars",
      registers,
    }),
    stalePods: new Gauge({
      name: "osm_ts_controller_stale_pods",
      help: "Meshed pods whose interception policy differs from the one the current MeshConfig gives",
      registers,
    }),
    podPatches: new Counter({
      name: "osm_ts_controller_pod_annotation_patches_total",
      help: "Patches of the interception-stale pod annotation, by result",
      labelNames: ["result"],
      registers,
    }),
    meshConfigInvalid: new Gauge({
      name: "osm_ts_controller_meshconfig_invalid",
      help: "1 while the stored MeshConfig fails validation (the last valid one stays in force)",
      registers,
    }),
  };
}

/**
 * How long one controller reconcile takes for a mesh of N pods behind N/10 services (numbers, not pass/fail).
 * Run: node bench/controller-reconcile.ts [pods=1000]
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  defaultMeshConfig,
  policyHash,
} from "../src/config/index.ts";
import { sidecarTokenVolume } from "../src/config/sidecar-token.ts";
import { ConfigHub } from "../src/controller/config-hub.ts";
import { ControllerCore, type ControllerSources } from "../src/controller/controller-core.ts";
import { recomputeWith } from "../src/controller/index.ts";
import { createControllerMetrics } from "../src/controller/metrics.ts";
import type { ResourceSource } from "../src/controller/resource-source.ts";

const podCount = Number(process.argv[2] ?? 1000);

function staticSource<T extends KubernetesObject>(name: string, items: T[]): ResourceSource<T> {
  return {
    name,
    synced: true,
    list: () => items,
    get: (n, ns) => items.find((o) => o.metadata?.name === n && o.metadata?.namespace === ns),
    onChange: () => {},
    start: async () => {},
    stop: async () => {},
  };
}

const meshConfig = defaultMeshConfig();
meshConfig.spec.traffic.outboundIPRangeExclusionList = Array.from({ length: 50 }, (_, i) => `10.${i}.0.0/16`);
const policy = buildEffectivePolicy(meshConfig, {});
const pods = Array.from({ length: podCount }, (_, i) => ({
  metadata: {
    name: `p${i}`,
    namespace: "bench",
    labels: { app: `a${i % Math.max(1, podCount / 10)}` },
    annotations: {
      "osm-ts.io/interception-policy-hash": policyHash(policy),
      "osm-ts.io/interception-policy": canonicalPolicyText(policy),
    },
  },
  // The injector's projected token volume marks a meshed pod (it gets a config document).
  spec: { containers: [], volumes: [sidecarTokenVolume()] },
  status: { phase: "Running", podIP: `198.51.${Math.floor(i / 250)}.${i % 250}` },
}));
const services = Array.from({ length: Math.max(1, podCount / 10) }, (_, i) => ({
  metadata: { name: `s${i}`, namespace: "bench" },
  spec: {
    clusterIP: `192.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    selector: { app: `a${i}` },
    ports: [{ port: 80 }],
  },
}));
const sources: ControllerSources = {
  meshConfigs: staticSource("meshconfigs", [
    { ...meshConfig, metadata: { name: "osm-mesh-config", namespace: "osm-system" } } as KubernetesObject,
  ]),
  namespaces: staticSource("namespaces", [
    { metadata: { name: "bench", labels: { "openservicemesh.io/monitored-by": "osm" } } },
  ]),
  pods: staticSource("pods", pods),
  services: staticSource("services", services),
  endpoints: staticSource("endpoints", []),
};
const core = new ControllerCore({
  sources,
  hub: new ConfigHub(),
  osmNamespace: "osm-system",
  meshName: "osm",
  logger: pino({ level: "silent" }),
  metrics: createControllerMetrics(),
  recomputeFor: recomputeWith,
});
for (const label of ["first (cold memo)", "second", "third"]) {
  const started = performance.now();
  core.reconcile();
  console.log(
    `${podCount} pods, ${services.length} services: ${label} reconcile ${(performance.now() - started).toFixed(1)} ms`,
  );
}

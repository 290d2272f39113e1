/** Small builders for injector tests: pods, namespaces, MeshConfigs and fixed options/seeds. */
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import type { MeshConfig } from "../../../src/config/schema.ts";
import { validateMeshConfig } from "../../../src/config/validate.ts";
import type { InjectionSeeds, InjectorOptions } from "../../../src/injector/index.ts";

export const OPTIONS: InjectorOptions = {
  meshName: "osm",
  osmNamespace: "osm-system",
  defaultSidecarImage: "osm-ts/sidecar:test",
  defaultSidecarWindowsImage: "osm-ts/sidecar-windows:test",
  defaultInitContainerImage: "osm-ts/init:test",
  imagePullPolicy: "IfNotPresent",
  osmCommand: ["osm"],
  controllerUrl: "http://osm-controller.osm-system.svc:15128",
  initBackend: "iptables",
};

export const SEEDS: InjectionSeeds = {
  proxyUuid: "3f2c8a4e-1b5d-4c6e-9f7a-0d1e2f3a4b5c",
};

export function meshConfig(spec: Record<string, unknown> = {}): MeshConfig {
  return validateMeshConfig({
    apiVersion: "config.openservicemesh.io/v1alpha2",
    kind: "MeshConfig",
    metadata: { name: "osm-mesh-config", namespace: "osm-system" },
    spec,
  });
}

export function namespace(
  name = "curl",
  opts: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1Namespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name,
      labels: opts.labels ?? { "openservicemesh.io/monitored-by": "osm" },
      annotations: opts.annotations ?? { "openservicemesh.io/sidecar-injection": "enabled" },
    },
  };
}

export function pod(
  opts: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    initContainers?: { name: string; image: string }[];
    nodeSelector?: Record<string, string>;
    hostNetwork?: boolean;
    namespace?: string;
  } = {},
): V1Pod {
  const metadata: NonNullable<V1Pod["metadata"]> = {
    generateName: "curl-7d9c5b6f4-",
    namespace: opts.namespace ?? "curl",
  };
  if (opts.labels) metadata.labels = opts.labels;
  if (opts.annotations) metadata.annotations = opts.annotations;
  const spec: NonNullable<V1Pod["spec"]> = {
    serviceAccountName: "curl",
    containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "365d"] }],
  };
  if (opts.initContainers) spec.initContainers = opts.initContainers;
  if (opts.nodeSelector) spec.nodeSelector = opts.nodeSelector;
  if (opts.hostNetwork !== undefined) spec.hostNetwork = opts.hostNetwork;
  return { apiVersion: "v1", kind: "Pod", metadata, spec };
}

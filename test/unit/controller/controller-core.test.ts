import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubernetesObject, V1Endpoints, V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import pino from "pino";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  defaultMeshConfig,
  policyHash,
} from "../../../src/config/index.ts";
import { sidecarTokenVolume } from "../../../src/config/sidecar-token.ts";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ANNOTATION_INTERCEPTION_STALE,
} from "../../../src/constants.ts";
import { ConfigHub } from "../../../src/controller/config-hub.ts";
import { ControllerCore } from "../../../src/controller/controller-core.ts";
import { recomputeWith } from "../../../src/controller/index.ts";
import { createControllerMetrics } from "../../../src/controller/metrics.ts";
import type { ChangeKind, ResourceSource } from "../../../src/controller/resource-source.ts";

/** An in-memory ResourceSource: what an informer would hold, driven by the test. */
class FakeSource<T extends KubernetesObject> implements ResourceSource<T> {
  readonly name: string;
  synced = false;
  readonly #objects = new Map<string, T>();
  readonly #listeners: ((kind: ChangeKind, object: T | undefined) => void)[] = [];
  constructor(name: string, synced = true) {
    this.name = name;
    this.synced = synced;
  }
  #key(name: string, namespace?: string): string {
    return `${namespace ?? ""}/${name}`;
  }
  list(): readonly T[] {
    return [...this.#objects.values()];
  }
  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(this.#key(name, namespace));
  }
  onChange(listener: (kind: ChangeKind, object: T | undefined) => void): void {
    this.#listeners.push(listener);
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  put(object: T): void {
    const key = this.#key(object.metadata?.name ?? "", object.metadata?.namespace);
    const kind = this.#objects.has(key) ? "update" : "add";
    this.#objects.set(key, structuredClone(object));
    for (const l of this.#listeners) l(kind, object);
  }
  remove(name: string, namespace?: string): void {
    const object = this.get(name, namespace);
    this.#objects.delete(this.#key(name, namespace));
    for (const l of this.#listeners) l("delete", object);
  }
  markSynced(): void {
    this.synced = true;
    for (const l of this.#listeners) l("sync", undefined);
  }
}

function meshConfigObject(traffic: Record<string, unknown> = {}): KubernetesObject {
  const preset = defaultMeshConfig();
  return {
    apiVersion: "config.openservicemesh.io/v1alpha2",
    kind: "MeshConfig",
    metadata: { name: "osm-mesh-config", namespace: "osm-system", resourceVersion: "7" },
    spec: { ...preset.spec, traffic: { ...preset.spec.traffic, ...traffic } },
  } as KubernetesObject;
}

/** A pod as the injector admits it under `exclusions` (annotations from the real policy functions). */
function meshedPod(name: string, exclusions: string[], ip = "198.51.100.5"): V1Pod {
  const preset = defaultMeshConfig();
  const policy = buildEffectivePolicy(
    {
      ...preset,
      spec: { ...preset.spec, traffic: { ...preset.spec.traffic, outboundIPRangeExclusionList: exclusions } },
    },
    {},
  );
  return {
    metadata: {
      name,
      namespace: "curl",
      labels: { app: "curl" },
      annotations: {
        [ANNOTATION_INTERCEPTION_POLICY_HASH]: policyHash(policy),
        [ANNOTATION_INTERCEPTION_POLICY]: canonicalPolicyText(policy),
      },
    },
    spec: { containers: [{ name: "curl", ports: [{ containerPort: 80 }] }], volumes: [sidecarTokenVolume()] },
    status: { phase: "Running", podIP: ip },
  };
}

function setup(options: { synced?: boolean; logger?: pino.Logger } = {}) {
  const sources = {
    meshConfigs: new FakeSource<KubernetesObject>("meshconfigs", options.synced ?? true),
    namespaces: new FakeSource<V1Namespace>("namespaces", options.synced ?? true),
    pods: new FakeSource<V1Pod>("pods", options.synced ?? true),
    services: new FakeSource<V1Service>("services", options.synced ?? true),
    endpoints: new FakeSource<V1Endpoints>("endpoints", options.synced ?? true),
  };
  const patches: [string, string, string | undefined][] = [];
  const events: string[] = [];
  const hub = new ConfigHub();
  const core = new ControllerCore({
    sources,
    hub,
    osmNamespace: "osm-system",
    meshName: "osm",
    logger: options.logger ?? pino({ level: "silent" }),
    metrics: createControllerMetrics(),
    recomputeFor: recomputeWith,
    patchStale: async (namespace, name, value) => {
      patches.push([namespace, name, value]);
      const pod = sources.pods.get(name, namespace);
      if (!pod) return;
      const annotations = { ...pod.metadata?.annotations };
      if (value === undefined) delete annotations[ANNOTATION_INTERCEPTION_STALE];
      else annotations[ANNOTATION_INTERCEPTION_STALE] = value;
      sources.pods.put({ ...pod, metadata: { ...pod.metadata, annotations } });
    },
    recordEvent: async (pod, event) => {
      events.push(`${pod.metadata?.name}: ${event.message}`);
      return "created";
    },
    debounceMs: 1,
  });
  sources.namespaces.put({
    metadata: { name: "curl", labels: { "openservicemesh.io/monitored-by": "osm" } },
  });
  return { sources, hub, core, patches, events };
}

test("the controller is not ready until every source has listed and a MeshConfig exists", () => {
  const { sources, core } = setup({ synced: false });
  core.reconcile();
  assert.equal(core.isReady(), false);
  for (const s of Object.values(sources)) (s as FakeSource<KubernetesObject>).markSynced();
  core.reconcile();
  assert.equal(core.isReady(), false);
  sources.meshConfigs.put(meshConfigObject());
  core.reconcile();
  assert.equal(core.isReady(), true);
});

test("a meshed pod gets a config with the mesh's endpoints and the MeshConfig's egress setting", () => {
  const { sources, hub, core } = setup();
  sources.meshConfigs.put(meshConfigObject({ enableEgress: false }));
  sources.pods.put(meshedPod("curl-1", []));
  sources.services.put({
    metadata: { name: "curl", namespace: "curl" },
    spec: { clusterIP: "192.0.2.80", selector: { app: "curl" }, ports: [{ port: 80 }] },
  });
  core.reconcile();
  const config = hub.get("curl/curl-1");
  assert.equal(config?.enableEgress, false);
  assert.equal(config?.maxDataPlaneConnections, 0);
  assert.deepEqual(
    config?.meshEndpoints.map((e) => `${e.service} ${e.ip}:${e.port}`),
    ["curl/curl 192.0.2.80:80", "curl/curl 198.51.100.5:80"],
  );
});

test("pods without a sidecar token get no config, and a deleted pod's config is dropped", () => {
  const { sources, hub, core } = setup();
  sources.meshConfigs.put(meshConfigObject());
  sources.pods.put({ metadata: { name: "plain", namespace: "curl" }, status: { podIP: "198.51.100.9" } });
  sources.pods.put(meshedPod("curl-1", []));
  core.reconcile();
  assert.deepEqual(hub.keys(), ["curl/curl-1"]);
  sources.pods.remove("curl-1", "curl");
  core.reconcile();
  assert.deepEqual(hub.keys(), []);
});

test("flipping enableEgress wakes a waiting long-poll with the new value", async () => {
  const { sources, hub, core } = setup();
  sources.meshConfigs.put(meshConfigObject({ enableEgress: true }));
  sources.pods.put(meshedPod("curl-1", []));
  core.reconcile();
  const version = hub.get("curl/curl-1")?.version ?? 0;
  const next = hub.wait("curl/curl-1", version, 5_000);
  sources.meshConfigs.put(meshConfigObject({ enableEgress: false }));
  const config = await next;
  assert.equal(config?.enableEgress, false);
  assert.ok((config?.version ?? 0) > version);
});

test("an invalid MeshConfig leaves the last valid one in force", () => {
  const { sources, hub, core } = setup();
  sources.meshConfigs.put(meshConfigObject({ enableEgress: false }));
  sources.pods.put(meshedPod("curl-1", []));
  core.reconcile();
  sources.meshConfigs.put(meshConfigObject({ enableEgress: "yes" }));
  core.reconcile();
  assert.equal(core.meshConfig?.spec.traffic.enableEgress, false);
  assert.equal(hub.get("curl/curl-1")?.enableEgress, false);
});

test("a pod admitted under other exclusions is reported stale with the diff and annotated, until recreated", async () => {
  const { sources, core, patches } = setup();
  sources.meshConfigs.put(meshConfigObject({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
  sources.pods.put(meshedPod("old", ["10.0.0.0/8"]));
  sources.pods.put(meshedPod("fresh", ["203.0.113.10/32"], "198.51.100.6"));
  core.reconcile();
  await core.idle();
  assert.deepEqual(
    core.stalePods().map((p) => [p.namespace, p.name, p.diff]),
    [["curl", "old", ["-10.0.0.0/8", "+203.0.113.10/32"]]],
  );
  assert.deepEqual(patches, [["curl", "old", "-10.0.0.0/8 +203.0.113.10/32"]]);
  assert.equal(
    sources.pods.get("old", "curl")?.metadata?.annotations?.[ANNOTATION_INTERCEPTION_STALE],
    "-10.0.0.0/8 +203.0.113.10/32",
  );

  // Reconciling again changes nothing: the annotation already says so.
  core.reconcile();
  await core.idle();
  assert.equal(patches.length, 1);

  // Recreated (a new pod admitted under the current MeshConfig): no longer stale.
  sources.pods.remove("old", "curl");
  sources.pods.put(meshedPod("old", ["203.0.113.10/32"]));
  core.reconcile();
  await core.idle();
  assert.deepEqual(core.stalePods(), []);
  assert.equal(patches.length, 1);
});

test("reverting the MeshConfig clears the stale annotation of a pod that matches again", async () => {
  const { sources, core, patches } = setup();
  sources.meshConfigs.put(meshConfigObject({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
  sources.pods.put(meshedPod("p", []));
  core.reconcile();
  await core.idle();
  assert.equal(core.stalePods().length, 1);
  sources.meshConfigs.put(meshConfigObject({ outboundIPRangeExclusionList: [] }));
  core.reconcile();
  await core.idle();
  assert.deepEqual(core.stalePods(), []);
  assert.deepEqual(patches.at(-1), ["curl", "p", undefined]);
  assert.equal(
    sources.pods.get("p", "curl")?.metadata?.annotations?.[ANNOTATION_INTERCEPTION_STALE],
    undefined,
  );
});

test("pods of one MeshConfig but different exclusion annotations get their own verdicts", async () => {
  const { sources, core } = setup();
  sources.meshConfigs.put(meshConfigObject());
  const plain = meshedPod("plain", []);
  const annotated = meshedPod("annotated", []);
  // Admitted without the annotation; it was added later (OSM reads annotations at admission only).
  annotated.metadata!.annotations!["openservicemesh.io/outbound-ip-range-exclusion-list"] = "198.51.100.0/24";
  sources.pods.put(plain);
  sources.pods.put(annotated);
  core.reconcile();
  await core.idle();
  assert.deepEqual(
    core.stalePods().map((p) => [p.name, p.diff]),
    [["annotated", ["+198.51.100.0/24"]]],
  );
});

test("a pod whose policy cannot be recomputed is neither reported nor patched, and is logged once", async () => {
  const lines: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
  const { sources, core, patches } = setup({ logger });
  sources.meshConfigs.put(meshConfigObject());
  const bad = meshedPod("bad", []);
  bad.metadata!.annotations!["openservicemesh.io/outbound-ip-range-exclusion-list"] = "999.1.1.1/99";
  sources.pods.put(bad);
  core.reconcile();
  core.reconcile();
  await core.idle();
  assert.deepEqual(core.stalePods(), []);
  assert.deepEqual(patches, []);
  const warnings = lines.filter((l) => l.includes("cannot recompute"));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /curl\/bad/);
});

test("a meshed pod that can reach the proxy uid gets one EgressBypassPossible event, only while egress is disabled", async () => {
  const { sources, core, events } = setup();
  sources.meshConfigs.put(meshConfigObject({ enableEgress: true }));
  const root = meshedPod("curl-1", []);
  sources.pods.put({ ...root, metadata: { ...root.metadata, uid: "uid-1" } });
  const plain = { metadata: { name: "plain", namespace: "curl", uid: "uid-2" }, spec: root.spec };
  sources.pods.put(plain);
  core.reconcile();
  await core.idle();
  assert.deepEqual(events, [], "egress enabled: the proxy uid is no way around anything");
  sources.meshConfigs.put(meshConfigObject({ enableEgress: false }));
  for (let i = 0; i < 3; i++) {
    core.reconcile();
    await core.idle();
  }
  assert.equal(events.length, 1, "once, and not for the pod without a sidecar");
  assert.match(events[0] ?? "", /^curl-1: egress is disabled, .*container "curl" runs as .* CAP_SETUID/);
});

test("a pod's policy is served by its hash, and still after a MeshConfig change while the pod records it", () => {
  const { sources, core } = setup();
  sources.meshConfigs.put(meshConfigObject({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
  const pod = meshedPod("curl-1", ["203.0.113.10/32"]);
  const hash = pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_POLICY_HASH] ?? "";
  sources.pods.put(pod);
  core.reconcile();
  assert.equal(core.interceptionPolicy(hash), pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_POLICY]);
  // The MeshConfig changes before the pod's osm-init ran: the policy it was admitted with is still served.
  sources.meshConfigs.put(meshConfigObject({ outboundIPRangeExclusionList: [] }));
  core.reconcile();
  assert.equal(core.stalePods().length, 1);
  assert.equal(core.interceptionPolicy(hash), pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_POLICY]);
  // Once no pod records it, it is gone.
  sources.pods.remove("curl-1", "curl");
  core.reconcile();
  assert.equal(core.interceptionPolicy(hash), undefined);
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Namespace } from "@kubernetes/client-node";
import pino from "pino";
import type { AdmissionRequest } from "../../../src/kube/admission.ts";
import { type ClusterReader, createPodInjectionHandler, mintSeeds } from "../../../src/kube/pod-webhook.ts";
import { namespace, OPTIONS, pod } from "../injector/builders.ts";

const logger = pino({ level: "silent" });
const signal = new AbortController().signal;

function handler(namespaces: V1Namespace[], meshConfig: unknown) {
  const reader: ClusterReader = {
    getNamespace: async (name) => namespaces.find((n) => n.metadata?.name === name),
    getMeshConfig: async () => meshConfig,
  };
  return createPodInjectionHandler({ reader, options: OPTIONS, logger });
}

function request(overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: "u",
    kind: { group: "", version: "v1", kind: "Pod" },
    namespace: "curl",
    operation: "CREATE",
    object: pod(),
    ...overrides,
  };
}

const MESH_CONFIG = { apiVersion: "config.openservicemesh.io/v1alpha2", kind: "MeshConfig", spec: {} };

describe("the pod webhook around the injector", () => {
  test("UPDATE and non-Pod requests are allowed untouched", async () => {
    const h = handler([namespace()], MESH_CONFIG);
    assert.deepEqual(await h(request({ operation: "UPDATE" }), signal), { allowed: true });
    assert.deepEqual(await h(request({ kind: { group: "", version: "v1", kind: "Service" } }), signal), {
      allowed: true,
    });
  });

  test("a pod whose namespace cannot be found is denied with the namespace name", async () => {
    const decision = await handler([], MESH_CONFIG)(request(), signal);
    assert.ok(!decision.allowed);
    assert.equal(decision.status.message, "namespace curl not found");
  });

  test("a pod that gets no sidecar is admitted even when the MeshConfig is missing", async () => {
    const h = handler([namespace("curl", { labels: {} })], undefined);
    assert.deepEqual(await h(request(), signal), { allowed: true });
  });

  test("a pod that should get a sidecar is denied when the MeshConfig is missing, saying how to fix it", async () => {
    const decision = await handler([namespace()], undefined)(request(), signal);
    assert.ok(!decision.allowed);
    assert.match(
      decision.status.message,
      /^MeshConfig osm-system\/osm-mesh-config not found \(hint: run osm install/,
    );
  });

  test("an injected pod's patch is returned with the policy warnings", async () => {
    const mc = { ...MESH_CONFIG, spec: { traffic: { outboundIPRangeExclusionList: ["0.0.0.0/0"] } } };
    const decision = await handler([namespace()], mc)(request(), signal);
    assert.ok(decision.allowed);
    assert.ok((decision.patch ?? []).length > 0);
    assert.ok(decision.warnings?.some((w) => w.startsWith("exclude-everything:")));
  });

  test("minted seeds are a v4 UUID, different every time", () => {
    const a = mintSeeds();
    const b = mintSeeds();
    assert.match(a.proxyUuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a.proxyUuid, b.proxyUuid);
  });

  test("the MeshConfig is validated once per resourceVersion: a new version is read again", async () => {
    const stored = {
      ...MESH_CONFIG,
      metadata: { name: "osm-mesh-config", resourceVersion: "1" },
      spec: { traffic: { outboundIPRangeExclusionList: ["203.0.113.10/32"] } },
    };
    const h = handler([namespace()], stored);
    assert.ok((await h(request(), signal)).allowed);
    // The same version is the same object for the API server: what was validated for it still holds.
    stored.spec.traffic.outboundIPRangeExclusionList = ["203.0.113.10/33"];
    assert.ok((await h(request(), signal)).allowed);
    stored.metadata.resourceVersion = "2";
    const decision = await h(request(), signal);
    assert.ok(!decision.allowed);
    assert.match(decision.status.message, /is invalid: .*203\.0\.113\.10\/33/);
  });
});

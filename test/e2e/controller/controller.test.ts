// The embedded API server makes certificates with @peculiar/x509, which needs this polyfill loaded first.
import "reflect-metadata";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
  type V1Namespace,
  type V1Pod,
} from "@kubernetes/client-node";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import pino from "pino";
import { defaultMeshConfig, meshConfigCrd } from "../../../src/config/index.ts";
import { SIDECAR_CONFIG_PATH, type SidecarConfig } from "../../../src/config/sidecar-api.ts";
import { SIDECAR_TOKEN_AUDIENCE, SIDECAR_TOKEN_VOLUME } from "../../../src/config/sidecar-token.ts";
import { ANNOTATION_INTERCEPTION_POLICY, ANNOTATION_INTERCEPTION_STALE } from "../../../src/constants.ts";
import { type RunningController, startController } from "../../../src/controller/index.ts";
import { injectPod } from "../../../src/injector/index.ts";
import { TokenSigner } from "../../../src/local/apiserver/tokens.ts";
import { startApiServer } from "../../../src/local/embedded-api-server.ts";
import { watchControlPlane } from "../../../src/sidecar/config-source.ts";
import { ConfigStore } from "../../../src/sidecar/config-store.ts";
import { createSidecarMetrics } from "../../../src/sidecar/metrics.ts";

const OSM_NS = "osm-system";
const APP_NS = "osmt-ctl-app";
const MC = {
  group: "config.openservicemesh.io",
  version: "v1alpha2",
  namespace: OSM_NS,
  plural: "meshconfigs",
};
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
/** Each running pod's projected osm-controller token, as the node would write it into the sidecar's volume. */
const tokens = new Map<string, string>();
const logger = pino({ level: "silent" });

let stateDir: string;
let server: { url: string; caPem: string; token: string; close: () => Promise<void> };
let kubeConfig: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const controllers: RunningController[] = [];

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

async function runController(port = 0): Promise<RunningController> {
  const controller = await startController({
    kubeConfig,
    osmNamespace: OSM_NS,
    meshName: "osm",
    host: "127.0.0.1",
    port,
    logger,
  });
  controllers.push(controller);
  await controller.whenReady(15_000);
  return controller;
}

async function stopController(controller: RunningController): Promise<void> {
  await controller.close();
  controllers.splice(controllers.indexOf(controller), 1);
}

/** The app namespace as `osm namespace add` leaves it. */
const APP_NAMESPACE: V1Namespace = {
  metadata: {
    name: APP_NS,
    labels: { "openservicemesh.io/monitored-by": "osm" },
    annotations: { "openservicemesh.io/sidecar-injection": "enabled" },
  },
};

/**
 * A pod as the real injector (src/injector) admits it while the MeshConfig excludes `exclusions`: its
 * JSON patch applied, so the policy record and the sidecar's projected token volume are the injector's.
 */
function meshedPod(name: string, exclusions: string[]): V1Pod {
  const preset = defaultMeshConfig();
  const pod: V1Pod = {
    metadata: { name, namespace: APP_NS, labels: { app: "curl" } },
    spec: { containers: [{ name: "curl", image: "curl", ports: [{ name: "http", containerPort: 8080 }] }] },
  };
  const result = injectPod({
    pod,
    namespace: APP_NAMESPACE,
    meshConfig: {
      ...preset,
      spec: { ...preset.spec, traffic: { ...preset.spec.traffic, outboundIPRangeExclusionList: exclusions } },
    },
    seeds: { proxyUuid: randomUUID() },
    options: {
      meshName: "osm",
      osmNamespace: OSM_NS,
      defaultSidecarImage: "osm-ts/sidecar",
      defaultInitContainerImage: "osm-ts/init",
      imagePullPolicy: "IfNotPresent",
      osmCommand: ["osm"],
      controllerUrl: "http://127.0.0.1:15128",
      initBackend: "iptables",
    },
  });
  assert.equal(result.kind, "inject", JSON.stringify(result));
  if (result.kind !== "inject") throw new Error("not injected");
  return fastJsonPatch.applyPatch(structuredClone(pod), result.patch as Operation[], false, false)
    .newDocument;
}

async function createRunningPod(pod: V1Pod, ip: string): Promise<void> {
  const created = await core.createNamespacedPod({ namespace: APP_NS, body: pod });
  // What the node does for the sidecar's projected volume: a token for the pod's service account, bound to it.
  const name = pod.metadata!.name!;
  const request = await core.createNamespacedServiceAccountToken({
    namespace: APP_NS,
    name: created.spec?.serviceAccountName || "default",
    body: {
      spec: {
        audiences: [SIDECAR_TOKEN_AUDIENCE],
        expirationSeconds: 3600,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name, uid: created.metadata?.uid },
      },
    },
  });
  tokens.set(name, request.status?.token ?? "");
  // What the kubelet (or the local node agent) reports once the pod runs.
  await core.patchNamespacedPodStatus(
    {
      namespace: APP_NS,
      name: pod.metadata!.name!,
      body: {
        status: {
          phase: "Running",
          podIP: ip,
          podIPs: [{ ip }],
          conditions: [{ type: "Ready", status: "True" }],
        },
      },
    },
    MERGE,
  );
}

async function deletePod(name: string): Promise<void> {
  await core.deleteNamespacedPod({ namespace: APP_NS, name, gracePeriodSeconds: 0 });
  await eventually(`pod ${name} gone`, async () => {
    try {
      await core.readNamespacedPod({ namespace: APP_NS, name });
      return undefined;
    } catch (error) {
      return (error as { code?: number }).code === 404 ? true : undefined;
    }
  });
}

/** The pod's token in a file, as the sidecar reads it from its projected volume. */
function tokenFileOf(pod: string): string {
  const file = join(stateDir, `${pod}.token`);
  writeFileSync(file, tokens.get(pod) ?? "");
  return file;
}

async function fetchConfig(
  controller: RunningController,
  pod: string,
  query = "",
): Promise<{ status: number; config?: SidecarConfig }> {
  const res = await fetch(`${controller.url}${SIDECAR_CONFIG_PATH}?pod=${APP_NS}/${pod}${query}`, {
    headers: { authorization: `Bearer ${tokens.get(pod)}` },
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status };
  }
  return { status: 200, config: (await res.json()) as SidecarConfig };
}

async function patchTraffic(traffic: Record<string, unknown>): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { ...MC, name: "osm-mesh-config", body: { spec: { traffic } } },
    MERGE,
  );
}

before(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "osmt-ctl-"));
  server = await startApiServer({ stateDir, port: 0, logger, crdDirs: [] });
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      { name: "osmt-ctl", server: server.url, caData: Buffer.from(server.caPem).toString("base64") },
    ],
    users: [{ name: "osmt-ctl", token: server.token }],
    contexts: [{ name: "osmt-ctl", cluster: "osmt-ctl", user: "osmt-ctl" }],
    currentContext: "osmt-ctl",
  });
  core = kubeConfig.makeApiClient(CoreV1Api);
  custom = kubeConfig.makeApiClient(CustomObjectsApi);
  await kubeConfig
    .makeApiClient(ApiextensionsV1Api)
    .createCustomResourceDefinition({ body: meshConfigCrd() as unknown as V1CustomResourceDefinition });
  await core.createNamespace({ body: { metadata: { name: OSM_NS } } });
  await core.createNamespace({
    body: APP_NAMESPACE,
  });
  await eventually("the MeshConfig resource is served", () => custom.listNamespacedCustomObject(MC));
});

after(async () => {
  for (const controller of [...controllers]) await controller.close();
  await server?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test("a MeshConfig that exists is left exactly as it is", async () => {
  const preset = defaultMeshConfig();
  const created = (await custom.createNamespacedCustomObject({
    ...MC,
    body: {
      apiVersion: "config.openservicemesh.io/v1alpha2",
      kind: "MeshConfig",
      metadata: { name: "osm-mesh-config", namespace: OSM_NS },
      spec: { ...preset.spec, traffic: { ...preset.spec.traffic, enableEgress: false } },
    },
  })) as { metadata: { resourceVersion: string } };
  const controller = await runController();
  const now = (await custom.getNamespacedCustomObject({ ...MC, name: "osm-mesh-config" })) as {
    metadata: { resourceVersion: string };
    spec: { traffic: { enableEgress: boolean } };
  };
  assert.equal(now.metadata.resourceVersion, created.metadata.resourceVersion);
  assert.equal(now.spec.traffic.enableEgress, false);
  assert.equal(controller.core.meshConfig?.spec.traffic.enableEgress, false);
  await stopController(controller);
  await custom.deleteNamespacedCustomObject({ ...MC, name: "osm-mesh-config" });
});

test("an absent MeshConfig is created from the preset", async () => {
  await runController();
  const created = (await custom.getNamespacedCustomObject({ ...MC, name: "osm-mesh-config" })) as {
    metadata: { annotations?: Record<string, string> };
    spec: { traffic: { enableEgress: boolean } };
  };
  assert.equal(created.spec.traffic.enableEgress, true);
  assert.ok(created.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"]);
});

test("a pod behind a service in a monitored namespace is a mesh endpoint in a sidecar's watch stream", async () => {
  const controller = controllers[0]!;
  await core.createNamespacedService({
    namespace: APP_NS,
    body: {
      metadata: { name: "curl" },
      spec: { selector: { app: "curl" }, ports: [{ name: "http", port: 80, targetPort: "http" as never }] },
    },
  });
  const curl1 = meshedPod("curl-1", []);
  // The sidecar's credential is a projected token volume, never a value in the PodSpec.
  const envoy = curl1.spec?.containers.find((c) => c.name === "envoy");
  assert.deepEqual(
    envoy?.volumeMounts?.map((m) => m.name),
    [SIDECAR_TOKEN_VOLUME],
  );
  assert.doesNotMatch(JSON.stringify(curl1), /TOKEN|eyJ/);
  await createRunningPod(curl1, "198.51.100.5");
  const config = await eventually("curl-1's config lists its own pod IP", async () => {
    const { config } = await fetchConfig(controller, "curl-1");
    return config?.meshEndpoints.some((e) => e.ip === "198.51.100.5" && e.port === 8080) ? config : undefined;
  });
  const viaService = config.meshEndpoints.find((e) => e.service === `${APP_NS}/curl` && e.port === 80);
  assert.deepEqual(viaService?.backends, [{ ip: "198.51.100.5", port: 8080 }]);
  assert.equal((await fetchConfig(controller, "curl-1")).status, 200);
  // Verified for real (TokenReview): a token the API server did not sign, one for its own audience rather
  // than osm-controller, and one bound to another pod are all refused.
  const forged = await new TokenSigner(
    generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ format: "pem", type: "pkcs8" })
      .toString(),
  ).issue({
    namespace: APP_NS,
    serviceAccount: { name: "default", uid: "forged" },
    pod: { name: "curl-1", uid: "forged" },
    audiences: [SIDECAR_TOKEN_AUDIENCE],
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
  });
  const apiAudience = await core.createNamespacedServiceAccountToken({
    namespace: APP_NS,
    name: "default",
    body: { spec: { boundObjectRef: { apiVersion: "v1", kind: "Pod", name: "curl-1" } } },
  });
  const other = meshedPod("curl-2", []);
  await createRunningPod(other, "198.51.100.8");
  for (const token of ["not-the-token", forged, apiAudience.status?.token, tokens.get("curl-2")]) {
    const res = await fetch(`${controller.url}${SIDECAR_CONFIG_PATH}?pod=${APP_NS}/curl-1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 401, String(token).slice(0, 20));
    await res.body?.cancel();
  }
  await deletePod("curl-2");
  await eventually("curl-1's config no longer lists curl-2", async () => {
    const { config } = await fetchConfig(controller, "curl-1");
    return config?.meshEndpoints.some((e) => e.ip === "198.51.100.8") === false ? true : undefined;
  });
});

test("flipping enableEgress with a merge patch reaches a waiting watch client within a second", async () => {
  const controller = controllers[0]!;
  const { config } = await fetchConfig(controller, "curl-1");
  assert.equal(config?.enableEgress, true);
  const waiting = fetchConfig(controller, "curl-1", `&sinceVersion=${config?.version}&timeoutSeconds=20`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const patchedAt = Date.now();
  await patchTraffic({ enableEgress: false });
  const next = await waiting;
  const elapsed = Date.now() - patchedAt;
  assert.equal(next.status, 200);
  assert.equal(next.config?.enableEgress, false);
  assert.ok(elapsed < 1000, `took ${elapsed} ms`);
});

test("a pod admitted under other exclusions is stale with the diff, on the API and the pod, until recreated", async () => {
  const controller = controllers[0]!;
  // Egress back on, as the pod was admitted: the recorded policy covers egress too, and this is about exclusions.
  await patchTraffic({ enableEgress: true, outboundIPRangeExclusionList: ["203.0.113.10/32"] });
  await createRunningPod(meshedPod("old", ["10.0.0.0/8"]), "198.51.100.6");
  const report = await eventually("old is reported stale", async () => {
    const body = (await (await fetch(`${controller.url}/v1/pods/stale`)).json()) as {
      items: { namespace: string; name: string; diff: string[] }[];
    };
    return body.items.find((p) => p.name === "old");
  });
  assert.deepEqual(report.diff, ["-10.0.0.0/8", "+203.0.113.10/32"]);
  await eventually("old carries the stale annotation", async () => {
    const pod = await core.readNamespacedPod({ namespace: APP_NS, name: "old" });
    return pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_STALE] === "-10.0.0.0/8 +203.0.113.10/32"
      ? true
      : undefined;
  });

  await deletePod("old");
  await createRunningPod(meshedPod("old", ["203.0.113.10/32"]), "198.51.100.6");
  await eventually("the recreated pod is not stale", async () => {
    const pod = controller.core.lookupPod(APP_NS, "old");
    const fresh = pod?.metadata?.annotations?.[ANNOTATION_INTERCEPTION_POLICY]?.includes("203.0.113.10/32");
    return fresh && controller.core.stalePods().every((p) => p.name !== "old") ? true : undefined;
  });
  const pod = await core.readNamespacedPod({ namespace: APP_NS, name: "old" });
  assert.equal(pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_STALE], undefined);
});

test("a restarted controller serves the same configs and stale pods, and the sidecar's client follows it", async () => {
  const first = controllers[0]!;
  await createRunningPod(meshedPod("older", ["10.0.0.0/8"]), "198.51.100.7");
  await eventually("older is stale", async () =>
    first.core.stalePods().some((p) => p.name === "older") ? true : undefined,
  );
  // "older" also backs the service: wait until curl-1's document includes it, so nothing changes after.
  const before = await eventually("curl-1's config lists older as a backend", async () => {
    const { config } = await fetchConfig(first, "curl-1");
    return config?.meshEndpoints.some((e) => e.ip === "198.51.100.7") ? config : undefined;
  });
  const staleBefore = first.core.stalePods();

  // The sidecar's own watch client (src/sidecar), as `osm sidecar run --controller` uses it.
  const store = new ConfigStore();
  const watch = watchControlPlane({
    url: first.url,
    pod: `${APP_NS}/curl-1`,
    tokenFile: tokenFileOf("curl-1"),
    store,
    logger,
    metrics: createSidecarMetrics(),
    backoff: { baseMs: 50, maxMs: 200 },
    longPollSeconds: 5,
  });
  try {
    await eventually("the sidecar applied the controller's config", async () =>
      (store.version ?? 0) >= before.version ? true : undefined,
    );
    const port = Number(new URL(first.url).port);
    await stopController(first);

    const second = await runController(port);
    const after = await fetchConfig(second, "curl-1", `&sinceVersion=${before.version}&timeoutSeconds=5`);
    assert.equal(after.status, 200);
    assert.ok((after.config?.version ?? 0) > before.version);
    assert.deepEqual({ ...after.config, version: 0 }, { ...before, version: 0 });
    assert.deepEqual(second.core.stalePods(), staleBefore);
    // The sidecar reconnects and accepts the restarted controller's document (its version is newer).
    await eventually("the sidecar applied the restarted controller's config", async () =>
      store.version === after.config?.version ? true : undefined,
    );
    await patchTraffic({ enableEgress: true });
    await eventually("the sidecar sees enableEgress flipped through the new controller", async () =>
      store.table?.config.enableEgress === true ? true : undefined,
    );
  } finally {
    watch.stop();
  }
});

test("a controller keeps working across an API server restart and picks up changes made after it", async () => {
  const controller = controllers[0]!;
  const { config } = await fetchConfig(controller, "curl-1");
  assert.equal(config?.enableEgress, true);
  const port = Number(new URL(server.url).port);
  await server.close();
  server = await startApiServer({ stateDir, port, logger, crdDirs: [] });
  await eventually("the MeshConfig is served again", () => custom.listNamespacedCustomObject(MC));
  await patchTraffic({ enableEgress: false });
  await eventually(
    "the controller sees the patch made after the restart",
    async () => ((await fetchConfig(controller, "curl-1")).config?.enableEgress === false ? true : undefined),
    20_000,
  );
  assert.ok(controller.core.isReady());
});

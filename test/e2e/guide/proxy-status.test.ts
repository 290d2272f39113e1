import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { buildEffectivePolicy, canonicalPolicyText, policyHash } from "../../../src/config/index.ts";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ENVOY_UNIQUE_ID_LABEL_NAME,
  LABEL_MONITORED_BY,
} from "../../../src/constants.ts";
import { readMeshConfig } from "../../../src/guide/proxy-status.ts";
import { startTestApiServer, type TestApiServer } from "../../support/apiserver.ts";
import { type Ran, run as runCommand } from "../../support/run.ts";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const NS = "osmt-gd-app";
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

let dir: string;
let server: TestApiServer;
let env: NodeJS.ProcessEnv;
let kc: KubeConfig;
let core: CoreV1Api;

/** Runs a command with this suite's kubeconfig. */
function run(file: string, ...args: string[]): Promise<Ran> {
  return runCommand(file, args, { env });
}

/** Creates a running pod as the injector would admit it under the MeshConfig now stored. */
async function admitPod(name: string, labels: Record<string, string> = {}): Promise<void> {
  const policy = buildEffectivePolicy(await readMeshConfig(kc, "osm-system"));
  const pod: V1Pod = {
    metadata: {
      name,
      namespace: NS,
      labels: { app: "curl", ...labels },
      annotations: {
        [ANNOTATION_INTERCEPTION_POLICY_HASH]: policyHash(policy),
        [ANNOTATION_INTERCEPTION_POLICY]: canonicalPolicyText(policy),
      },
    },
    spec: { containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "365d"] }] },
  };
  await core.createNamespacedPod({ namespace: NS, body: pod });
  // What the node agent reports once the pod runs; 192.0.2.0/24 is no pod network on this host.
  await core.patchNamespacedPodStatus(
    {
      namespace: NS,
      name,
      body: { status: { phase: "Running", podIP: "192.0.2.77", podIPs: [{ ip: "192.0.2.77" }] } },
    },
    MERGE,
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "osmt-gd-ps-"));
  server = await startTestApiServer(dir, "osmt-gd");
  ({ env, kc } = server);
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "osm-system" } } });
  await core.createNamespace({ body: { metadata: { name: NS, labels: { [LABEL_MONITORED_BY]: "osm" } } } });
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: "config.openservicemesh.io",
    version: "v1alpha2",
    namespace: "osm-system",
    plural: "meshconfigs",
    body: {
      apiVersion: "config.openservicemesh.io/v1alpha2",
      kind: "MeshConfig",
      metadata: { name: "osm-mesh-config", namespace: "osm-system" },
      spec: { traffic: { enableEgress: false } },
    },
  });
  await admitPod("curl-old", { [ENVOY_UNIQUE_ID_LABEL_NAME]: "u-1" });
});

after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a pod admitted under the current MeshConfig shows as current", async () => {
  const r = await run(osm, "proxy", "status", "-n", NS);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^NAMESPACE {5}POD {8}INTERCEPTION {3}DIFFERENCE {3}\nosmt-gd-app {3}curl-old {3}current {8}- /,
  );
  assert.match(r.stdout, /All 1 meshed pod\(s\) run the current interception policy\./);
});

test("after kubectl patches an exclusion in, the running pod is stale with +CIDR; a new pod is current", async () => {
  const patch = await run(
    "kubectl",
    "patch",
    "meshconfig",
    "osm-mesh-config",
    "-n",
    "osm-system",
    "-p",
    '{"spec":{"traffic":{"outboundIPRangeExclusionList":["203.0.113.10/32"]}}}',
    "--type=merge",
  );
  assert.equal(patch.code, 0, patch.stderr);
  await admitPod("curl-new");
  const r = await run(osm, "proxy", "status", "-A");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /curl-new {3}current {8}-/);
  assert.match(r.stdout, /curl-old {3}STALE {10}\+203\.0\.113\.10\/32/);
  assert.match(r.stdout, /1 pod\(s\) run an out-of-date interception policy/);
  assert.match(r.stdout, /kubectl delete pod curl-old -n osmt-gd-app/);
});

test("osm explain pod/NAME explains the stale pod with the policy it runs, and the new pod with the exclusion", async () => {
  const stale = await run(osm, "explain", "pod/curl-old", "-n", NS, "203.0.113.10:80");
  assert.equal(stale.code, 0, stale.stderr);
  assert.match(stale.stdout, /verdict: outbound sidecar .* → refused: egress is disabled/);
  assert.match(stale.stdout, /WARNING: the pod is stale: .*\+203\.0\.113\.10\/32/);
  const fresh = await run(osm, "explain", "pod/curl-new", "-n", NS, "203.0.113.10:80");
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, /verdict: direct/);
  assert.match(
    fresh.stdout,
    /entry 203\.0\.113\.10\/32 from: MeshConfig spec\.traffic\.outboundIPRangeExclusionList\n/,
  );
  assert.doesNotMatch(fresh.stdout, /stale/);
});

test("osm proxy get refuses a pod that is not in the mesh, with OSM's message", async () => {
  const r = await run(osm, "proxy", "get", "config_dump", "curl-new", "-n", NS);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "Error: Pod curl-new in namespace osmt-gd-app is not a part of a mesh\n");
  const missing = await run(osm, "proxy", "get", "stats", "nope", "-n", NS);
  assert.equal(missing.stderr, "Error: Could not find pod nope in namespace osmt-gd-app\n");
});

/**
 * Live interception updates when the kernel refuses the change: the node agent's updater against a real API
 * server, with a pod whose namespace is simulated by a runner (the refusal is injected; the rules themselves
 * are the netns tests' business). The pod keeps its previous rules and record, the failure is reported (a
 * Warning Event, `osm proxy status`: `failed (<reason>)`) and retried with backoff; once the kernel accepts,
 * the record is what is applied (`updated live at <time>`) and the failure is cleared. The metrics count every
 * failed attempt and show the pod failing, then not.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import pino from "pino";
import { buildEffectivePolicy, recordPolicy, validateMeshConfig } from "../../../src/config/index.ts";
import { RecordingRunner } from "../../../src/edge/command-runner.ts";
import { buildPlan, renderNftTable } from "../../../src/interception/index.ts";
import { LiveInterception } from "../../../src/local/node/live-interception.ts";
import type { PodEvent } from "../../../src/local/node/pod-context.ts";
import { startTestApiServer, type TestApiServer } from "../../support/apiserver.ts";
import { patchMeshConfig } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const OSM = new URL("../../../bin/osm", import.meta.url).pathname;
const NS = "osmt-lf-app";
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const meshConfig = (exclusions: string[]) => ({
  apiVersion: "config.openservicemesh.io/v1alpha2",
  kind: "MeshConfig",
  metadata: {
    name: "osm-mesh-config",
    namespace: "osm-system",
    annotations: { "osm-ts.io/live-interception-updates": "true" },
  },
  spec: { traffic: { enableEgress: false, outboundIPRangeExclusionList: exclusions } },
});
const policyOf = (exclusions: string[]) =>
  buildEffectivePolicy(
    validateMeshConfig({ ...meshConfig(exclusions), metadata: { name: "osm-mesh-config" } }),
  );
const tableOf = (exclusions: string[]) =>
  renderNftTable(buildPlan(policyOf(exclusions), { ipv6: true, resolvers: [] }).nft);

let dir: string;
let server: TestApiServer;
let live: LiveInterception;
let pod: V1Pod;
const events: PodEvent[] = [];
/** The pod's table as the simulated kernel holds it, and whether it refuses the next transactions. */
let kernel = tableOf([]);
let refusing = true;
let refresh: NodeJS.Timeout | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "osmt-lf-"));
  server = await startTestApiServer(dir, "osmt-lf");
  const core = server.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "osm-system" } } });
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await server.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: "config.openservicemesh.io",
    version: "v1alpha2",
    namespace: "osm-system",
    plural: "meshconfigs",
    body: meshConfig([]),
  });
  const recording = recordPolicy(policyOf([]));
  pod = await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: {
        name: "curl",
        annotations: {
          "osm-ts.io/interception-policy-hash": recording.hash,
          "osm-ts.io/interception-policy": recording.text,
        },
      },
      spec: { containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "365d"] }] },
    },
  });
  await core.patchNamespacedPodStatus(
    { namespace: NS, name: "curl", body: { status: { phase: "Running", podIP: "192.0.2.77" } } },
    MERGE,
  );
  const uid = pod.metadata?.uid ?? "";
  const runner = new RecordingRunner((argv) => {
    const command = argv.join(" ");
    if (command === "nft list table inet osm_proxy") return { code: 0, stdout: kernel, stderr: "" };
    if (command === "nft -f -" && refusing)
      return { code: 1, stdout: "", stderr: "Error: Could not process rule: No buffer space available" };
    if (command === "nft -f -") {
      kernel = tableOf(["203.0.113.10/32"]);
      return { code: 0, stdout: "", stderr: "" };
    }
    return { code: 1, stdout: "", stderr: `unexpected: ${command}` };
  });
  live = new LiveInterception({
    kubeConfig: server.kc,
    locator: {
      locate: async () => ({ netns: "/run/netns/simulated", podIPs: ["192.0.2.77"], resolvConf: "" }),
    },
    logger: pino({ level: "silent" }),
    pods: () => [pod],
    postEvent: (_pod, event) => events.push(event),
    runnerFor: () => runner,
  });
  live.start();
  // The informer's part: the latest pod object, and a nudge when it changes.
  refresh = setInterval(() => {
    void core.readNamespacedPod({ namespace: NS, name: "curl" }).then(
      (p) => {
        if (p.metadata?.resourceVersion !== pod.metadata?.resourceVersion) {
          pod = p;
          live.podChanged(uid);
        }
      },
      () => {},
    ); // the next read retries
  }, 100);
});

after(async () => {
  clearInterval(refresh);
  await live?.stop();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const annotation = (key: string) => pod.metadata?.annotations?.[key];

test("a refused update keeps the old rules and record, is reported and retried with backoff", async () => {
  const recordedHash = annotation("osm-ts.io/interception-policy-hash");
  const patched = await patchMeshConfig(server.env, { spec: meshConfig(["203.0.113.10/32"]).spec });
  assert.equal(patched.code, 0, patched.stderr);
  await until(
    "the failure recorded on the pod",
    () => annotation("osm-ts.io/interception-live-failed"),
    10_000,
  );
  assert.match(
    annotation("osm-ts.io/interception-live-failed") ?? "",
    /nft rejected the element update .*No buffer space available/,
  );
  assert.equal(
    annotation("osm-ts.io/interception-policy-hash"),
    recordedHash,
    "the record is still what runs",
  );
  assert.equal(kernel, tableOf([]), "the previous rules");
  await until(
    "a retry",
    () => (events.filter((e) => e.reason === "InterceptionUpdateFailed").length >= 2 ? true : undefined),
    10_000,
  );
  const failed = events.filter((e) => e.reason === "InterceptionUpdateFailed");
  assert.equal(failed[0]?.type, "Warning");
  assert.match(
    failed[0]?.message ?? "",
    /attempt 1, retrying in 1 s\); the pod keeps its previous rules: nft rejected/,
  );
  assert.match(failed[1]?.message ?? "", /attempt 2, retrying in 2 s\)/);
  const metrics = await live.metrics.registry.metrics();
  const failures =
    /osm_ts_interception_live_update_failures_total\{namespace="osmt-lf-app",pod="curl"\} (\d+)/.exec(
      metrics,
    );
  assert.ok(Number(failures?.[1]) >= 2, `every failed attempt counted:\n${metrics}`);
  assert.match(metrics, /^osm_ts_interception_live_update_failing_pods 1$/m);
  const status = await run(OSM, ["proxy", "status", "-n", NS], { env: server.env });
  assert.match(
    status.stdout,
    /curl {3}failed \(nft rejected the element update .*\) {3}\+203\.0\.113\.10\/32/,
  );
});

test("once the kernel accepts, the record is what is applied and the failure is cleared", async () => {
  refusing = false;
  const wanted = recordPolicy(policyOf(["203.0.113.10/32"])).hash;
  await until(
    "the new record",
    () => (annotation("osm-ts.io/interception-policy-hash") === wanted ? true : undefined),
    // The next retry may be up to the backoff's cap (30 s) away when the first test ran slowly under load.
    60_000,
  );
  assert.equal(kernel, tableOf(["203.0.113.10/32"]));
  assert.equal(annotation("osm-ts.io/interception-live-failed"), undefined);
  assert.match(annotation("osm-ts.io/interception-updated-live") ?? "", /^\d{4}-\d\d-\d\dT/);
  assert.ok(
    events.some((e) => e.reason === "InterceptionUpdated" && /\+203\.0\.113\.10\/32/.test(e.message)),
  );
  const status = await run(OSM, ["proxy", "status", "-n", NS], { env: server.env });
  assert.match(status.stdout, /curl {3}updated live at \S+ {3}-/);
  const metrics = await live.metrics.registry.metrics();
  assert.match(metrics, /^osm_ts_interception_live_update_failing_pods 0$/m);
  assert.match(metrics, /^osm_ts_interception_live_updates_total\{how="elements"\} 1$/m);
});

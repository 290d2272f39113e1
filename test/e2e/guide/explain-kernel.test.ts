import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import { ANNOTATION_SIDECAR_INJECTION, LABEL_MONITORED_BY } from "../../../src/constants.ts";
import { readMeshConfig } from "../../../src/guide/proxy-status.ts";
import { injectPod } from "../../../src/injector/index.ts";
import { freePort } from "../../support/poll.ts";
import { kubectlEnv, type Ran, run as runCommand } from "../../support/run.ts";

/**
 * `osm explain pod/NAME` against a pod the embedded node agent really runs: the pod is admitted as the
 * injector would admit it (its osm-init programs the rules in the pod's netns), and explain must read those
 * rules back and agree with them. Own bridge, subnets, port and state dir: no collision with other suites.
 */
const repo = new URL("../../../", import.meta.url).pathname;
const osm = join(repo, "bin/osm");
const isRoot = process.getuid?.() === 0;
const NS = "osmt-gd-k";

let dir: string;
let env: NodeJS.ProcessEnv;
let stateDir: string;
let kubeconfig: string;
let podName = "";

function run(file: string, ...args: string[]): Promise<Ran> {
  return runCommand(file, args, { env, timeoutMs: 120_000 });
}

before(async () => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), "osmt-gd-k-"));
  stateDir = join(dir, "state");
  kubeconfig = join(dir, "kubeconfig");
  env = { ...process.env, ...kubectlEnv(kubeconfig, dir) };
  const up = await run(
    osm,
    "mesh",
    "up",
    "--state-dir",
    stateDir,
    "--kubeconfig",
    kubeconfig,
    "--port",
    String(await freePort()),
    "--bridge",
    "osmt-gd1",
    "--name-prefix",
    "osmt-ge-",
    "--subnet4",
    "203.0.113.160/27",
    "--subnet6",
    "2001:db8:1:8::/64",
    "--last-slot",
    "30",
  );
  assert.equal(up.code, 0, up.stderr);
  assert.equal((await run("kubectl", "create", "namespace", "osm-system")).code, 0);
  const mc = await run("kubectl", "apply", "-f", join(repo, "examples/guide/meshconfig.yaml"));
  assert.equal(mc.code, 0, mc.stderr);

  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = await core.createNamespace({
    body: {
      metadata: {
        name: NS,
        labels: { [LABEL_MONITORED_BY]: "osm" },
        annotations: { [ANNOTATION_SIDECAR_INJECTION]: "enabled" },
      },
    },
  });
  for (const [name, backend] of [
    ["curl-k", "auto"],
    ["curl-ipt", "iptables"],
  ] as const) {
    const pod: V1Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS, labels: { app: "curl" } },
      spec: { containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "365d"] }] },
    };
    // What the injector webhook does at admission (no webhook is registered in this API server).
    const result = injectPod({
      pod,
      namespace,
      meshConfig: await readMeshConfig(kc, "osm-system"),
      seeds: { proxyUuid: `osmt-gd-${name}` },
      options: {
        meshName: "osm",
        osmNamespace: "osm-system",
        defaultSidecarImage: "osm-ts/sidecar",
        defaultInitContainerImage: "osm-ts/init",
        imagePullPolicy: "IfNotPresent",
        osmCommand: [osm],
        controllerUrl: "http://127.0.0.1:9",
        initBackend: backend,
      },
    });
    assert.equal(result.kind, "inject");
    if (result.kind !== "inject") return;
    const injected = jsonpatch.applyPatch(
      structuredClone(pod),
      result.patch as jsonpatch.Operation[],
    ).newDocument;
    await core.createNamespacedPod({ namespace: NS, body: injected });
  }
  podName = "curl-k";
  // osm-init must have completed (rules programmed) and the pods must have their IPs.
  const deadline = Date.now() + 60_000;
  for (const name of ["curl-k", "curl-ipt"]) {
    for (;;) {
      const p = await core.readNamespacedPod({ namespace: NS, name });
      const init = p.status?.initContainerStatuses?.[0]?.state?.terminated;
      if (init && p.status?.podIP) {
        assert.equal(init.exitCode, 0, `osm-init of ${name} failed: ${init.message ?? ""}`);
        break;
      }
      assert.ok(Date.now() < deadline, `pod ${name} not initialised: ${JSON.stringify(p.status)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
});

after(async () => {
  if (stateDir)
    await run(osm, "mesh", "down", "--state-dir", stateDir, "--kubeconfig", kubeconfig, "--purge");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const skip = !isRoot && "needs root: the node agent runs pods in network namespaces";

test("explain reads the excluded destination's rule back from the pod's netns: direct", {
  skip,
}, async () => {
  const r = await run(osm, "explain", `pod/${podName}`, "-n", NS, "203.0.113.10:80");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /verdict: direct/);
  assert.match(
    r.stdout,
    /entry 203\.0\.113\.10\/32 from: MeshConfig spec\.traffic\.outboundIPRangeExclusionList/,
  );
  assert.match(
    r.stdout,
    /rules in the pod's network namespace osmt-ge-\d+ \((nftables|iptables-nft|iptables-legacy)\): as recorded/,
  );
});

test("explain sends any other destination to the sidecar, which refuses it with egress off", {
  skip,
}, async () => {
  const r = await run(osm, "explain", `pod/${podName}`, "-n", NS, "203.0.113.11:80");
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /verdict: outbound sidecar \(redirected to port 15001\) → refused: egress is disabled/,
  );
  assert.match(r.stdout, /as recorded/);
});

test("a pod that is not in the mesh's pods is refused by name", { skip }, async () => {
  const r = await run(osm, "explain", "pod/nope", "-n", NS, "203.0.113.11:80");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pods "nope" not found/);
});

test("osm proxy get config_dump and stats reach the sidecar's admin endpoint inside the pod", {
  skip,
}, async () => {
  // The sidecar starts its admin endpoint before it has a config (it has no controller here: fail closed).
  const deadline = Date.now() + 30_000;
  let dump: Ran;
  for (;;) {
    dump = await run(osm, "proxy", "get", "config_dump", podName, "-n", NS);
    if (dump.code === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  assert.equal(dump.code, 0, dump.stderr);
  assert.equal((JSON.parse(dump.stdout) as { apiVersion: string }).apiVersion, "osm.sidecar/v1");
  const stats = await run(osm, "proxy", "get", "stats", podName, "-n", NS);
  assert.equal(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^# HELP /m);
});

test("an IPv6 destination is explained against the same pod's rules", { skip }, async () => {
  const r = await run(osm, "explain", `pod/${podName}`, "-n", NS, "[2001:db8::11]:80");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^pod osmt-gd-k\/curl-k → \[2001:db8::11\]:80/);
  assert.match(r.stdout, /verdict: outbound sidecar/);
  assert.match(r.stdout, /as recorded/);
});

test("rules programmed by OSM's iptables script are read back with iptables and agree", {
  skip,
}, async () => {
  const r = await run(osm, "explain", "pod/curl-ipt", "-n", NS, "203.0.113.10:80");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /verdict: direct/);
  assert.match(
    r.stdout,
    /rules in the pod's network namespace osmt-ge-\d+ \(iptables-(nft|legacy)\): as recorded/,
  );
});

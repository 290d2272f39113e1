/**
 * End to end on the embedded API server with the real kubectl: `osm install`, then `osm injector run` (the
 * command the osm-injector Deployment runs, here as a loopback process) publishes its CA and is called by the
 * API server over HTTPS for pods and MeshConfig changes, exactly as kube-apiserver would.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import type { ApiServer } from "../../../src/local/embedded-api-server.ts";
import { startEmbeddedApiServer } from "../../support/apiserver.ts";
import { type Ran, run as runCommand } from "../../support/run.ts";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const deployDir = new URL("../../../deploy/", import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: kubectl's JSON output is navigated freely in assertions
type Json = any;

let dir: string;
let server: ApiServer;
let injector: ChildProcess | undefined;
let env: NodeJS.ProcessEnv;
let kc: KubeConfig;

/** Runs `argv` with this suite's kubeconfig. */
function run([file = "", ...args]: string[]): Promise<Ran> {
  return runCommand(file, args, { env });
}

const kubectl = (...args: string[]) => run(["kubectl", ...args]);

async function getJson(...args: string[]): Promise<Record<string, Json>> {
  const r = await kubectl("get", ...args, "-o", "json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, Json>;
}

/** Points both webhook configurations at this test's loopback port (the Service's role on a cluster). */
async function routeWebhooksTo(port: number): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const [kind, name] of [
    ["MutatingWebhookConfiguration", "osm-webhook-osm"],
    ["ValidatingWebhookConfiguration", "osm-validator-mesh-osm"],
  ] as const) {
    // The injector's caBundle publication may replace the object meanwhile: re-read on 409 Conflict.
    for (let attempt = 0; ; attempt++) {
      const obj = (await client.read({
        apiVersion: "admissionregistration.k8s.io/v1",
        kind,
        metadata: { name },
      })) as { webhooks: { clientConfig: Record<string, Json> }[] };
      for (const w of obj.webhooks) {
        const path =
          w.clientConfig["service"]?.path ?? new URL(w.clientConfig["url"] ?? "https://x/").pathname;
        const caBundle = w.clientConfig["caBundle"];
        w.clientConfig = { url: `https://127.0.0.1:${port}${path}`, ...(caBundle ? { caBundle } : {}) };
      }
      try {
        await client.replace(obj as never);
        break;
      } catch (error) {
        if ((error as { code?: number }).code !== 409 || attempt >= 10) throw error;
      }
    }
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "osmt-inj-"));
  ({ server, env, kc } = await startEmbeddedApiServer(dir, "osmt-inj"));
});

after(async () => {
  if (injector?.pid !== undefined && injector.exitCode === null) {
    const exited = new Promise((r) => injector?.once("exit", r));
    injector.kill("SIGTERM");
    await exited;
  }
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("osm install applies the control plane and creates osm-mesh-config from the preset", async () => {
  const r = await run([osm, "install", "--no-wait", "--set", "osm.enableEgress=false"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment\/osm-controller \(osm-system\) created/);
  assert.match(r.stdout, /meshconfig\/osm-mesh-config \(osm-system\) created/);
  // The embedded API server stores RBAC objects (it does not enforce them), so nothing is skipped.
  assert.match(r.stdout, /clusterrole\/osm-injector-osm created/);
  assert.match(r.stdout, /rolebinding\/osm-controller-osm \(osm-system\) created/);
  assert.doesNotMatch(r.stdout, /skipped/);
  assert.match(r.stdout, /OSM installed successfully in namespace \[osm-system\] with mesh name \[osm\]/);
  const deployment = await getJson("deployment", "osm-controller", "-n", "osm-system");
  assert.equal(deployment["metadata"].labels.app, "osm-controller");
  assert.equal(deployment["metadata"].labels.meshName, "osm");
  const mc = await getJson("meshconfig", "osm-mesh-config", "-n", "osm-system");
  assert.equal(mc["spec"].traffic.enableEgress, false);
});

test("osm injector run publishes its CA into both webhook configurations", async () => {
  injector = spawn(
    osm,
    [
      "injector",
      "run",
      "--listen",
      "127.0.0.1:0",
      "--sidecar-image",
      "osm-ts/sidecar:test",
      "--init-container-image",
      "osm-ts/init:test",
      "--log-level",
      "warn",
    ],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  injector.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`injector did not start: ${stderr}`)), 20_000);
    injector?.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /osm-injector listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    injector?.once("exit", (code) => reject(new Error(`injector exited ${code}: ${stderr}`)));
  });
  await routeWebhooksTo(port);
  const deadline = Date.now() + 15_000;
  let bundle = "";
  while (Date.now() < deadline) {
    const mwc = await getJson("mutatingwebhookconfiguration", "osm-webhook-osm");
    bundle = mwc["webhooks"][0].clientConfig.caBundle ?? "";
    if (bundle) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(Buffer.from(bundle, "base64").toString(), /^-----BEGIN CERTIFICATE-----/);
  const vwc = await getJson("validatingwebhookconfiguration", "osm-validator-mesh-osm");
  assert.equal(vwc["webhooks"][0].clientConfig.caBundle, bundle);
});

test("kubectl patch meshconfig with 54.91.118.50/33 is denied naming field, value and fix; nothing changes", async () => {
  const before = await getJson("meshconfig", "osm-mesh-config", "-n", "osm-system");
  const r = await kubectl(
    "patch",
    "meshconfig",
    "osm-mesh-config",
    "-n",
    "osm-system",
    "--type=merge",
    "-p",
    '{"spec":{"traffic":{"outboundIPRangeExclusionList":["54.91.118.50/33"]}}}',
  );
  assert.equal(r.code, 1, r.stdout);
  // Schema validation runs before validating admission (as in kube-apiserver); the embedded API server's CRD
  // check uses the same validator, so either layer may answer, with the same field/value/fix.
  assert.match(
    r.stderr,
    /admission webhook "osm-validate-meshconfig\.k8s\.io" denied the request|The request is invalid/,
  );
  assert.match(
    r.stderr,
    /spec\.traffic\.outboundIPRangeExclusionList\[0\]: Invalid value: "54\.91\.118\.50\/33"/,
  );
  assert.match(r.stderr, /hint: /);
  const afterPatch = await getJson("meshconfig", "osm-mesh-config", "-n", "osm-system");
  assert.equal(afterPatch["metadata"].resourceVersion, before["metadata"].resourceVersion);
  assert.deepEqual(afterPatch["spec"], before["spec"]);
});

test("kubectl apply of a bad TrafficTarget or TCPRoute is refused naming field and value; a good one is stored", async () => {
  const file = join(dir, "smi.yaml");
  const target = (namespace: string, sourceKind: string) => `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: allow-client, namespace: default}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: ${namespace}}
  rules: [{kind: TCPRoute, name: tcp}]
  sources: [{kind: ${sourceKind}, name: client, namespace: client}]
`;
  // Only the webhook sees across fields: the TrafficTarget lives outside its destination's namespace.
  writeFileSync(file, target("server", "ServiceAccount"));
  let r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  // kubectl prints a 422 with causes as "The request is invalid: <causes>" (the webhook's own wording).
  assert.match(
    r.stderr,
    /admission webhook "osm-validate-smi\.k8s\.io" denied the request|The request is invalid/,
  );
  assert.match(
    r.stderr,
    /spec\.destination\.namespace: Invalid value: "server": must be the TrafficTarget's own namespace "default"/,
  );
  // A field the CRD schema already refuses (the API server answers before the webhook, naming the value).
  writeFileSync(file, target("default", "Group"));
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /spec\.sources\[0\]\.kind/);
  assert.match(r.stderr, /"Group"/);
  writeFileSync(
    file,
    "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: tcp, namespace: default}\nspec: {matches: {ports: [70000]}}\n",
  );
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /spec\.matches\.ports\[0\]/);
  assert.match(r.stderr, /70000/);
  assert.equal((await kubectl("get", "traffictargets,tcproutes", "-n", "default", "-o", "name")).stdout, "");
  writeFileSync(file, target("default", "ServiceAccount"));
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await getJson("tt", "allow-client", "-n", "default"))["spec"].sources[0].name, "client");
  assert.equal((await kubectl("delete", "tt", "allow-client", "-n", "default")).code, 0);
});

test("kubectl apply of an HTTPRouteGroup with a path regex RE2 cannot compile is refused naming it; a good one is stored", async () => {
  const file = join(dir, "htr.yaml");
  const group = (pathRegex: string) => `apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: httpbin-status, namespace: default}
spec:
  matches:
  - {name: status, pathRegex: "${pathRegex}", methods: [GET]}
`;
  writeFileSync(file, group("/status(?=/)"));
  let r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stderr,
    /spec\.matches\[0\]\.pathRegex: Invalid value: "\/status\(\?=\/\)": is not a valid RE2 regular expression/,
  );
  assert.equal((await kubectl("get", "htr", "-n", "default", "-o", "name")).stdout, "");
  writeFileSync(file, group("/status.*"));
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    (await getJson("htr", "httpbin-status", "-n", "default"))["spec"].matches[0].pathRegex,
    "/status.*",
  );
  assert.equal((await kubectl("delete", "htr", "httpbin-status", "-n", "default")).code, 0);
});

test("kubectl apply of a bad Egress is refused naming field, value and fix; a good one is stored, an UpstreamTrafficSetting reported as not enforced", async () => {
  const file = join(dir, "egress.yaml");
  const egress = (host: string, port: number, extra = "") => `apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: httpbin-80, namespace: default}
spec:
  sources: [{kind: ServiceAccount, name: curl, namespace: default}]
  hosts: ["${host}"]
  ports: [{number: ${port}, protocol: http}]
${extra}`;
  // The webhook: a host with a scheme.
  writeFileSync(file, egress("http://httpbin.org", 80));
  let r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  assert.match(
    r.stderr,
    /spec\.hosts\[0\]: Invalid value: "http:\/\/httpbin\.org": is not a host name: it has a scheme \(http:\/\/\) \(hint: write the host alone, e\.g\. "httpbin\.org"/,
  );
  // The CRD schema answers first for port 0, naming field and value.
  writeFileSync(file, egress("httpbin.org", 0));
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /spec\.ports\[0\]\.number/);
  assert.equal((await kubectl("get", "egress", "-n", "default", "-o", "name")).stdout, "");
  writeFileSync(
    file,
    egress(
      "httpbin.org",
      80,
      "  matches: [{apiGroup: policy.openservicemesh.io/v1alpha1, kind: UpstreamTrafficSetting, name: uts}]\n",
    ),
  );
  r = await kubectl("apply", "-f", file);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /Warning: upstream-traffic-setting-not-enforced: UpstreamTrafficSetting "uts" is accepted but not enforced/,
  );
  assert.deepEqual((await getJson("egress", "httpbin-80", "-n", "default"))["spec"].hosts, ["httpbin.org"]);
  assert.equal((await kubectl("delete", "egress", "httpbin-80", "-n", "default")).code, 0);
});

test("a valid patch of an init-time list is stored and kubectl prints the restart warning", async () => {
  const r = await kubectl(
    "patch",
    "meshconfig",
    "osm-mesh-config",
    "-n",
    "osm-system",
    "--type=merge",
    "-p",
    '{"spec":{"traffic":{"outboundIPRangeExclusionList":["203.0.113.10/32"]}}}',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Warning: spec\.traffic\.outboundIPRangeExclusionList changed: running pods keep/);
  const mc = await getJson("meshconfig", "osm-mesh-config", "-n", "osm-system");
  assert.deepEqual(mc["spec"].traffic.outboundIPRangeExclusionList, ["203.0.113.10/32"]);
});

test("a pod created in a namespace added to the mesh gets osm-init and envoy through the API server", async () => {
  assert.equal((await kubectl("create", "namespace", "osmt-inj-app")).code, 0);
  const added = await run([osm, "namespace", "add", "osmt-inj-app"]);
  assert.equal(added.code, 0, added.stderr);
  const file = join(dir, "pod.json");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "curl", namespace: "osmt-inj-app", labels: { app: "curl" } },
      spec: { containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "365d"] }] },
    }),
  );
  const created = await kubectl("create", "-f", file);
  assert.equal(created.code, 0, created.stderr);
  const pod = await getJson("pod", "curl", "-n", "osmt-inj-app");
  assert.deepEqual(
    pod["spec"].initContainers.map((c: { name: string }) => c.name),
    ["osm-init"],
  );
  assert.deepEqual(
    pod["spec"].containers.map((c: { name: string }) => c.name),
    ["curl", "envoy"],
  );
  assert.match(pod["spec"].initContainers[0].args[1], /-d 203\.0\.113\.10\/32 -j RETURN/);
  assert.match(pod["metadata"].labels["osm-proxy-uuid"], /^[0-9a-f-]{36}$/);
  assert.match(pod["metadata"].annotations["osm-ts.io/interception-policy"], /203\.0\.113\.10\/32/);
});

test("a pod with a bad sidecar-injection annotation is denied with OSM's message", async () => {
  const file = join(dir, "bad-pod.json");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "bad",
        namespace: "osmt-inj-app",
        annotations: { "openservicemesh.io/sidecar-injection": "maybe" },
      },
      spec: { containers: [{ name: "app", image: "busybox", command: ["sleep", "1"] }] },
    }),
  );
  const r = await kubectl("create", "-f", file);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /admission webhook "osm-inject\.k8s\.io" denied the request: Invalid annotation value for key "openservicemesh\.io\/sidecar-injection": maybe/,
  );
  assert.notEqual((await kubectl("get", "pod", "bad", "-n", "osmt-inj-app")).code, 0);
});

test("the whole kustomize base applies to the API server with --dry-run=server", async () => {
  const rendered = await kubectl("kustomize", deployDir);
  assert.equal(rendered.code, 0, rendered.stderr);
  const file = join(dir, "deploy-rendered.yaml");
  writeFileSync(file, rendered.stdout);
  const r = await kubectl("apply", "-f", file, "--dry-run=server");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment\.apps\/osm-injector .*\(server dry run\)/);
  assert.match(
    r.stdout,
    /clusterrolebinding\.rbac\.authorization\.k8s\.io\/osm-controller-osm .*\(server dry run\)/,
  );
  assert.match(
    r.stdout,
    /mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/osm-webhook-osm .*\(server dry run\)/,
  );
});

test("osm install again keeps the MeshConfig the user patched", async () => {
  const r = await run([osm, "install", "--no-wait"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /meshconfig\/osm-mesh-config \(osm-system\) unchanged/);
  const mc = await getJson("meshconfig", "osm-mesh-config", "-n", "osm-system");
  assert.deepEqual(mc["spec"].traffic.outboundIPRangeExclusionList, ["203.0.113.10/32"]);
});

test("osm install --set osm.nodeAgent.enabled=true is refused on an API server without DaemonSets, before anything is applied", async () => {
  const before = await kubectl("get", "serviceaccount", "osm-node", "-n", "osm-system");
  assert.notEqual(before.code, 0);
  const r = await run([osm, "install", "--no-wait", "--set", "osm.nodeAgent.enabled=true"]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /osm\.nodeAgent\.enabled=true: this API server does not serve DaemonSets \(apps\/v1\)/,
  );
  assert.match(r.stderr, /the node agent applies live interception updates itself/);
  assert.doesNotMatch(r.stdout, /created|configured/);
  assert.notEqual(
    (await kubectl("get", "serviceaccount", "osm-node", "-n", "osm-system")).code,
    0,
    "nothing applied",
  );
});

test("osm uninstall mesh removes webhooks and the control plane, keeping the MeshConfig", async () => {
  const r = await run([osm, "uninstall", "mesh"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /mutatingwebhookconfiguration\/osm-webhook-osm deleted/);
  assert.notEqual((await kubectl("get", "mutatingwebhookconfiguration", "osm-webhook-osm")).code, 0);
  assert.notEqual((await kubectl("get", "deployment", "osm-injector", "-n", "osm-system")).code, 0);
  assert.equal((await kubectl("get", "meshconfig", "osm-mesh-config", "-n", "osm-system")).code, 0);
});

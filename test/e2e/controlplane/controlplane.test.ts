/**
 * Issue 7 item 5 on the embedded default: `osm mesh up` + `osm install` run the control plane as pods of the
 * local node agent, from the same manifests as `kubectl kustomize deploy/` (commands resolve on the host):
 * the controller and injector pods reach the API in-cluster (service account files, KUBERNETES_SERVICE_HOST
 * on the bridge gateway), the injector pod serves both webhooks, a meshed Deployment gets `osm-init` + `envoy`
 * and its sidecar reads its config from the controller pod through the Service name (the node's cluster DNS,
 * the ClusterIP DNATed by the host's services table). Real kubectl, temp kubeconfig and state dir, a bridge of
 * its own.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { SIDECAR_TOKEN_FILE } from "../../../src/config/sidecar-token.ts";
import { hostLeftovers, localMesh, meshDownPurgeArgs } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const OSM = join(REPO, "bin", "osm");
const PREFIX = "osmt-cp-";
const BRIDGE = "osmt-cp0";
const GATEWAY = "203.0.113.129";
const NS = "osmt-cp-app";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

/** The netns of a pod of this daemon: its slot N is the last octet minus the subnet base (203.0.113.128/27). */
function netnsOf(podIP: string): string {
  return `${PREFIX}${Number(podIP.split(".")[3]) - 128}`;
}

/**
 * PIDs whose environment names this daemon's API address (gateway and port): every container process it
 * started, and none of a test lane beside this one that runs this suite on the same subnet.
 */
function podProcesses(apiPort: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1");
      if (
        environ.includes(`KUBERNETES_SERVICE_HOST=${GATEWAY}\0`) &&
        environ.includes(`KUBERNETES_SERVICE_PORT=${apiPort}\0`)
      )
        out.push(Number(entry));
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return out;
}

const APP = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: osmt-cp-sleep
spec:
  replicas: 1
  selector:
    matchLabels: {app: osmt-cp-sleep}
  template:
    metadata:
      labels: {app: osmt-cp-sleep}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: curlimages/curl
        command: ["sleep", "365d"]
`;

describe("the control plane as pods of the local node agent", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  let upArgs: string[];
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const osm = (...args: string[]) => run(OSM, args, { env });
  const jsonpath = async (...args: string[]) => (await kubectl(...args)).stdout.trim();
  /** `kubectl patch` of the MeshConfig with a merge `patch`. */
  const patchMeshConfig = (patch: string) =>
    kubectl("patch", "meshconfig", "osm-mesh-config", "-n", "osm-system", "--type=merge", "-p", patch);
  /** The MeshConfig's spec as stored. */
  const meshConfigSpec = async () =>
    JSON.parse(await jsonpath("get", "meshconfig", "osm-mesh-config", "-n", "osm-system", "-o", "json")).spec;

  /** The name of the one Ready pod with label app=<app> in `namespace` (other than `not`). */
  const readyPod = (namespace: string, app: string, ready: string, not?: string) =>
    until(
      `${namespace}/${app} ${ready} Running`,
      async () => {
        const r = await kubectl("get", "pods", "-n", namespace, "-l", `app=${app}`, "--no-headers");
        const rows = r.stdout.trim().split("\n").filter(Boolean);
        const row = rows[0]?.split(/\s+/) ?? [];
        return rows.length === 1 && row[1] === ready && row[2] === "Running" && row[0] !== not
          ? row[0]
          : undefined;
      },
      60_000,
      250,
    );

  const configDump = async (pod: string) => {
    const r = await osm("proxy", "get", "config_dump", pod, "-n", NS);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { source: string; config: { version: number; enableEgress: boolean } };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-cp-"));
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "203.0.113.128/27",
      subnet6: "2001:db8:1:9::/64",
      lastSlot: 30,
    }));
  });

  after(async () => {
    // Safety net when a test failed half-way; a no-op after the last test.
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("osm install runs osm-controller and osm-injector as Ready pods on the bridge, reaching the API in-cluster", async () => {
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
    const install = await osm("install");
    assert.equal(install.code, 0, install.stderr);
    // OSM's install returns once the control plane works: the guide's next command (a MeshConfig patch,
    // through the validating webhook) must not meet "no endpoints available for service osm-injector".
    assert.match(install.stdout, /deployment osm-controller is ready/);
    assert.match(install.stdout, /deployment osm-injector is ready/);
    assert.match(install.stdout, /the admission webhooks answer\n.*OSM installed successfully/);
    const patch = await kubectl(
      "patch",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "--type=merge",
      "--dry-run=server",
      "-p",
      '{"spec":{"traffic":{"enableEgress":false}}}',
    );
    assert.equal(patch.code, 0, patch.stderr);
    const controller = await readyPod("osm-system", "osm-controller", "1/1");
    const injector = await readyPod("osm-system", "osm-injector", "1/1");
    for (const pod of [controller, injector]) {
      const ip = await jsonpath("get", "pod", "-n", "osm-system", pod, "-o", "jsonpath={.status.podIP}");
      assert.match(ip, /^203\.0\.113\.(129|1[3-5]\d)$/, `${pod} runs on the node's bridge`);
    }
    // In-cluster config: the service account files and KUBERNETES_SERVICE_HOST, as on a cluster.
    const files = await kubectl(
      "exec",
      "-n",
      "osm-system",
      controller,
      "--",
      "sh",
      "-c",
      'cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo " $KUBERNETES_SERVICE_HOST"; id -u',
    );
    assert.equal(files.code, 0, files.stderr);
    assert.equal(files.stdout, `osm-system ${GATEWAY}\n65532\n`);
    // The manifests say `osm`: containers find this checkout's first (the daemon's default container PATH).
    const which = await kubectl("exec", "-n", "osm-system", controller, "--", "sh", "-c", "command -v osm");
    assert.equal(which.stdout, `${join(REPO, "bin", "osm")}\n`);
    // The injector pod published its CA into both webhook configurations.
    for (const kind of [
      "mutatingwebhookconfiguration/osm-webhook-osm",
      "validatingwebhookconfiguration/osm-validator-mesh-osm",
    ]) {
      const ca = await jsonpath("get", kind, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}");
      assert.ok(ca.length > 100, `${kind} has a caBundle`);
    }
  });

  test("a Deployment in a meshed namespace gets osm-init + envoy, runs 2/2, and its rules verify", async () => {
    assert.equal((await kubectl("create", "namespace", NS)).code, 0);
    const added = await osm("namespace", "add", NS);
    assert.equal(added.code, 0, added.stderr);
    const applied = await run("kubectl", ["apply", "-n", NS, "-f", "-"], { env, input: APP });
    assert.equal(applied.code, 0, applied.stderr);
    const pod = await readyPod(NS, "osmt-cp-sleep", "2/2");
    const names = await jsonpath(
      "get",
      "pod",
      "-n",
      NS,
      pod,
      "-o",
      "jsonpath={.spec.initContainers[*].name} {.spec.containers[*].name}",
    );
    assert.equal(names, "osm-init app envoy");
    const ip = await jsonpath("get", "pod", "-n", NS, pod, "-o", "jsonpath={.status.podIP}");
    const verify = await osm("interception", "verify", "--netns", `/var/run/netns/${netnsOf(ip)}`);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /in sync/);
  });

  test("the sidecar's config comes from the controller pod, through the Service name and its ClusterIP", async () => {
    const pod = await readyPod(NS, "osmt-cp-sleep", "2/2");
    const dump = await until(
      "a config from the controller",
      async () => {
        const d = await configDump(pod);
        return d.config?.version > 0 ? d : undefined;
      },
      20_000,
      250,
    );
    assert.equal(dump.source, "http://osm-controller.osm-system.svc.cluster.local:15128");
    // Its credential: no token in the PodSpec, a projected osm-controller token in the sidecar's volume, bound
    // to this pod, which the controller accepted (TokenReview) to hand out the config above.
    const yaml = (await kubectl("get", "pod", "-n", NS, pod, "-o", "yaml")).stdout;
    assert.doesNotMatch(yaml, /eyJ|OSM_TS_SIDECAR_TOKEN|sidecar-token-sha256/);
    assert.match(yaml, /serviceAccountToken:\s+audience: osm-controller/);
    const token = (await kubectl("exec", "-n", NS, pod, "-c", "envoy", "--", "cat", SIDECAR_TOKEN_FILE))
      .stdout;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    assert.deepEqual([claims.aud, claims["kubernetes.io"].pod.name], [["osm-controller"], pod]);
    const clusterIP = await jsonpath(
      "get",
      "svc",
      "-n",
      "osm-system",
      "osm-controller",
      "-o",
      "jsonpath={.spec.clusterIP}",
    );
    const controller = await readyPod("osm-system", "osm-controller", "1/1");
    const controllerIP = await jsonpath(
      "get",
      "pod",
      "-n",
      "osm-system",
      controller,
      "-o",
      "jsonpath={.status.podIP}",
    );
    // The name through the cluster DNS on the bridge gateway, the ClusterIP port DNATed by the host's table to
    // the controller pod's port.
    const lookup = await kubectl(
      "exec",
      "-n",
      NS,
      pod,
      "-c",
      "envoy",
      "--",
      "sh",
      "-c",
      "grep nameserver /etc/resolv.conf; getent hosts osm-controller.osm-system.svc.cluster.local",
    );
    assert.equal(
      lookup.stdout.replace(/\s+/g, " ").trim(),
      `nameserver ${GATEWAY} ${clusterIP} osm-controller.osm-system.svc.cluster.local`,
    );
    const table = await run("nft", ["list", "table", "ip", "osm_services_osmt_cp0"]);
    assert.match(table.stdout, new RegExp(`${clusterIP.replaceAll(".", "\\.")} \\. tcp \\. 15128 : goto`));
    assert.match(table.stdout, new RegExp(`dnat to ${controllerIP.replaceAll(".", "\\.")}:15128`));
  });

  test("an invalid MeshConfig patch is denied by the injector pod's webhook and nothing changes", async () => {
    const before = await meshConfigSpec();
    const denied = await patchMeshConfig(
      '{"spec":{"traffic":{"outboundIPRangeExclusionList":["54.91.118.50/33"]}}}',
    );
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /outboundIPRangeExclusionList\[0\]: Invalid value: "54\.91\.118\.50\/33"/);
    assert.deepEqual(await meshConfigSpec(), before);
    const injector = await readyPod("osm-system", "osm-injector", "1/1");
    const logs = await kubectl("logs", "-n", "osm-system", injector);
    assert.match(logs.stdout, /"path":"\/validate-meshconfig".*"allowed":false/);
  });

  test("enableEgress reaches the running sidecar live, also after the controller pod is deleted and recreated", async () => {
    const pod = await readyPod(NS, "osmt-cp-sleep", "2/2");
    const setEgress = async (value: boolean) => {
      const r = await patchMeshConfig(JSON.stringify({ spec: { traffic: { enableEgress: value } } }));
      assert.equal(r.code, 0, r.stderr);
      return until(
        `enableEgress ${value} in the sidecar`,
        async () => {
          const d = await configDump(pod);
          return d.config.enableEgress === value ? d.config.version : undefined;
        },
        20_000,
        250,
      );
    };
    const first = await setEgress(false);
    const old = await readyPod("osm-system", "osm-controller", "1/1");
    const deleted = await kubectl("delete", "pod", "-n", "osm-system", old);
    assert.equal(deleted.code, 0, deleted.stderr);
    await readyPod("osm-system", "osm-controller", "1/1", old);
    const second = await setEgress(true);
    assert.ok(second > first, "versions keep increasing across controller restarts");
    assert.equal((await meshConfigSpec()).traffic.enableEgress, true);
  });

  test("a mesh Service reached by name through both sidecars with egress off (cluster DNS, then ClusterIP DNAT)", async () => {
    const off = await patchMeshConfig('{"spec":{"traffic":{"enableEgress":false}}}');
    assert.equal(off.code, 0, off.stderr);
    const httpbin = readFileSync(join(REPO, "examples/guide/httpbin.yaml"), "utf8");
    const applied = await run("kubectl", ["apply", "-n", NS, "-f", "-"], { env, input: httpbin });
    assert.equal(applied.code, 0, applied.stderr);
    await readyPod(NS, "httpbin", "2/2");
    const client = await readyPod(NS, "osmt-cp-sleep", "2/2");
    /** The HTTP status curl gets from `url` inside the client pod's app container. */
    const httpCode = (pod: string, url: string) =>
      kubectl(
        "exec",
        "-n",
        NS,
        pod,
        "-c",
        "app",
        "--",
        "curl",
        "-sS",
        "-m",
        "3",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
      );
    const status = await until(
      "httpbin answering through both sidecars",
      async () => {
        const r = await httpCode(client, `http://httpbin.${NS}.svc.cluster.local:14001/get`);
        return r.stdout === "200" ? r.stdout : undefined;
      },
      30_000,
      500,
    );
    assert.equal(status, "200");
    // The short name through the search path too; egress stays refused.
    const short = await httpCode(client, "http://httpbin:14001/get");
    assert.equal(short.stdout, "200", short.stderr);
    assert.equal((await configDump(client)).config.enableEgress, false);
  });

  test("right after kill -9 of the daemon, up brings it back with every pod; down leaves nothing", async () => {
    const pid = Number(readFileSync(join(stateDir, "daemon.pid"), "utf8"));
    process.kill(pid, "SIGKILL");
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
    const pod = await readyPod(NS, "osmt-cp-sleep", "2/2");
    // The patch goes through the injector pod's webhook (failurePolicy Fail): refused until that pod is back
    // (the pods' statuses right after the restart are the old daemon's), so it is retried.
    await until(
      "the MeshConfig patch to be admitted after the daemon restart",
      async () => {
        const r = await patchMeshConfig('{"spec":{"traffic":{"enableEgress":false}}}');
        if (r.code !== 0) assert.match(r.stderr, /failed calling webhook "osm-validate-meshconfig\.k8s\.io"/);
        return r.code === 0 ? true : undefined;
      },
      120_000,
      250,
    );
    // The pod's containers are restarted with the daemon: its sidecar may not answer at first.
    await until(
      "enableEgress false in the sidecar after the daemon restart",
      async () => {
        const r = await osm("proxy", "get", "config_dump", pod, "-n", NS);
        return r.code === 0 && JSON.parse(r.stdout).config?.enableEgress === false ? true : undefined;
      },
      30_000,
      250,
    );
    const apiPort = upArgs[upArgs.indexOf("--port") + 1]!;
    assert.notDeepEqual(podProcesses(apiPort), [], "the pods' processes are found by their environment");
    const down = await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
    assert.deepEqual(podProcesses(apiPort), []);
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .filter((l) => l.includes(dir) || l.includes(PREFIX));
    assert.deepEqual(mounts, []);
    const cfg = parse(readFileSync(kubeconfig, "utf8"));
    assert.deepEqual(cfg.contexts ?? [], []);
  });
});

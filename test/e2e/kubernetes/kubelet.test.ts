/**
 * The node agent as the kubelet of the real control plane (`osm mesh up --engine kubernetes`, bridge
 * `osmt-nu0`, 203.0.113.80/28): its Node registers Ready with its addresses and declared features, its Lease
 * is renewed and it stays Ready past the node monitor's grace period; `kubectl exec` (with and without -ti),
 * `kubectl logs` (-f, --previous) and `kubectl attach` go through the real kube-apiserver to the kubelet API;
 * each pod's service-account token is its own, from TokenRequest, bound to the pod.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hostLeftovers, meshDownPurgeArgs, meshUpArgs } from "../../support/mesh.ts";
import { freePort, portFree, until } from "../../support/poll.ts";
import { kubectlEnv, run } from "../../support/run.ts";
import { openTerminal } from "../../support/tmux.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-nu-";
const BRIDGE = "osmt-nu0";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

const PODS = `apiVersion: v1
kind: Pod
metadata: {name: box}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: curl, image: curlimages/curl, command: ["sleep", "365d"]}
  - {name: shell, image: busybox, command: ["sh"], stdin: true, tty: true}
---
apiVersion: v1
kind: Pod
metadata: {name: crashy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: ["sh", "-c", "echo attempt-$(cat /proc/sys/kernel/random/uuid); sleep 2; echo done; exit 1"]}
`;

describe("the node agent as the real control plane's kubelet", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const jsonpath = async (...args: string[]) => (await kubectl("get", ...args)).stdout;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-kubelet-"));
    stateDir = join(dir, "state");
    kubeconfig = join(dir, "kubeconfig");
    env = { ...process.env, ...kubectlEnv(kubeconfig, dir) };
    let etcdPort = await freePort();
    while (!(await portFree(etcdPort + 1))) etcdPort = await freePort();
    const up = await run(
      OSM,
      meshUpArgs({
        stateDir,
        kubeconfig,
        port: await freePort(),
        bridge: BRIDGE,
        namePrefix: PREFIX,
        subnet4: "203.0.113.80/28",
        subnet6: "2001:db8:1:e::/64",
        lastSlot: 14,
        kubernetes: { etcdPort, kubeletPort: await freePort() },
      }),
      { env, timeoutMs: 120_000 },
    );
    assert.equal(up.code, 0, up.stderr);
    const applied = await run("kubectl", ["apply", "-f", "-"], { env, input: PODS });
    assert.equal(applied.code, 0, applied.stderr);
    await until(
      "pod box 2/2 Running",
      async () =>
        /\s2\/2\s+Running\s/.test((await kubectl("get", "pod", "box", "--no-headers")).stdout)
          ? true
          : undefined,
      60_000,
      250,
    );
  });

  after(async () => {
    if (stateDir) await run(OSM, meshDownPurgeArgs(stateDir, kubeconfig), { env, timeoutMs: 120_000 });
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("the Node is Ready with its InternalIP, the kubelet port, the kubelet version and the declared WebSocket feature", async () => {
    const node = JSON.parse((await kubectl("get", "node", "osm-local", "-o", "json")).stdout);
    const ready = node.status.conditions.find((c: { type: string }) => c.type === "Ready");
    assert.equal(ready.status, "True");
    assert.deepEqual(node.status.addresses, [
      { type: "InternalIP", address: "203.0.113.81" },
      { type: "Hostname", address: "osm-local" },
    ]);
    assert.ok(node.status.daemonEndpoints.kubeletEndpoint.Port > 0);
    assert.equal(
      node.status.nodeInfo.kubeletVersion,
      (await kubectl("version", "-o", "json")).stdout.match(
        /"serverVersion"[\s\S]*?"gitVersion": "([^"]+)"/,
      )?.[1],
    );
    assert.deepEqual(node.status.declaredFeatures, ["ExtendWebSocketsToKubelet"]);
    assert.equal(Number(node.status.allocatable.pods), 110);
    const holder = await jsonpath(
      "lease",
      "-n",
      "kube-node-lease",
      "osm-local",
      "-o",
      "jsonpath={.spec.holderIdentity}",
    );
    assert.equal(holder, "osm-local");
  });

  test("kubectl exec without a TTY: stdout, stderr, stdin and the exit code through kube-apiserver", async () => {
    const r = await kubectl("exec", "box", "-c", "curl", "--", "sh", "-c", "echo out; echo err >&2; exit 4");
    assert.equal(r.code, 4);
    assert.equal(r.stdout, "out\n");
    assert.match(r.stderr, /^err\ncommand terminated with exit code 4/);
    const piped = await run("kubectl", ["exec", "-i", "box", "-c", "curl", "--", "cat"], {
      env,
      input: "piped\n",
    });
    assert.equal(piped.stdout, "piped\n");
  });

  test("kubectl exec -ti in a real terminal: prompt, /dev/pts/N, CR LF, exit 3", async () => {
    const term = await openTerminal(dir, ["kubectl", "exec", "-ti", "box", "-c", "curl", "--", "sh"], env);
    try {
      await term.waitFor(/^#$/m, "a prompt");
      await term.type("tty", true);
      await term.waitFor(/^# tty\n\/dev\/pts\/\d+\n#$/m, "tty's answer at column 0");
      await term.type("exit 3", true);
      assert.equal(await term.exitStatus(), 3);
    } finally {
      await term.close();
    }
  });

  test("kubectl attach -ti joins the container's own shell", async () => {
    const term = await openTerminal(dir, ["kubectl", "attach", "-ti", "box", "-c", "shell"], env);
    try {
      await term.waitFor(/If you don't see a command prompt, try pressing enter\./, "kubectl's attach hint");
      await term.type("echo attached-$((40+2))", true);
      await term.waitFor(/^attached-42$/m, "the attached shell's answer");
    } finally {
      await term.close();
    }
  });

  test("kubectl logs -f follows an attempt to its end; --previous shows the attempt before", async () => {
    const followed = await kubectl("logs", "-f", "crashy");
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /^attempt-[0-9a-f-]{36}\ndone\n$/);
    await until(
      "a restart of crashy",
      async () =>
        Number(
          await jsonpath("pod", "crashy", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"),
        ) >= 1
          ? true
          : undefined,
      60_000,
      500,
    );
    const previous = await kubectl("logs", "crashy", "--previous");
    assert.equal(previous.code, 0, previous.stderr);
    assert.match(previous.stdout, /^attempt-[0-9a-f-]{36}\ndone\n$/);
    const current = await kubectl("logs", "crashy");
    assert.notEqual(current.stdout.split("\n")[0], previous.stdout.split("\n")[0]);
  });

  test("each pod gets its own token, bound to it by TokenRequest: the API server sees the pod's service account", async () => {
    const sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    const token = (await kubectl("exec", "box", "-c", "curl", "--", "cat", `${sa}/token`)).stdout;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString());
    const uid = await jsonpath("pod", "box", "-o", "jsonpath={.metadata.uid}");
    assert.equal(claims.sub, "system:serviceaccount:default:default");
    assert.deepEqual(claims["kubernetes.io"].pod, { name: "box", uid });
    // Asked for 3607 s, as the kubelet; kube-apiserver extends it to a year and says when to stop using it.
    assert.equal(claims["kubernetes.io"].warnafter - claims.iat, 3607);
    const ca = (await kubectl("exec", "box", "-c", "curl", "--", "cat", `${sa}/ca.crt`)).stdout;
    const rootCa = await jsonpath("configmap", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}");
    assert.equal(ca.trim(), rootCa.trim());
    // The pod calls the API with its files, as in-cluster clients do: it is its service account, nothing more.
    const call = await kubectl(
      "exec",
      "box",
      "-c",
      "curl",
      "--",
      "sh",
      "-c",
      `curl -sS --cacert ${sa}/ca.crt -H "Authorization: Bearer $(cat ${sa}/token)" https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/default/secrets`,
    );
    assert.match(
      call.stdout,
      /User \\"system:serviceaccount:default:default\\" cannot list resource \\"secrets\\"/,
    );
  });

  test("the node stays Ready for over 60 s: its Lease is renewed and no not-ready taint appears", async () => {
    const renewTime = () =>
      jsonpath("lease", "-n", "kube-node-lease", "osm-local", "-o", "jsonpath={.spec.renewTime}");
    const renewals = new Set<string>();
    const start = Date.now();
    while (Date.now() - start < 65_000) {
      renewals.add(await renewTime());
      const ready = await jsonpath(
        "node",
        "osm-local",
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
      );
      assert.equal(ready, "True", `Ready after ${Math.round((Date.now() - start) / 1000)} s`);
      const taints = await jsonpath("node", "osm-local", "-o", "jsonpath={.spec.taints}");
      assert.doesNotMatch(taints, /not-ready|unreachable/);
      await new Promise((r) => setTimeout(r, 5000));
    }
    assert.ok(renewals.size >= 5, `the lease was renewed ${renewals.size - 1} times in 65 s`);
    assert.match((await kubectl("get", "pod", "box", "--no-headers")).stdout, /\s2\/2\s+Running\s/);
  });
});

/**
 * Issue 6's "Done when", with the real kubectl against the real daemon: `osm mesh up` (temp kubeconfig and
 * state dir, a test bridge so a running daemon on osm0 is never touched), namespace, a Deployment of two
 * `sleep` containers shown `2/2 Running`, exec, exit codes, logs, `rollout restart`, a daemon `kill -9` and
 * restart (pods come back on their address), and `osm mesh down` leaving nothing behind.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { alive } from "../../netns/node/harness.ts";
import {
  countSleepers,
  hostLeftovers as leftovers,
  localMesh,
  meshDownPurgeArgs,
  testEngine,
} from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";
import { apiChurn, CHURN_SLEEP } from "./api-churn.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-ne-";
const BRIDGE = "osmt-ne0";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";
const hostLeftovers = () => leftovers(PREFIX, BRIDGE);

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleepers
spec:
  replicas: 1
  selector:
    matchLabels: {app: sleepers}
  template:
    metadata:
      labels: {app: sleepers}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: one
        image: curlimages/curl
        command: ["sleep", "365d"]
      - name: two
        image: busybox
        command: ["sh", "-c", "echo hello from two; exec sleep 365d"]
`;

describe("osm mesh up, kubectl, osm mesh down", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let upArgs: string[];
  let stateDir: string;
  let kubeconfig: string;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const osm = (...args: string[]) => run(OSM, args, { env });

  /** Polls `kubectl get pods -n demo` until exactly one pod is listed `2/2 Running`; returns its name. */
  async function oneRunningPod(not?: string): Promise<string> {
    let last = "";
    return until(
      "a single 2/2 Running pod",
      async () => {
        const r = await kubectl("get", "pods", "-n", "demo", "--no-headers");
        last = r.stdout + r.stderr;
        const rows = r.stdout.trim().split("\n").filter(Boolean);
        const row = rows[0]?.split(/\s+/) ?? [];
        return rows.length === 1 && row[1] === "2/2" && row[2] === "Running" && row[0] !== not
          ? row[0]
          : undefined;
      },
      45_000,
      200,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last output:\n${last}`);
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-mesh-"));
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "198.51.100.192/27",
      subnet6: "2001:db8:1:2::/64",
      lastSlot: 30,
    }));
    // A kubeconfig with another context: `up` must merge, `down` must keep it.
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: 'https://192.0.2.1:6443'}\nusers:\n- name: other\n  user: {token: x}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\ncurrent-context: other\n",
    );
  });

  after(async () => {
    // Safety net when a test failed half-way; a no-op after the down test.
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("osm mesh up starts the daemon and makes context osm-local current; a second up is a no-op", async () => {
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /osm-local is up/);
    const cfg = parse(readFileSync(kubeconfig, "utf8"));
    assert.equal(cfg["current-context"], "osm-local");
    assert.deepEqual(cfg.contexts.map((c: { name: string }) => c.name).sort(), ["osm-local", "other"]);
    const again = await osm(...upArgs);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already running/);
    // A second daemon (another state directory) on the same bridge would tear down this one's pods.
    const other = [...upArgs];
    other[other.indexOf("--state-dir") + 1] = join(dir, "other-state");
    const refused = await osm(...other);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(`Error: bridge ${BRIDGE} is in use by the osm-local daemon of ${stateDir}`),
    );
    const status = await osm("mesh", "status", "--state-dir", stateDir);
    // The embedded API server listens on loopback; kube-apiserver on the node's address on the bridge.
    const host = testEngine() === "kubernetes" ? "198\\.51\\.100\\.\\d+" : "127\\.0\\.0\\.1";
    assert.match(
      status.stdout,
      new RegExp(`running [\\s\\S]*API server: +https://${host}:\\d+\\n[\\s\\S]*bridge ${BRIDGE}`),
    );
  });

  test("kubectl creates a namespace and a Deployment whose pod shows 2/2 Running", async () => {
    assert.equal((await kubectl("create", "namespace", "demo")).code, 0);
    const applied = await run("kubectl", ["apply", "-n", "demo", "-f", "-"], { env, input: DEPLOYMENT });
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /deployment.apps\/sleepers created/);
    const pod = await oneRunningPod();
    const ip = (await kubectl("get", "pod", "-n", "demo", pod, "-o", "jsonpath={.status.podIP}")).stdout;
    assert.match(ip, /^198\.51\.100\.(19[4-9]|2[01]\d|22[0-3])$/);
  });

  test("kubectl exec runs curl in the pod and propagates exit code 7; logs show the container's output", async () => {
    const pod = await oneRunningPod();
    const version = await kubectl("exec", "-n", "demo", pod, "-c", "one", "--", "curl", "--version");
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^curl \d+\.\d+/);
    const seven = await kubectl("exec", "-n", "demo", pod, "-c", "one", "--", "sh", "-c", "exit 7");
    assert.equal(seven.code, 7);
    assert.match(seven.stderr, /command terminated with exit code 7/);
    const logs = await kubectl("logs", "-n", "demo", pod, "-c", "two");
    assert.equal(logs.stdout, "hello from two\n");
    const events = await kubectl(
      "get",
      "events",
      "-n",
      "demo",
      "-o",
      'jsonpath={range .items[*]}{.reason}:{.message}{"\\n"}{end}',
    );
    assert.match(events.stdout, /^Started:Started container one$/m);
    assert.match(events.stdout, /^Started:Started container two$/m);
  });

  test("kubectl logs -f follows a running container until it exits, then logs prints its whole output", async () => {
    const pod = `apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  restartPolicy: Never
  containers:
  - {name: talk, image: busybox, command: ["sh", "-c", "sleep 1; for i in 1 2 3; do echo $i; sleep 0.3; done; echo bye >&2"]}
`;
    assert.equal((await run("kubectl", ["apply", "-n", "demo", "-f", "-"], { env, input: pod })).code, 0);
    try {
      const deadline = Date.now() + 20_000;
      let phase = "";
      while (phase !== "Running" && phase !== "Succeeded" && Date.now() < deadline) {
        phase = (await kubectl("get", "pod", "-n", "demo", "talker", "-o", "jsonpath={.status.phase}"))
          .stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      const followed = await kubectl("logs", "-f", "-n", "demo", "talker");
      assert.equal(followed.code, 0, followed.stderr);
      assert.equal(followed.stdout, "1\n2\n3\nbye\n");
      const again = await kubectl("logs", "-n", "demo", "talker", "--tail=1");
      assert.equal(again.stdout, "bye\n");
    } finally {
      await kubectl("delete", "pod", "-n", "demo", "talker", "--timeout=30s");
    }
  });

  test("env from a ConfigMap (envFrom) and a Secret (secretKeyRef) reaches the container", async () => {
    const manifest = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {GREETING: hi}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {token: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: envy}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "365d"]
    envFrom: [{configMapRef: {name: cfg}}]
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: creds, key: token}}}]
`;
    const applied = await run("kubectl", ["apply", "-n", "demo", "-f", "-"], { env, input: manifest });
    assert.equal(applied.code, 0, applied.stderr);
    try {
      const deadline = Date.now() + 20_000;
      let phase = "";
      while (phase !== "Running" && Date.now() < deadline) {
        phase = (await kubectl("get", "pod", "-n", "demo", "envy", "-o", "jsonpath={.status.phase}")).stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      const printed = await kubectl("exec", "-n", "demo", "envy", "--", "printenv", "GREETING", "TOKEN");
      assert.equal(printed.stdout, "hi\ns3cret\n", printed.stderr);
    } finally {
      await kubectl("delete", "pod", "-n", "demo", "envy", "--timeout=30s");
    }
  });

  test("kubectl rollout restart replaces the pod: the new one runs, the old one is gone with its namespace", async () => {
    const old = await oneRunningPod();
    const before = await hostLeftovers();
    const restart = await kubectl("rollout", "restart", "deployment", "sleepers", "-n", "demo");
    assert.equal(restart.code, 0, restart.stderr);
    const status = await kubectl(
      "rollout",
      "status",
      "deployment",
      "sleepers",
      "-n",
      "demo",
      "--timeout=60s",
    );
    assert.equal(status.code, 0, status.stderr);
    const fresh = await oneRunningPod(old);
    assert.notEqual(fresh, old);
    const after = await hostLeftovers();
    assert.equal(
      after.filter((n) => n.startsWith(PREFIX)).length,
      before.filter((n) => n.startsWith(PREFIX)).length,
    );
  });

  test("a failing init container shows Init:Error under restartPolicy Never and Init:CrashLoopBackOff under Always", async () => {
    const pods = ["Never", "Always"]
      .map(
        (policy) => `apiVersion: v1
kind: Pod
metadata: {name: init-${policy.toLowerCase()}}
spec:
  restartPolicy: ${policy}
  initContainers:
  - {name: setup, image: busybox, command: ["sh", "-c", "exit 3"]}
  containers:
  - {name: main, image: busybox, command: ["sleep", "365d"]}
`,
      )
      .join("---\n");
    const applied = await run("kubectl", ["apply", "-n", "demo", "-f", "-"], { env, input: pods });
    assert.equal(applied.code, 0, applied.stderr);
    const want = { "init-never": "Init:Error", "init-always": "Init:CrashLoopBackOff" };
    const deadline = Date.now() + 30_000;
    let seen: Record<string, string> = {};
    while (Date.now() < deadline) {
      const r = await kubectl("get", "pods", "-n", "demo", "--no-headers");
      seen = Object.fromEntries(
        r.stdout
          .trim()
          .split("\n")
          .map((l) => l.split(/\s+/))
          .map((c) => [c[0], c[2]]),
      );
      if (seen["init-never"] === want["init-never"] && seen["init-always"] === want["init-always"]) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(seen["init-never"], "Init:Error");
    assert.equal(seen["init-always"], "Init:CrashLoopBackOff");
    const deleted = await kubectl(
      "delete",
      "pod",
      "-n",
      "demo",
      "init-never",
      "init-always",
      "--wait=true",
      "--timeout=60s",
    );
    assert.equal(deleted.code, 0, deleted.stderr);
  });

  test("10 pod create/delete cycles through the API leave no netns, veth or process behind", async () => {
    const before = (await hostLeftovers()).filter((n) => n.startsWith(PREFIX)).sort();
    const sleepers = (): number => countSleepers(CHURN_SLEEP);
    const sleepersBefore = sleepers();
    assert.equal((await kubectl("create", "namespace", "churn")).code, 0);
    const { runningMs } = await apiChurn(kubeconfig, "churn", 10);
    assert.equal(runningMs.length, 10);
    assert.deepEqual((await hostLeftovers()).filter((n) => n.startsWith(PREFIX)).sort(), before);
    assert.equal(sleepers(), sleepersBefore);
    const left = await kubectl("get", "pods", "-n", "churn", "--no-headers");
    assert.equal(left.stdout, "");
  });

  test("after kill -9 of the daemon, osm mesh up restarts the pod on its address and removes the old processes", async () => {
    const pod = await oneRunningPod();
    const ip = (await kubectl("get", "pod", "-n", "demo", pod, "-o", "jsonpath={.status.podIP}")).stdout;
    const pid = Number(readFileSync(join(stateDir, "daemon.pid"), "utf8"));
    const sandbox = (await hostLeftovers()).find((n) => n.startsWith(PREFIX)) ?? "";
    const oldPids = (await run("ip", ["netns", "pids", sandbox], { env })).stdout
      .trim()
      .split("\n")
      .map(Number);
    assert.ok(oldPids.length >= 2);
    process.kill(pid, "SIGKILL");
    // Until pid 1 has reaped it (~1.6 s here): the store's lock file names this pid and counts a zombie as alive.
    const reaped = Date.now() + 20_000;
    while (existsSync(`/proc/${pid}`) && Date.now() < reaped) await new Promise((r) => setTimeout(r, 50));
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
    const deadline = Date.now() + 30_000;
    let row: string[] = [];
    while (Date.now() < deadline) {
      const r = await kubectl("get", "pods", "-n", "demo", "--no-headers");
      row = r.stdout.trim().split(/\s+/);
      if (row[0] === pod && row[1] === "2/2" && row[2] === "Running" && row[3] === "2") break;
      await new Promise((res) => setTimeout(res, 200));
    }
    // RESTARTS sums both containers, each restarted once.
    assert.deepEqual(row.slice(0, 4), [pod, "2/2", "Running", "2"]);
    assert.equal(
      (await kubectl("get", "pod", "-n", "demo", pod, "-o", "jsonpath={.status.podIP}")).stdout,
      ip,
    );
    for (const p of oldPids) assert.equal(alive(p), false, `old container pid ${p} survived`);
  });

  test("kubectl delete namespace stops its pods: their processes and network namespaces go", async () => {
    assert.equal((await kubectl("create", "namespace", "doomed")).code, 0);
    const pod =
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sleep, 365d]}\n";
    assert.equal((await run("kubectl", ["apply", "-n", "doomed", "-f", "-"], { env, input: pod })).code, 0);
    let ip = "";
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await kubectl(
        "get",
        "pod",
        "-n",
        "doomed",
        "p",
        "-o",
        "jsonpath={.status.phase} {.status.podIP}",
      );
      if (r.stdout.startsWith("Running ")) {
        ip = r.stdout.split(" ")[1] ?? "";
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    const sandbox = `${PREFIX}${Number(ip.split(".")[3]) - 192}`;
    const pids = (await run("ip", ["netns", "pids", sandbox], { env })).stdout
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
    assert.ok(pids.length > 0, `no process in ${sandbox}`);
    const deleted = await kubectl("delete", "namespace", "doomed", "--timeout=60s");
    assert.equal(deleted.code, 0, deleted.stderr);
    const gone = Date.now() + 30_000;
    while ((await hostLeftovers()).includes(sandbox) && Date.now() < gone)
      await new Promise((r) => setTimeout(r, 200));
    assert.equal((await hostLeftovers()).includes(sandbox), false);
    for (const p of pids) assert.equal(alive(p), false, `pid ${p} survived`);
  });

  test("osm mesh down leaves no namespace, veth, bridge, process or kubeconfig context behind", async () => {
    const sandboxes = (await hostLeftovers()).filter((n) => n.startsWith(PREFIX));
    const pids = (await Promise.all(sandboxes.map((s) => run("ip", ["netns", "pids", s], { env })))).flatMap(
      (r) => r.stdout.trim().split("\n").filter(Boolean).map(Number),
    );
    assert.ok(pids.length >= 2, "the Deployment's containers run when down starts");
    const daemonPid = Number(readFileSync(join(stateDir, "daemon.pid"), "utf8"));
    const down = await osm("mesh", "down", "--state-dir", stateDir);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /osm-local stopped/);
    assert.deepEqual(await hostLeftovers(), []);
    assert.equal(alive(daemonPid), false);
    for (const p of pids) assert.equal(alive(p), false, `pid ${p} survived`);
    const cfg = parse(readFileSync(kubeconfig, "utf8"));
    assert.deepEqual(
      cfg.contexts.map((c: { name: string }) => c.name),
      ["other"],
    );
    const status = await osm("mesh", "status", "--state-dir", stateDir);
    assert.match(status.stdout, /not running/);
    const again = await osm("mesh", "down", "--state-dir", stateDir, "--purge");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /was not running/);
  });

  test("osm mesh up refuses a port that is taken, with a clear error", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    const args = [...upArgs];
    // What listens on loopback: the embedded API server, or the real engine's etcd.
    const flag = testEngine() === "kubernetes" ? "--etcd-port" : "--port";
    args[args.indexOf(flag) + 1] = String(port);
    const up = await osm(...args);
    blocker.close();
    assert.equal(up.code, 1);
    assert.match(up.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    assert.deepEqual(await hostLeftovers(), []);
  });
});

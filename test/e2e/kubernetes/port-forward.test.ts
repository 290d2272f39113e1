/**
 * `kubectl port-forward` through the real kube-apiserver to the node agent's kubelet API (`osm mesh up --engine
 * kubernetes`), then the same through the embedded engine's daemon (`osm mesh up`), one after the other on
 * bridge `osmt-pf0`, 198.51.100.112/28. kube-apiserver unwraps kubectl's WebSocket tunnel and upgrades to the
 * kubelet with SPDY/3.1 (the embedded API server serves the tunnel itself); each local connection becomes a
 * stream pair spliced to a connection to localhost:port inside the pod's network namespace. The pod runs httpbin
 * on port 80 (its `/anything` echoes each body back) and a second one bound to 127.0.0.1:8081.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hostLeftovers, localMesh, meshDownPurgeArgs, runningPodIP } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import {
  curlLocal,
  expectForwardToDeadPort,
  expectSequentialThenConcurrent,
  freePorts,
  startForward,
} from "../../support/port-forward.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-pf-";
const BRIDGE = "osmt-pf0";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

const POD = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: httpbin, image: kennethreitz/httpbin}
  - {name: local-only, image: kennethreitz/httpbin, args: ["--port", "8081", "--host", "127.0.0.1"]}
`;

const NET = {
  bridge: BRIDGE,
  namePrefix: PREFIX,
  subnet4: "198.51.100.112/28",
  subnet6: "2001:db8:1:f0::/64",
  lastSlot: 14,
};

const ENGINES = {
  kubernetes: "the real control plane: kube-apiserver calls the kubelet API",
  embedded: "the embedded engine's daemon: its API server calls the node agent in-process",
} as const;

for (const [engine, path] of Object.entries(ENGINES) as [keyof typeof ENGINES, string][])
  describe(`kubectl port-forward through ${path}`, {
    skip: rootSkip,
    concurrency: false,
  }, () => {
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let stateDir: string;
    let kubeconfig: string;
    let podIP: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "osmt-portfwd-"));
      const mesh = await localMesh(dir, NET, engine);
      ({ stateDir, kubeconfig, env } = mesh);
      const up = await run(OSM, mesh.upArgs, { env, timeoutMs: 120_000 });
      assert.equal(up.code, 0, up.stderr);
      const applied = await run("kubectl", ["apply", "-f", "-"], { env, input: POD });
      assert.equal(applied.code, 0, applied.stderr);
      podIP = await runningPodIP(env, "web");
      // httpbin listens a moment after its container starts.
      await until(
        "httpbin listening in the pod",
        async () =>
          (await run("curl", ["-sS", "-o", "/dev/null", `http://${podIP}/`])).code === 0 ? true : undefined,
        60_000,
      );
    });

    after(async () => {
      if (stateDir) await run(OSM, meshDownPurgeArgs(stateDir, kubeconfig), { env, timeoutMs: 120_000 });
      if (dir) rmSync(dir, { recursive: true, force: true });
      assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
    });

    test("one connection after another, then 8 at once with a distinct 1 MB body each, byte for byte", async () => {
      const [local = 0] = await freePorts(1);
      const forward = await startForward(env, ["pod/web", `${local}:80`], [local]);
      try {
        const index = await curlLocal(local, "/");
        assert.equal(index.code, 0, index.stderr);
        assert.match(index.stdout, /httpbin/);
        await expectSequentialThenConcurrent(local, dir);
        assert.equal(forward.child.exitCode, null, forward.output());
      } finally {
        await forward.stop();
      }
    });

    test("a server bound to 127.0.0.1 in the pod is reached: the node dials localhost in the pod's network namespace", async () => {
      const netns = await podNetns(podIP);
      await until(
        "the loopback-only httpbin listening",
        async () =>
          (
            await run("ip", [
              "netns",
              "exec",
              netns,
              "curl",
              "-sS",
              "-o",
              "/dev/null",
              "http://127.0.0.1:8081/",
            ])
          ).code === 0
            ? true
            : undefined,
        30_000,
      );
      const direct = await run("curl", ["-sS", "--max-time", "5", `http://${podIP}:8081/get`]);
      assert.notEqual(direct.code, 0, "the loopback-only server must not answer on the pod IP");
      const [local = 0] = await freePorts(1);
      const forward = await startForward(env, ["pod/web", `${local}:8081`], [local]);
      try {
        const got = await curlLocal(local, "/get?via=loopback");
        assert.equal(got.code, 0, got.stderr);
        assert.deepEqual(JSON.parse(got.stdout).args, { via: "loopback" });
        assert.equal(JSON.parse(got.stdout).origin, "127.0.0.1");
      } finally {
        await forward.stop();
      }
    });

    test("a port nothing listens on: kubectl prints the node's error and exits 1, as kubectl 1.32 does", async () => {
      const [local = 0, deadLocal = 0] = await freePorts(2);
      const forward = await startForward(
        env,
        ["pod/web", `${local}:80`, `${deadLocal}:81`],
        [local, deadLocal],
      );
      try {
        await expectForwardToDeadPort(
          forward,
          deadLocal,
          81,
          "error forwarding port 81 to pod default/web: localhost:81 in the pod: connect ECONNREFUSED 127.0.0.1:81",
        );
      } finally {
        await forward.stop();
      }
    });

    test("stopping the forward closes its connections inside the pod", async () => {
      const netns = await podNetns(podIP);
      const established = async () =>
        (
          await run("ip", ["netns", "exec", netns, "ss", "-Htn", "state", "established", "( sport = :80 )"])
        ).stdout
          .split("\n")
          .filter(Boolean).length;
      const [local = 0] = await freePorts(1);
      const forward = await startForward(env, ["pod/web", `${local}:80`], [local]);
      const client = connect(local, "127.0.0.1");
      client.on("error", () => {});
      // Half a request: httpbin holds the connection open for the rest.
      client.write("POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
      await until("the connection inside the pod", async () =>
        (await established()) > 0 ? true : undefined,
      );
      await forward.stop();
      await until("no connection left inside the pod", async () =>
        (await established()) === 0 ? true : undefined,
      );
      client.destroy();
    });
  });

/** The network namespace (`osmt-pf-N`) holding `ip`. */
async function podNetns(ip: string): Promise<string> {
  const names = (await run("ip", ["netns", "list"])).stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(PREFIX));
  for (const name of names) {
    const addrs = await run("ip", ["-n", name, "-4", "-o", "addr", "show"]);
    if (addrs.stdout.includes(` ${ip}/`)) return name;
  }
  throw new Error(`no ${PREFIX}* network namespace holds ${ip}`);
}

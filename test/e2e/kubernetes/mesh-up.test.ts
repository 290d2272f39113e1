/**
 * `osm mesh up --engine kubernetes`: the real control plane comes up (kubectl sees kube-apiserver's own
 * version), `osm mesh status` lists each component, `osm mesh down --purge` stops them all and leaves nothing;
 * and the bad states a user meets say what is wrong and what to do: binaries not built, a port taken, etcd
 * failing to start.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hostLeftovers, localMesh, meshUpArgs } from "../../support/mesh.ts";
import { freePort, portFree } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const rootSkip = process.getuid?.() === 0 ? false : "needs root: the daemon makes a bridge and namespaces";
const BRIDGE = "osmt-ke0";
const PREFIX = "osmt-ke-";
const NET = {
  bridge: BRIDGE,
  namePrefix: PREFIX,
  subnet4: "198.51.100.64/27",
  subnet6: "2001:db8:1:a::/64",
  lastSlot: 30,
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("osm mesh up --engine kubernetes", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "osmt-ke-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh state dir, kubeconfig and `up` arguments on the real engine with free ports. */
  async function mesh(name: string, etcdPort?: number) {
    const sub = join(dir, name);
    mkdirSync(sub);
    const m = await localMesh(sub, NET);
    let etcd = etcdPort ?? (await freePort());
    while (etcdPort === undefined && !(await portFree(etcd + 1))) etcd = await freePort();
    const upArgs = meshUpArgs({
      ...NET,
      stateDir: m.stateDir,
      kubeconfig: m.kubeconfig,
      port: await freePort(),
      kubernetes: { etcdPort: etcd, kubeletPort: await freePort() },
    });
    const down = () =>
      run(OSM, ["mesh", "down", "--purge", "--state-dir", m.stateDir, "--kubeconfig", m.kubeconfig], {
        env: m.env,
      });
    return { ...m, upArgs, down };
  }

  test("up runs the real kube-apiserver; status lists the components; down --purge leaves nothing", async () => {
    const m = await mesh("ok");
    const up = await run(OSM, m.upArgs, { env: m.env, timeoutMs: 180_000 });
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /engine: +kubernetes \(kube-apiserver v1\.\d+\.\d+\)/);
    const version = await run("kubectl", ["version"], { env: m.env });
    assert.match(version.stdout, /Server Version: v1\.3[6-9]\.\d+/);
    const whoami = await run("kubectl", ["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
      env: m.env,
    });
    assert.equal(whoami.stdout, "kubernetes-admin", "the kubeconfig's credential is the admin certificate");
    const status = await run(OSM, ["mesh", "status", "--state-dir", m.stateDir, "-o", "json"], {
      env: m.env,
    });
    const health = JSON.parse(status.stdout) as {
      health: { engine: string; kubernetes: { components: Record<string, string> } };
    };
    assert.equal(health.health.engine, "kubernetes");
    const pids = Object.entries(health.health.kubernetes.components).map(([name, state]) => {
      const pid = /running \(pid (\d+)\)/.exec(state)?.[1];
      assert.ok(pid, `${name}: ${state}`);
      return Number(pid);
    });
    assert.equal(pids.length, 4);
    const down = await m.down();
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(pids.filter(alive), [], "every control-plane process is gone");
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
    assert.equal(existsSync(m.stateDir), false);
  });

  test("binaries not built: says so and how to build them", async () => {
    const m = await mesh("nobin");
    const up = await run(OSM, m.upArgs, {
      env: { ...m.env, OSM_KUBE_BIN: join(dir, "nowhere") },
      timeoutMs: 60_000,
    });
    assert.equal(up.code, 1);
    assert.match(up.stderr, /the real Kubernetes control plane is not built: etcd, kube-apiserver/);
    assert.match(up.stderr, /hint: build them with `bash scripts\/kube-binaries`/);
    assert.equal((await m.down()).code, 0);
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("etcd's port taken: names the port, the component and the flag", async () => {
    let port = await freePort();
    while (!(await portFree(port + 1))) port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(port, "127.0.0.1", () => r()));
    try {
      const m = await mesh("port", port);
      const up = await run(OSM, m.upArgs, { env: m.env, timeoutMs: 60_000 });
      assert.equal(up.code, 1);
      assert.match(
        up.stderr,
        new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use, so etcd cannot`),
      );
      assert.match(up.stderr, /--etcd-port/);
      assert.equal((await m.down()).code, 0);
    } finally {
      holder.close();
    }
  });

  test("etcd failing to start: quotes its log, stops what started, down cleans up", async () => {
    const m = await mesh("etcd");
    // A data directory etcd cannot use: `member` must be a directory.
    mkdirSync(join(m.stateDir, "kubernetes", "etcd"), { recursive: true, mode: 0o700 });
    writeFileSync(join(m.stateDir, "kubernetes", "etcd", "member"), "not a directory\n");
    const up = await run(OSM, m.upArgs, { env: m.env, timeoutMs: 60_000 });
    assert.equal(up.code, 1);
    assert.match(up.stderr, /etcd failed to start \(exited \(code \d+\)\); the end of .*etcd\.log:\n\S/);
    assert.equal((await m.down()).code, 0);
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });
});

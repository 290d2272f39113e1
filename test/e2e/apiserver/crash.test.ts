/**
 * Crash safety: the server process is killed with SIGKILL while writes are in flight, restarted on the
 * same state directory, and every write it acknowledged is there; the same kubeconfig (CA, token) works.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { kubeConfigFrom, kubectlFor, type ServerProcess, startServerProcess, tempDir } from "./helpers.ts";

describe("the embedded API server after kill -9", () => {
  const dir = tempDir("crash");
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.kill9();
    dir.remove();
  });

  it("keeps every acknowledged object across snapshots, and the kubeconfig it wrote still works", async () => {
    const state = `${dir.path}/state`;
    // Compacting every 40 records puts snapshot writes inside the kill window too.
    const first = await startServerProcess(state, { OSMT_API_CRD_DIRS: "", OSMT_API_COMPACT_EVERY: "40" });
    servers.push(first);
    const core = kubeConfigFrom(first.kubeconfig).makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "crash" } } });
    const acknowledged = new Map<string, string>();
    let next = 0;
    let killed = false;
    // Eight writers create ConfigMaps until the server dies under them.
    const writer = async () => {
      while (!killed && next < 2000) {
        const name = `cm-${next++}`;
        try {
          const cm = await core.createNamespacedConfigMap({
            namespace: "crash",
            body: { metadata: { name }, data: { n: name } },
          });
          acknowledged.set(name, cm.metadata?.resourceVersion ?? "");
        } catch {
          return;
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    while (acknowledged.size < 150) await new Promise((r) => setTimeout(r, 10));
    killed = true;
    await first.kill9();
    await Promise.all(writers);
    assert.ok(acknowledged.size >= 150);

    const second = await startServerProcess(state, { OSMT_API_CRD_DIRS: "" });
    servers.push(second);
    const core2 = kubeConfigFrom(second.kubeconfig).makeApiClient(k8s.CoreV1Api);
    const stored = await core2.listNamespacedConfigMap({ namespace: "crash" });
    const names = new Set(stored.items.map((c) => c.metadata?.name));
    const lost = [...acknowledged.keys()].filter((n) => !names.has(n));
    assert.deepEqual(lost, [], "acknowledged writes lost across kill -9");
    for (const cm of stored.items) {
      const rv = acknowledged.get(cm.metadata?.name ?? "");
      if (rv) assert.equal(cm.metadata?.resourceVersion, rv);
    }
    // resourceVersions keep growing after the restart.
    const maxRv = Math.max(...stored.items.map((c) => Number(c.metadata?.resourceVersion)));
    const fresh = await core2.createNamespacedConfigMap({
      namespace: "crash",
      body: { metadata: { name: "after-restart" } },
    });
    assert.ok(Number(fresh.metadata?.resourceVersion) > maxRv);
    // The kubeconfig written before the crash (same CA and token) is accepted.
    const kubectl = kubectlFor(first.kubeconfig, dir.path);
    const r = await kubectl(["get", "configmap", "cm-0", "-n", "crash", "-o", "jsonpath={.data.n}"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "cm-0");
  });
});

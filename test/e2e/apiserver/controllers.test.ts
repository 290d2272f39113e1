/**
 * The Deployment controller's strategies, watched through client-node: Recreate removes every old pod
 * before the first new one exists; RollingUpdate with one replica (25%/25% → surge 1, unavailable 0)
 * creates the new pod first and removes the old one once the new one is Ready.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import type { ApiServer } from "../../../src/local/embedded-api-server.ts";
import { startEmbeddedApiServer } from "../../support/apiserver.ts";
import { until } from "../../support/poll.ts";
import { startNodeStandIn, tempDir } from "./helpers.ts";

function deployment(name: string, replicas: number, strategy: k8s.V1DeploymentStrategy): k8s.V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      strategy,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "c", image: "busybox", command: ["sleep", "1d"] }] },
      },
    },
  };
}

describe("Deployment strategies", () => {
  const dir = tempDir("controllers");
  let server: ApiServer;
  let kc: k8s.KubeConfig;
  let apps: k8s.AppsV1Api;
  let core: k8s.CoreV1Api;

  before(async () => {
    ({ server, kc } = await startEmbeddedApiServer(dir.path, "osm-local", { crdDirs: [] }));
    apps = kc.makeApiClient(k8s.AppsV1Api);
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "strat" } } });
  });
  after(async () => {
    await server?.close();
    dir.remove();
  });

  /** Records pod ADDED/DELETED events as "+name" / "-name" while `fn` runs. */
  async function recordPods(app: string, fn: () => Promise<void>): Promise<string[]> {
    const log: string[] = [];
    const watch = new k8s.Watch(kc);
    const req = await watch.watch(
      `/api/v1/namespaces/strat/pods`,
      { labelSelector: `app=${app}` },
      (type, pod: k8s.V1Pod) => {
        if (type === "ADDED") log.push(`+${pod.metadata?.labels?.["pod-template-hash"]}`);
        if (type === "DELETED") log.push(`-${pod.metadata?.labels?.["pod-template-hash"]}`);
      },
      () => undefined,
    );
    try {
      await fn();
    } finally {
      req.abort();
    }
    return log;
  }

  const restart = (name: string) =>
    apps.patchNamespacedDeployment(
      {
        name,
        namespace: "strat",
        body: {
          spec: {
            template: {
              metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } },
            },
          },
        },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );

  const hashes = async (app: string) =>
    (await core.listNamespacedPod({ namespace: "strat", labelSelector: `app=${app}` })).items.map(
      (p) => p.metadata?.labels?.["pod-template-hash"],
    );

  it("Recreate: every old pod is gone before the first new one is created", async () => {
    await apps.createNamespacedDeployment({
      namespace: "strat",
      body: deployment("rec", 2, { type: "Recreate" }),
    });
    await until("2 pods", async () => ((await hashes("rec")).length === 2 ? true : undefined), 10_000, 50);
    const [oldHash] = await hashes("rec");
    const log = await recordPods("rec", async () => {
      await restart("rec");
      await until(
        "2 new pods",
        async () => {
          const h = await hashes("rec");
          return h.length === 2 && h.every((x) => x !== oldHash) ? true : undefined;
        },
        10_000,
        50,
      );
    });
    // The watch starts with the current pods as ADDED: look at the new hash only.
    const firstNew = log.findIndex((e) => e.startsWith("+") && e !== `+${oldHash}`);
    const lastOld = log.map((e) => e === `-${oldHash}`).lastIndexOf(true);
    assert.ok(firstNew > lastOld, `old pods removed before new ones: ${log.join(" ")}`);
  });

  it("RollingUpdate: the new pod comes first and the old one goes once the new one is Ready", async () => {
    const stop = await startNodeStandIn(kc, "strat");
    try {
      await apps.createNamespacedDeployment({
        namespace: "strat",
        body: deployment("roll", 1, { type: "RollingUpdate" }),
      });
      await until(
        "1 ready pod",
        async () => {
          const d = await apps.readNamespacedDeployment({ name: "roll", namespace: "strat" });
          return d.status?.readyReplicas === 1 ? true : undefined;
        },
        10_000,
        50,
      );
      const [oldHash] = await hashes("roll");
      const log = await recordPods("roll", async () => {
        await restart("roll");
        await until(
          "only the new pod",
          async () => {
            const h = await hashes("roll");
            return h.length === 1 && h[0] !== oldHash ? true : undefined;
          },
          10_000,
          50,
        );
      });
      const firstNew = log.findIndex((e) => e.startsWith("+") && e !== `+${oldHash}`);
      const oldGone = log.indexOf(`-${oldHash}`);
      assert.ok(firstNew >= 0 && oldGone > firstNew, `new pod first: ${log.join(" ")}`);
    } finally {
      stop();
    }
  });
});

/**
 * @kubernetes/client-node against the embedded API server (in process): informers see adds, updates and
 * deletes; a stale update is a 409 Conflict; a watch from a resourceVersion older than the history is 410
 * Gone; pod status written by a node round-trips.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import WebSocket from "ws";
import type { ApiServer } from "../../../src/local/embedded-api-server.ts";
import { startEmbeddedApiServer } from "../../support/apiserver.ts";
import { until } from "../../support/poll.ts";
import { LocalProcessNode } from "./fixtures/local-node.ts";
import { tempDir } from "./helpers.ts";

function httpCode(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

describe("client-node against the embedded API server", () => {
  const dir = tempDir("client-node");
  let server: ApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;

  before(async () => {
    ({ server, kc } = await startEmbeddedApiServer(dir.path, "osm-local", {
      crdDirs: [],
      watchHistory: 20,
      nodeConnector: new LocalProcessNode(),
    }));
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "inf" } } });
  });
  after(async () => {
    await server?.close();
    dir.remove();
  });

  it("lets an informer see a ConfigMap added, updated and deleted", async () => {
    const seen: string[] = [];
    const informer = k8s.makeInformer(kc, "/api/v1/namespaces/inf/configmaps", () =>
      core.listNamespacedConfigMap({ namespace: "inf" }),
    );
    informer.on("add", (o) => seen.push(`add ${o.metadata?.name} ${o.data?.k}`));
    informer.on("update", (o) => seen.push(`update ${o.metadata?.name} ${o.data?.k}`));
    informer.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    await informer.start();
    try {
      await core.createNamespacedConfigMap({
        namespace: "inf",
        body: { metadata: { name: "cm1" }, data: { k: "v1" } },
      });
      await until("add", () => (seen.includes("add cm1 v1") ? true : undefined), 5000, 50);
      await core.replaceNamespacedConfigMap({
        name: "cm1",
        namespace: "inf",
        body: { metadata: { name: "cm1" }, data: { k: "v2" } },
      });
      await until("update", () => (seen.includes("update cm1 v2") ? true : undefined), 5000, 50);
      await core.deleteNamespacedConfigMap({ name: "cm1", namespace: "inf" });
      await until("delete", () => (seen.includes("delete cm1") ? true : undefined), 5000, 50);
      assert.deepEqual(seen, ["add cm1 v1", "update cm1 v2", "delete cm1"]);
    } finally {
      await informer.stop();
    }
  });

  it("answers an update with a stale resourceVersion with 409 Conflict, and a duplicate create with 409", async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: "inf",
      body: { metadata: { name: "cm2" }, data: { k: "a" } },
    });
    const rv = created.metadata?.resourceVersion;
    await core.replaceNamespacedConfigMap({
      name: "cm2",
      namespace: "inf",
      body: { metadata: { name: "cm2", resourceVersion: rv }, data: { k: "b" } },
    });
    await assert.rejects(
      core.replaceNamespacedConfigMap({
        name: "cm2",
        namespace: "inf",
        body: { metadata: { name: "cm2", resourceVersion: rv }, data: { k: "c" } },
      }),
      (error) =>
        httpCode(error) === 409 && /the object has been modified/.test(String((error as Error).message)),
    );
    await assert.rejects(
      core.createNamespacedConfigMap({ namespace: "inf", body: { metadata: { name: "cm2" } } }),
      (error) => httpCode(error) === 409,
    );
    const current = await core.readNamespacedConfigMap({ name: "cm2", namespace: "inf" });
    assert.equal(current.data?.k, "b");
  });

  it("answers a watch from a resourceVersion older than its history with 410 Gone", async () => {
    const first = await core.createNamespacedConfigMap({
      namespace: "inf",
      body: { metadata: { name: "old" } },
    });
    for (let i = 0; i < 25; i++)
      await core.patchNamespacedConfigMap(
        { name: "old", namespace: "inf", body: { data: { i: String(i) } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      );
    const watch = new k8s.Watch(kc);
    const result = await new Promise<{ type: string; code?: number }>((resolve, reject) => {
      watch
        .watch(
          "/api/v1/namespaces/inf/configmaps",
          { resourceVersion: first.metadata?.resourceVersion },
          (type, obj) => resolve({ type, code: (obj as { code?: number }).code }),
          (err) =>
            err
              ? resolve({ type: "error", code: httpCode(err) ?? (err as { statusCode?: number }).statusCode })
              : undefined,
        )
        .catch(reject);
    });
    assert.equal(result.code, 410, JSON.stringify(result));
  });

  it("round-trips pod status written to the status subresource, and schedules pods to osm-local", async () => {
    const pod = await core.createNamespacedPod({
      namespace: "inf",
      body: {
        metadata: { name: "p1" },
        spec: {
          containers: [{ name: "c", image: "busybox" }],
          initContainers: [{ name: "i", image: "busybox" }],
        },
      },
    });
    assert.equal(pod.spec?.nodeName, "osm-local");
    assert.equal(pod.status?.phase, "Pending");
    const status: k8s.V1PodStatus = {
      phase: "Pending",
      podIP: "198.51.100.7",
      podIPs: [{ ip: "198.51.100.7" }, { ip: "2001:db8:1::7" }],
      conditions: [{ type: "Initialized", status: "False", reason: "ContainersNotInitialized" }],
      initContainerStatuses: [
        {
          name: "i",
          image: "busybox",
          imageID: "",
          ready: false,
          restartCount: 3,
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" } },
          lastState: { terminated: { exitCode: 1, reason: "Error" } },
        },
      ],
      containerStatuses: [
        {
          name: "c",
          image: "busybox",
          imageID: "",
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: "PodInitializing" } },
        },
      ],
    };
    await core.replaceNamespacedPodStatus({ name: "p1", namespace: "inf", body: { ...pod, status } });
    const back = await core.readNamespacedPod({ name: "p1", namespace: "inf" });
    assert.deepEqual(
      back.status?.podIPs?.map((p) => p.ip),
      ["198.51.100.7", "2001:db8:1::7"],
    );
    assert.equal(back.status?.initContainerStatuses?.[0]?.state?.waiting?.reason, "CrashLoopBackOff");
    assert.equal(back.status?.initContainerStatuses?.[0]?.lastState?.terminated?.exitCode, 1);
    // A spec change through the status endpoint is ignored; a status change through the main one too.
    await core.patchNamespacedPod(
      { name: "p1", namespace: "inf", body: { status: { phase: "Running" } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    assert.equal((await core.readNamespacedPod({ name: "p1", namespace: "inf" })).status?.phase, "Pending");
  });

  it("lists pods of one node with a field selector", async () => {
    const list = await core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=osm-local" });
    assert.ok(list.items.some((p) => p.metadata?.name === "p1"));
    const none = await core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=elsewhere" });
    assert.equal(none.items.length, 0);
  });

  it("deletes a pod a node started gracefully (deletionTimestamp first), and at once with gracePeriodSeconds=0", async () => {
    const body = {
      metadata: { name: "g1" },
      spec: { terminationGracePeriodSeconds: 7, containers: [{ name: "c", image: "busybox" }] },
    };
    const pod = await core.createNamespacedPod({ namespace: "inf", body });
    const running = {
      phase: "Running",
      containerStatuses: [
        { name: "c", image: "busybox", imageID: "", ready: true, restartCount: 0, state: { running: {} } },
      ],
    };
    await core.replaceNamespacedPodStatus({
      name: "g1",
      namespace: "inf",
      body: { ...pod, status: running },
    });
    await core.deleteNamespacedPod({ name: "g1", namespace: "inf" });
    const marked = await core.readNamespacedPod({ name: "g1", namespace: "inf" });
    assert.ok(marked.metadata?.deletionTimestamp, "still there, being deleted");
    assert.equal(marked.metadata?.deletionGracePeriodSeconds, 7);
    await core.deleteNamespacedPod({
      name: "g1",
      namespace: "inf",
      // In the body: with a body, kube-apiserver reads the options from it alone, not from the query.
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
    });
    await assert.rejects(
      core.readNamespacedPod({ name: "g1", namespace: "inf" }),
      (error) => httpCode(error) === 404,
    );
    // A pod no node has reported on goes at once.
    await core.createNamespacedPod({ namespace: "inf", body: { ...body, metadata: { name: "g2" } } });
    await core.deleteNamespacedPod({ name: "g2", namespace: "inf" });
    await assert.rejects(
      core.readNamespacedPod({ name: "g2", namespace: "inf" }),
      (error) => httpCode(error) === 404,
    );
  });

  it("execs with client-node (v5) and with a v4-only WebSocket client, exit codes on the error channel", async () => {
    await core.createNamespacedPod({
      namespace: "inf",
      body: { metadata: { name: "x1" }, spec: { containers: [{ name: "c", image: "busybox" }] } },
    });
    const out: string[] = [];
    const stdout = new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    const status = await new Promise<k8s.V1Status>((resolve, reject) => {
      new k8s.Exec(kc)
        .exec("inf", "x1", "c", ["sh", "-c", "echo v5; exit 4"], stdout, null, null, false, (s) => resolve(s))
        .catch(reject);
    });
    assert.equal(out.join(""), "v5\n");
    assert.equal(status.status, "Failure");
    assert.equal(status.details?.causes?.[0]?.message, "4");

    const url = `${server.url.replace("https", "wss")}/api/v1/namespaces/inf/pods/x1/exec?command=sh&command=-c&command=echo%20v4%3B%20exit%203&stdout=true&stderr=true`;
    const frames: Buffer[] = [];
    const protocol = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(url, ["v4.channel.k8s.io"], {
        ca: server.caPem,
        headers: { Authorization: `Bearer ${server.token}` },
      });
      ws.on("message", (data: Buffer) => frames.push(Buffer.from(data)));
      ws.on("close", () => resolve(ws.protocol));
      ws.on("error", reject);
    });
    assert.equal(protocol, "v4.channel.k8s.io");
    const stdoutText = frames
      .filter((f) => f[0] === 1)
      .map((f) => f.subarray(1).toString())
      .join("");
    const error = JSON.parse(
      frames
        .find((f) => f[0] === 3)
        ?.subarray(1)
        .toString() ?? "{}",
    );
    assert.equal(stdoutText, "v4\n");
    assert.equal(error.reason, "NonZeroExitCode");
    assert.equal(error.details.causes[0].message, "3");
  });

  it("refuses a WebSocket exec without the token", async () => {
    const url = `${server.url.replace("https", "wss")}/api/v1/namespaces/inf/pods/x1/exec?command=true&stdout=true`;
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, ["v5.channel.k8s.io"], { ca: server.caPem });
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => undefined);
    });
    assert.equal(code, 401);
  });

  it("survives an exec client that vanishes mid-command, and stops the command", async () => {
    const url = `${server.url.replace("https", "wss")}/api/v1/namespaces/inf/pods/x1/exec?command=sleep&command=30&stdout=true`;
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, ["v5.channel.k8s.io"], {
        ca: server.caPem,
        headers: { Authorization: `Bearer ${server.token}` },
      });
      ws.on("open", () => {
        ws.terminate();
        resolve();
      });
      ws.on("error", reject);
    });
    await new Promise((r) => setTimeout(r, 200));
    const ns = await core.readNamespace({ name: "inf" });
    assert.equal(ns.metadata?.name, "inf");
    assert.ok(Date.now() - started < 5000);
  });
});

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { startController } from "../../../src/controller/index.ts";

/** A loopback port with nothing listening (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test("without a reachable API the controller is live but not ready, refuses configs, and closes promptly", async () => {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "none", server: `http://127.0.0.1:${await closedPort()}` }],
    users: [{ name: "none" }],
    contexts: [{ name: "none", cluster: "none", user: "none" }],
    currentContext: "none",
  });
  const controller = await startController({
    kubeConfig,
    osmNamespace: "osm-system",
    meshName: "osm",
    host: "127.0.0.1",
    port: 0,
    logger: pino({ level: "silent" }),
  });
  try {
    await assert.rejects(controller.whenReady(300), /not ready after 300 ms/);
    assert.equal((await fetch(`${controller.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${controller.url}/readyz`)).status, 503);
    const stale = (await (await fetch(`${controller.url}/v1/pods/stale`)).json()) as {
      ready: boolean;
      items: [];
    };
    assert.deepEqual(stale, {
      apiVersion: "osm-ts.io/controller/v1",
      kind: "StalePodList",
      ready: false,
      items: [],
    });
  } finally {
    const started = Date.now();
    await controller.close();
    assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
  }
});

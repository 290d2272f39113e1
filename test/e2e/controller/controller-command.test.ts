// The embedded API server makes certificates with @peculiar/x509, which needs this polyfill loaded first.
import "reflect-metadata";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { meshConfigCrd } from "../../../src/config/index.ts";
import { startEmbeddedApiServer } from "../../support/apiserver.ts";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;

test("osm controller run serves until SIGTERM against the embedded API server, creating the MeshConfig", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "osmt-ctl-cmd-"));
  const { server, kubeconfig, kc } = await startEmbeddedApiServer(stateDir, "osmt-ctl", { crdDirs: [] });
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await kc.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({
      body: meshConfigCrd() as unknown as V1CustomResourceDefinition,
    });
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "osmt-ctl-system" } } });

    child = spawn(
      osm,
      [
        "controller",
        "run",
        "--kubeconfig",
        kubeconfig,
        "--osm-namespace",
        "osmt-ctl-system",
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const lines = createInterface({ input: child.stdout! });
    const first = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${stderr}`)), 15_000);
      lines.once("line", (line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first)?.[1];
    assert.ok(url, first);

    const deadline = Date.now() + 15_000;
    let ready = 0;
    while (Date.now() < deadline && ready !== 200) {
      ready = (await fetch(`${url}/readyz`)).status;
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(ready, 200, stderr);
    const mc = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: "config.openservicemesh.io",
      version: "v1alpha2",
      namespace: "osmt-ctl-system",
      plural: "meshconfigs",
      name: "osm-mesh-config",
    })) as { spec: { traffic: { enableEgress: boolean } } };
    assert.equal(mc.spec.traffic.enableEgress, true);
    assert.match(await (await fetch(`${url}/metrics`)).text(), /osm_ts_controller_meshed_pods 0/);

    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0, stderr);
    child = undefined;
  } finally {
    if (child?.pid !== undefined && child.exitCode === null) child.kill("SIGKILL");
    await server.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

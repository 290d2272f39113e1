import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { adminGetCommand, adminPath } from "../../../src/guide/proxy-get.ts";

const pod = (command: string[] | undefined): V1Pod => ({
  metadata: { name: "curl-1", namespace: "curl" },
  spec: {
    containers: [
      { name: "curl", command: ["sleep", "365d"] },
      { name: "envoy", command },
    ],
  },
});

test("proxy get runs the sidecar container's own osm binary to query its admin endpoint", () => {
  const sidecar = pod(["/opt/osm/bin/osm", "sidecar", "run", "--controller", "https://x:15128"]);
  assert.deepEqual(adminGetCommand(sidecar, "config_dump"), [
    "/opt/osm/bin/osm",
    "proxy",
    "admin-get",
    "config_dump",
  ]);
});

test("OSM's stats query maps to the sidecar's Prometheus stats; other queries pass as given", () => {
  assert.equal(adminPath("stats"), "stats/prometheus");
  assert.equal(adminPath("/config_dump"), "config_dump");
  assert.equal(adminPath("stats/prometheus"), "stats/prometheus");
});

test("a pod without an osm-ts sidecar command is refused with its name", () => {
  assert.throws(
    () => adminGetCommand(pod(["envoy", "-c", "/etc/envoy.yaml"]), "config_dump"),
    /Pod curl-1 has no/,
  );
  assert.throws(() => adminGetCommand(pod(undefined), "config_dump"), /Pod curl-1 has no/);
});

test("inside the pod, admin-get prints the admin endpoint's body and fails on an error status", async () => {
  const { createServer } = await import("node:http");
  const { PassThrough } = await import("node:stream");
  const { adminGet } = await import("../../../src/guide/proxy-get.ts");
  const server = createServer((req, res) => {
    if (req.url === "/config_dump")
      res.writeHead(200, { "content-type": "application/json" }).end('{"version":"7"}\n');
    else res.writeHead(404).end("ready, config_dump, stats/prometheus\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const out = new PassThrough();
    let text = "";
    out.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    await adminGet("/config_dump", out, port);
    assert.equal(text, '{"version":"7"}\n');
    await assert.rejects(adminGet("clusters", new PassThrough(), port), /HTTP 404: ready, config_dump/);
  } finally {
    server.close();
  }
});

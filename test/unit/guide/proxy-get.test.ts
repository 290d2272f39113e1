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

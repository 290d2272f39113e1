import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { V1Endpoints, V1Service } from "@kubernetes/client-node";
import { apiServiceEnv, renderHostsFile, writePodFiles } from "../../../src/local/node/pod-files.ts";
import { planServiceAddresses } from "../../../src/local/node/service-addresses.ts";

const services = [
  { name: "osm-controller", namespace: "osm-system", clusterIP: "192.0.2.3" },
  { name: "httpbin", namespace: "demo", clusterIP: "192.0.2.4" },
  { name: "headless", namespace: "demo", clusterIP: "None" },
];

describe("the pod's /etc/hosts", () => {
  test("names the pod on its IPs and every Service with a ClusterIP; the pod's own namespace also by short name", () => {
    const text = renderHostsFile(
      { name: "curl-1", namespace: "demo", ips: ["198.51.100.7", "2001:db8:1::7"] },
      services,
    );
    const lines = text.trimEnd().split("\n");
    assert.ok(lines.includes("127.0.0.1\tlocalhost"));
    assert.ok(lines.includes("198.51.100.7\tcurl-1"));
    assert.ok(lines.includes("2001:db8:1::7\tcurl-1"));
    assert.ok(
      lines.includes(
        "192.0.2.3\tosm-controller.osm-system.svc.cluster.local osm-controller.osm-system.svc osm-controller.osm-system",
      ),
    );
    assert.ok(
      lines.includes("192.0.2.4\thttpbin.demo.svc.cluster.local httpbin.demo.svc httpbin.demo httpbin"),
    );
    assert.ok(!text.includes("headless"));
  });
});

describe("the pod's files", () => {
  test("give the service account and the API env unless the pod opts out; hosts always", () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-pod-files-"));
    try {
      const access = { host: "198.51.100.1", port: 6443, caPem: "CA", token: "T" };
      const pod = { metadata: { name: "p", namespace: "osm-system", uid: "u" } };
      const made = writePodFiles(join(dir, "a"), pod, ["198.51.100.9"], services, access);
      assert.deepEqual(
        made.mounts.map((m) => m.target),
        ["/etc/hosts", "/var/run/secrets/kubernetes.io/serviceaccount"],
      );
      const sa = made.mounts[1]?.source ?? "";
      assert.equal(readFileSync(join(sa, "token"), "utf8"), "T");
      assert.equal(readFileSync(join(sa, "ca.crt"), "utf8"), "CA");
      assert.equal(readFileSync(join(sa, "namespace"), "utf8"), "osm-system");
      assert.equal(statSync(join(sa, "token")).mode & 0o777, 0o644);
      assert.deepEqual(made.env, apiServiceEnv(access));
      assert.equal(made.env.KUBERNETES_SERVICE_HOST, "198.51.100.1");
      const optOut = writePodFiles(
        join(dir, "b"),
        { ...pod, spec: { containers: [], automountServiceAccountToken: false } },
        ["198.51.100.9"],
        services,
        access,
      );
      assert.deepEqual(
        optOut.mounts.map((m) => m.target),
        ["/etc/hosts"],
      );
      assert.deepEqual(optOut.env, {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const svc = (name: string, ip: string, ports: { name?: string; port: number }[]): V1Service => ({
  metadata: { name, namespace: "ns" },
  spec: { clusterIP: ip, ports },
});
const eps = (name: string, uids: string[], ports: { name?: string; port: number }[]): V1Endpoints => ({
  metadata: { name, namespace: "ns" },
  subsets: [{ addresses: uids.map((uid) => ({ ip: "x", targetRef: { uid } })), ports }],
});

describe("which pod holds a ClusterIP", () => {
  const local = (uid: string) => uid !== "remote";
  test("the first ready local endpoint, when every port equals its target port", () => {
    const plan = planServiceAddresses(
      [svc("a", "192.0.2.1", [{ name: "http", port: 80 }])],
      [eps("a", ["u2", "u1"], [{ name: "http", port: 80 }])],
      local,
    );
    assert.deepEqual([...plan], [["192.0.2.1", "u1"]]);
  });
  test("keeps the current holder while it stays ready", () => {
    const plan = planServiceAddresses(
      [svc("a", "192.0.2.1", [{ port: 80 }])],
      [eps("a", ["u1", "u2"], [{ port: 80 }])],
      local,
      new Map([["192.0.2.1", "u2"]]),
    );
    assert.equal(plan.get("192.0.2.1"), "u2");
  });
  test("none for a port mapping (needs NAT), a headless Service, or no local ready endpoint", () => {
    const plan = planServiceAddresses(
      [
        svc("mapped", "192.0.2.1", [{ port: 80 }]),
        svc("headless", "None", [{ port: 80 }]),
        svc("remote", "192.0.2.3", [{ port: 80 }]),
        svc("empty", "192.0.2.4", [{ port: 80 }]),
      ],
      [
        eps("mapped", ["u1"], [{ port: 8080 }]),
        eps("headless", ["u1"], [{ port: 80 }]),
        eps("remote", ["remote"], [{ port: 80 }]),
      ],
      local,
    );
    assert.equal(plan.size, 0);
  });
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  apiServiceEnv,
  renderHostsFile,
  renderResolvConf,
  writePodFiles,
} from "../../../src/local/node/pod-files.ts";

describe("the pod's /etc/hosts and /etc/resolv.conf", () => {
  test("hosts: localhost lines and the pod's name on its IPs (Services are in the cluster DNS)", () => {
    const text = renderHostsFile({ name: "curl-1", ips: ["198.51.100.7", "2001:db8:1::7"] });
    const lines = text.trimEnd().split("\n");
    assert.ok(lines.includes("127.0.0.1\tlocalhost"));
    assert.ok(lines.includes("198.51.100.7\tcurl-1"));
    assert.ok(lines.includes("2001:db8:1::7\tcurl-1"));
    assert.equal(lines.filter((l) => !l.startsWith("#")).length, 7);
  });
  test("resolv.conf: the cluster DNS with the kubelet's search path and ndots:5; dnsConfig merged; None and Default", () => {
    const pod = (spec: Partial<V1Pod["spec"]> = {}): V1Pod => ({
      metadata: { name: "p", namespace: "demo" },
      spec: { containers: [], ...spec },
    });
    assert.equal(
      renderResolvConf(pod(), "198.51.100.1"),
      "nameserver 198.51.100.1\nsearch demo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    );
    assert.equal(
      renderResolvConf(
        pod({
          dnsConfig: {
            searches: ["example.test"],
            options: [{ name: "ndots", value: "2" }, { name: "edns0" }],
          },
        }),
        "198.51.100.1",
      ),
      "nameserver 198.51.100.1\nsearch demo.svc.cluster.local svc.cluster.local cluster.local example.test\noptions ndots:2 edns0\n",
    );
    assert.equal(
      renderResolvConf(
        pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["192.0.2.53"] } }),
        "198.51.100.1",
      ),
      "nameserver 192.0.2.53\n",
    );
    assert.equal(renderResolvConf(pod({ dnsPolicy: "Default" }), "198.51.100.1"), undefined);
  });
});

describe("the pod's files", () => {
  test("give the service account and the API env unless the pod opts out; hosts always", () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-pod-files-"));
    try {
      const access = { host: "198.51.100.1", port: 6443, caPem: "CA", token: "T" };
      const pod = { metadata: { name: "p", namespace: "osm-system", uid: "u" } };
      const made = writePodFiles(join(dir, "a"), pod, ["198.51.100.9"], "198.51.100.1", access);
      assert.deepEqual(
        made.mounts.map((m) => m.target),
        ["/etc/hosts", "/etc/resolv.conf", "/var/run/secrets/kubernetes.io/serviceaccount"],
      );
      const sa = made.mounts[2]?.source ?? "";
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
        undefined,
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

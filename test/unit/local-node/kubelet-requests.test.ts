import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { microTime, nodeStatus } from "../../../src/local/node/kubelet/node-status.ts";
import { KubeletRequestError, parseKubeletRequest } from "../../../src/local/node/kubelet/requests.ts";

const parse = (path: string, now?: number) => parseKubeletRequest(new URL(path, "https://node"), now);

describe("kubelet API requests as kube-apiserver sends them", () => {
  test("exec reads the kubelet's query names: input, output, error, tty, command", () => {
    assert.deepEqual(parse("/exec/ns/p/c?command=sh&command=-c&command=id&input=1&output=1&tty=1"), {
      kind: "exec",
      namespace: "ns",
      pod: "p",
      container: "c",
      command: ["sh", "-c", "id"],
      stdin: true,
      stdout: true,
      stderr: false,
      tty: true,
    });
    assert.throws(() => parse("/exec/ns/p/c?output=1"), /at least 1 command/);
    assert.throws(() => parse("/exec/ns/p/c?command=x"), /at least 1 of stdin, stdout, stderr/);
    assert.throws(() => parse("/exec/ns/p/c?command=x&output=yes"), /output: invalid boolean "yes"/);
  });

  test("attach takes no command; logs read follow, previous, tailLines, sinceSeconds or sinceTime, limitBytes", () => {
    assert.equal(parse("/attach/ns/p/c?output=true&error=true")?.kind, "attach");
    const now = Date.parse("2026-01-01T00:01:00Z");
    assert.deepEqual(
      parse("/containerLogs/ns/p/c?follow=true&tailLines=5&sinceTime=2026-01-01T00:00:00Z", now),
      {
        kind: "logs",
        namespace: "ns",
        pod: "p",
        container: "c",
        follow: true,
        previous: false,
        timestamps: false,
        tailLines: 5,
        sinceSeconds: 60,
        limitBytes: undefined,
      },
    );
    for (const [q, msg] of [
      ["tailLines=x", /tailLines: "x" is not an integer >= 0/],
      ["limitBytes=0", /limitBytes: "0" is not an integer >= 1/],
      ["sinceTime=yesterday", /sinceTime: "yesterday" is not RFC 3339/],
      ["stream=Stdout", /stream: "Stdout" is not supported/],
    ] as const) {
      assert.throws(
        () => parse(`/containerLogs/ns/p/c?${q}`),
        (e: unknown) => e instanceof KubeletRequestError && msg.test(e.message),
      );
    }
  });

  test("portForward names the namespace and pod; other paths are not served: the uid forms, too few segments", () => {
    assert.deepEqual(parse("/portForward/ns/p"), { kind: "portForward", namespace: "ns", pod: "p" });
    for (const p of [
      "/exec/ns/p/uid/c?command=x&output=1",
      "/portForward/ns/p/uid",
      "/portForward/ns",
      "/containerLogs/ns/p",
      "/pods",
    ])
      assert.equal(parse(p), null, p);
    assert.deepEqual(parse("/healthz"), { kind: "healthz" });
  });
});

describe("the node's status", () => {
  const facts = {
    nodeName: "osm-local",
    address: "198.51.100.1",
    kubeletPort: 10250,
    kubeletVersion: "v1.36.3",
    cpus: 2,
    memoryBytes: 4 * 1024 * 1024 * 1024,
    maxPods: 110,
    machineID: "m",
    bootID: "b",
    kernelVersion: "6.1.0",
    osImage: "Debian GNU/Linux 12 (bookworm)",
    architecture: "amd64",
  };

  test("Ready, no pressure, InternalIP and Hostname, pods in capacity, the kubelet port, the declared WebSocket feature", () => {
    const s = nodeStatus(facts, new Date("2026-01-01T00:00:10.500Z"), new Date("2026-01-01T00:00:00Z"));
    assert.deepEqual(
      s.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`),
      [
        "MemoryPressure=False/KubeletHasSufficientMemory",
        "DiskPressure=False/KubeletHasNoDiskPressure",
        "PIDPressure=False/KubeletHasSufficientPID",
        "Ready=True/KubeletReady",
      ],
    );
    assert.equal(s.conditions[3]?.lastHeartbeatTime, "2026-01-01T00:00:10Z");
    assert.equal(s.conditions[3]?.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.deepEqual(s.addresses, [
      { type: "InternalIP", address: "198.51.100.1" },
      { type: "Hostname", address: "osm-local" },
    ]);
    assert.deepEqual(s.capacity, { cpu: "2", memory: "4194304Ki", pods: "110" });
    assert.deepEqual(s.daemonEndpoints, { kubeletEndpoint: { Port: 10250 } });
    assert.deepEqual(s.declaredFeatures, ["ExtendWebSocketsToKubelet"]);
    assert.equal(s.nodeInfo.kubeletVersion, "v1.36.3");
  });

  test("a Lease's renewTime has exactly six fractional digits (kube-apiserver's MicroTime)", () => {
    assert.equal(microTime(new Date("2026-01-01T00:00:10.5Z")), "2026-01-01T00:00:10.500000Z");
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { formatProbe, parseProbe } from "../../../src/config/health-probes.ts";
import { rewriteProbes } from "../../../src/injector/probes.ts";
import { parseRunArgs } from "../../../src/sidecar/args.ts";
import { probeTarget } from "../../../src/sidecar/probe-listeners.ts";

test("--probe text round-trips, and anything else is refused naming the flag and value", () => {
  const probe = {
    kind: "readiness",
    container: "web",
    scheme: "http",
    port: 8080,
    path: "/ready?full=1",
  } as const;
  assert.equal(formatProbe(probe), "readiness/web=http:8080/ready?full=1");
  assert.deepEqual(parseProbe(formatProbe(probe)), probe);
  for (const bad of [
    "ready/web=http:8080/",
    "readiness/web=ftp:8080/",
    "readiness/web=http:0/",
    "readiness/web=http:70000/",
    "readiness/Web=http:80/",
    "readiness/web=http:80",
  ]) {
    assert.equal(parseProbe(bad), undefined, bad);
  }
  const parsed = parseRunArgs([
    "--probe",
    "liveness/web=http:8080/healthz",
    "--probe=startup/web=https:8443/",
  ]);
  assert.ok(!parsed.help);
  assert.deepEqual(
    parsed.options.probes.map((p) => formatProbe(p)),
    ["liveness/web=http:8080/healthz", "startup/web=https:8443/"],
  );
  assert.throws(() => parseRunArgs(["--probe", "nonsense"]), /--probe: must be .*, got "nonsense"/);
});

test("a probe request goes to its container's original port and path, the prefix replaced (longest prefix wins)", () => {
  const probes = [
    { kind: "readiness", container: "app", scheme: "http", port: 8080, path: "/ready" },
    { kind: "readiness", container: "app2", scheme: "http", port: 9090, path: "/" },
    { kind: "readiness", container: "tls", scheme: "https", port: 8443, path: "/" },
  ] as const;
  assert.deepEqual(probeTarget(probes, "/osm-readiness-probe/app"), { port: 8080, path: "/ready" });
  assert.deepEqual(probeTarget(probes, "/osm-readiness-probe/app?verbose"), {
    port: 8080,
    path: "/ready?verbose",
  });
  assert.deepEqual(probeTarget(probes, "/osm-readiness-probe/app2"), { port: 9090, path: "/" });
  assert.equal(probeTarget(probes, "/osm-readiness-probe/tls"), undefined);
  assert.equal(probeTarget(probes, "/healthz"), undefined);
});

test("the injector rewrites httpGet probes to the sidecar as OSM does and leaves tcpSocket, exec and unknown named ports", () => {
  const result = rewriteProbes({
    spec: {
      containers: [
        {
          name: "app",
          ports: [{ name: "web", containerPort: 8080 }],
          livenessProbe: { httpGet: { port: "web" } },
          readinessProbe: { httpGet: { port: "nope", path: "/r" } },
          startupProbe: { exec: { command: ["true"] } },
        },
        { name: "db", readinessProbe: { tcpSocket: { port: 5432 } } },
      ],
    },
  });
  assert.deepEqual(result.forwarded, [
    { kind: "liveness", container: "app", scheme: "http", port: 8080, path: "/" },
  ]);
  assert.deepEqual(result.patch, [
    { op: "replace", path: "/spec/containers/0/livenessProbe/httpGet/port", value: 15901 },
    { op: "add", path: "/spec/containers/0/livenessProbe/httpGet/path", value: "/osm-liveness-probe/app" },
  ]);
  assert.equal(result.warnings.length, 1);
  assert.match(
    result.warnings[0]!,
    /^probe-not-rewritten: container app: readinessProbe\.httpGet\.port "nope"/,
  );
});

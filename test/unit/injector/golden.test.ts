/**
 * Golden JSON patches: the exact RFC 6902 operations the injector returns for a table of pods, stored under
 * test/golden/injector/<case>.json. `UPDATE_GOLDEN=1` rewrites them (review the diff). Cases use the iptables
 * backend (OSM's fixed text); the auto backend's nft part is owned by interception's own goldens, so its test
 * compares with renderInitScript instead (inject.test.ts).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import jsonpatch from "fast-json-patch";
import { type InjectionInput, injectPod } from "../../../src/injector/index.ts";
import { meshConfig, namespace, OPTIONS, pod, SEEDS } from "./builders.ts";

const dir = new URL("../../golden/injector/", import.meta.url);

const cases: { name: string; input: Partial<InjectionInput> }[] = [
  { name: "namespace-enabled-plain-pod", input: {} },
  {
    name: "existing-init-containers-and-labels",
    input: {
      pod: pod({
        labels: { app: "curl" },
        annotations: { "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z" },
        initContainers: [{ name: "setup", image: "busybox" }],
      }),
    },
  },
  {
    name: "metrics-enabled-namespace",
    input: {
      namespace: namespace("curl", {
        annotations: {
          "openservicemesh.io/sidecar-injection": "enabled",
          "openservicemesh.io/metrics": "enabled",
        },
      }),
    },
  },
  { name: "windows-node-selector", input: { pod: pod({ nodeSelector: { "kubernetes.io/os": "windows" } }) } },
  {
    name: "pod-annotations-ipv6-and-ports",
    input: {
      pod: pod({
        annotations: {
          "openservicemesh.io/sidecar-injection": "enabled",
          "openservicemesh.io/outbound-ip-range-exclusion-list": "203.0.113.10/32, 2001:db8::/32",
          "openservicemesh.io/outbound-port-exclusion-list": "6379",
          "openservicemesh.io/inbound-port-exclusion-list": "9090,9091",
        },
      }),
      namespace: namespace("curl", { annotations: {} }),
    },
  },
  {
    name: "meshconfig-images-privileged-init-podip",
    input: {
      meshConfig: meshConfig({
        traffic: {
          outboundIPRangeExclusionList: ["203.0.113.10/32"],
          networkInterfaceExclusionList: ["eth1"],
        },
        sidecar: {
          envoyImage: "registry.example/osm-ts/sidecar:1.0.0",
          initContainerImage: "registry.example/osm-ts/init:1.0.0",
          enablePrivilegedInitContainer: true,
          localProxyMode: "PodIP",
        },
      }),
    },
  },
  {
    // OSM's probe rewriting (pkg/injector/health_probes.go): http → sidecar port and /osm-<kind>-probe/<container>,
    // https → the port only; tcpSocket left alone here (OSM would add its osm-healthcheck container).
    name: "http-probes-rewritten",
    input: {
      pod: {
        ...pod(),
        spec: {
          serviceAccountName: "web",
          containers: [
            {
              name: "web",
              image: "example/web",
              ports: [{ name: "http", containerPort: 8080 }],
              livenessProbe: { httpGet: { port: "http", path: "/healthz" } },
              readinessProbe: { httpGet: { port: 8080, path: "/ready", scheme: "HTTP" } },
              startupProbe: { tcpSocket: { port: 8080 } },
            },
            {
              name: "tls",
              image: "example/tls",
              readinessProbe: { httpGet: { port: 8443, path: "/ready", scheme: "HTTPS" } },
            },
          ],
        },
      },
    },
  },
];

for (const c of cases) {
  test(`the injector's patch for ${c.name} matches its golden file and applies cleanly`, () => {
    const input: InjectionInput = {
      pod: pod(),
      namespace: namespace(),
      meshConfig: meshConfig(),
      options: OPTIONS,
      seeds: SEEDS,
      ...c.input,
    };
    const result = injectPod(input);
    assert.equal(result.kind, "inject", JSON.stringify(result));
    assert.ok(result.kind === "inject");
    const text = `${JSON.stringify(result.patch, null, 2)}\n`;
    const file = new URL(`${c.name}.json`, dir);
    if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(file, text);
    assert.equal(text, readFileSync(file, "utf8"));
    const errors = jsonpatch.validate(result.patch as jsonpatch.Operation[], structuredClone(input.pod));
    assert.equal(errors, undefined);
  });
}

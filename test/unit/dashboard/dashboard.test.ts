import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { buildEffectivePolicy, canonicalPolicyText, policyHash } from "../../../src/config/index.ts";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
} from "../../../src/constants.ts";
import { parseDecisionLine } from "../../../src/dashboard/decisions.ts";
import type { LiveFeed } from "../../../src/dashboard/live.ts";
import {
  parseCause,
  parseTrafficText,
  parseWarningHeader,
  trafficPatch,
} from "../../../src/dashboard/meshconfig-edit.ts";
import { isLocalHost, startDashboardServer } from "../../../src/dashboard/server.ts";
import { buildDashboardState, initBackend } from "../../../src/dashboard/state.ts";
import { meshConfig } from "../injector/builders.ts";

const object = (traffic: Record<string, unknown>) => ({
  apiVersion: "config.openservicemesh.io/v1alpha2",
  kind: "MeshConfig",
  metadata: { name: "osm-mesh-config", namespace: "osm-system", uid: "x" },
  spec: { traffic },
});

function pod(
  name: string,
  admittedWith: Record<string, unknown>,
  annotations: Record<string, string> = {},
): V1Pod {
  const policy = buildEffectivePolicy(meshConfig({ traffic: admittedWith }), { podAnnotations: annotations });
  return {
    metadata: {
      name,
      namespace: "curl",
      uid: name,
      annotations: {
        ...annotations,
        [ANNOTATION_INTERCEPTION_POLICY_HASH]: policyHash(policy),
        [ANNOTATION_INTERCEPTION_POLICY]: canonicalPolicyText(policy),
      },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "curl-6d4f", uid: "u", controller: true },
      ],
      labels: { "pod-template-hash": "6d4f" },
    },
    spec: {
      containers: [{ name: "curl" }, { name: "envoy" }],
      initContainers: [
        { name: "osm-init", command: ["osm", "interception", "init", "--backend", "nftables"] },
      ],
    },
    status: { phase: "Running", containerStatuses: [{ name: "envoy", ready: true } as never] },
  };
}

test("state: a pod admitted before the exclusion is STALE with the difference; entries carry their provenance", () => {
  const state = buildDashboardState(
    {
      osmNamespace: "osm-system",
      meshConfig: object({ enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] }),
      pods: [
        pod("curl-6d4f-a", { enableEgress: false }),
        pod(
          "curl-6d4f-b",
          { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
          { [ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST]: "192.0.2.0/24" },
        ),
      ],
      namespaces: [{ metadata: { name: "curl" } }],
      deployments: [
        {
          metadata: { name: "osm-controller" },
          spec: { replicas: 1 } as never,
          status: { readyReplicas: 1 },
        },
        { metadata: { name: "osm-injector" }, spec: { replicas: 1 } as never, status: {} },
      ],
    },
    "2026-01-01T00:00:00.000Z",
  );
  const o = state.overview;
  assert.equal(o.enableEgress, false);
  assert.deepEqual(o.exclusions, [
    { value: "203.0.113.10/32", from: "MeshConfig spec.traffic.outboundIPRangeExclusionList" },
    {
      value: "192.0.2.0/24",
      from: "pod annotation openservicemesh.io/outbound-ip-range-exclusion-list on curl/curl-6d4f-b",
    },
  ]);
  assert.ok(
    o.warnings.some((w) => w.startsWith("egress-disabled-bypassed: ")),
    o.warnings.join("\n"),
  );
  assert.deepEqual(o.controlPlane, [
    { name: "osm-controller", ready: true, text: "1/1 ready" },
    { name: "osm-injector", ready: false, text: "0/1 ready" },
  ]);
  assert.equal(o.meshedPods, 2);
  assert.equal(o.stalePods, 1);
  const [a, b] = state.pods;
  assert.deepEqual(
    { interception: a?.interception, difference: a?.difference, restart: a?.restart, backend: a?.backend },
    {
      interception: "STALE",
      difference: ["+203.0.113.10/32"],
      restart: "kubectl rollout restart deployment curl -n curl",
      backend: "nftables",
    },
  );
  assert.equal(b?.interception, "current");
  assert.equal(b?.logsDecisions, true);
  assert.equal(b?.sidecarReady, true);
});

test("state: an invalid stored MeshConfig is reported, not thrown", () => {
  const state = buildDashboardState(
    {
      osmNamespace: "osm-system",
      meshConfig: object({ outboundIPRangeExclusionList: ["203.0.113.10/33"] }),
      pods: [],
      namespaces: [],
      deployments: [],
    },
    "t",
  );
  assert.match(state.overview.error ?? "", /outboundIPRangeExclusionList\[0\]: "203\.0\.113\.10\/33"/);
});

test("a sidecar writes its access log at any log level, unless started with --access-log off", () => {
  const withSidecar = (...flags: string[]): V1Pod => ({
    ...pod(`curl-${flags.length}`, {}),
    spec: {
      containers: [{ name: "curl" }, { name: "envoy", command: ["osm", "sidecar", "run", ...flags] }],
    },
  });
  const state = buildDashboardState(
    {
      osmNamespace: "osm-system",
      meshConfig: object({}),
      pods: [withSidecar("--log-level", "error"), withSidecar("--log-level", "error", "--access-log", "off")],
      namespaces: [],
      deployments: [],
    },
    "t",
  );
  assert.deepEqual(
    state.pods.map((row) => [row.logLevel, row.logsDecisions]),
    [
      ["error", true],
      ["error", false],
    ],
  );
});

test("initBackend reads osm-init's --backend, or what its inline script can use", () => {
  const withInit = (command: string[]): V1Pod => ({
    spec: { containers: [], initContainers: [{ name: "osm-init", command }] },
  });
  assert.equal(initBackend(withInit(["osm", "interception", "init", "--backend", "auto"])), "auto");
  assert.equal(
    initBackend(withInit(["sh", "-c", "if nft list tables; then nft -f - ; else iptables-restore; fi"])),
    "auto",
  );
  assert.equal(initBackend(withInit(["sh", "-c", "iptables-restore --noflush"])), "iptables");
  assert.equal(initBackend({ spec: { containers: [] } }), "-");
});

test("decisions: an access-log line becomes a decision with what is behind it; other lines are skipped", () => {
  const line = JSON.stringify({
    level: 30,
    time: Date.UTC(2026, 0, 1),
    msg: "connection",
    direction: "outbound",
    src: "198.51.100.5:40000",
    dst: "203.0.113.11:80",
    decision: "refuse",
    reason: "egress-disabled",
    durationMs: 1,
    bytesUp: 0,
    bytesDown: 0,
  });
  assert.deepEqual(parseDecisionLine(line, "curl", "curl-a", 7), {
    seq: 7,
    time: "2026-01-01T00:00:00.000Z",
    namespace: "curl",
    pod: "curl-a",
    direction: "outbound",
    destination: "203.0.113.11:80",
    verdict: "refused",
    reason: "egress-disabled",
    because:
      "egress is disabled (MeshConfig spec.traffic.enableEgress: false) and this is not a mesh destination",
  });
  const mesh = parseDecisionLine(
    JSON.stringify({
      msg: "connection",
      decision: "mesh",
      service: "Service httpbin/httpbin:14001",
      dst: "a",
    }),
    "curl",
    "p",
    1,
  );
  assert.equal(mesh?.verdict, "proxied");
  assert.equal(mesh?.because, "mesh destination Service httpbin/httpbin:14001");
  assert.equal(parseDecisionLine('{"msg":"config applied","version":3}', "curl", "p", 1), undefined);
  assert.equal(parseDecisionLine("osm sidecar starting", "curl", "p", 1), undefined);
  assert.equal(parseDecisionLine("{not json", "curl", "p", 1), undefined);
});

test("editor: the merge patch replaces spec.traffic (removed keys become null)", () => {
  assert.deepEqual(
    trafficPatch(
      { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
      { enableEgress: true },
    ),
    { spec: { traffic: { enableEgress: true, outboundIPRangeExclusionList: null } } },
  );
  assert.deepEqual(parseTrafficText("enableEgress: false\n"), { enableEgress: false });
  assert.deepEqual(parseTrafficText('{"enableEgress": true}'), { enableEgress: true });
  const bad = parseTrafficText("enableEgress: [\n");
  assert.ok("reason" in bad && /not valid YAML/.test(String(bad.reason)), JSON.stringify(bad));
  assert.ok("reason" in parseTrafficText("- a\n"));
});

test("editor: the server's warnings and field causes are read as sent", () => {
  assert.deepEqual(parseWarningHeader('299 - "a, b: c", 299 - "quoted \\"x\\""'), ["a, b: c", 'quoted "x"']);
  assert.deepEqual(parseWarningHeader(undefined), []);
  assert.deepEqual(
    parseCause(
      "spec.traffic.outboundIPRangeExclusionList[0]",
      'Invalid value: "203.0.113.10/33": is not a valid CIDR: prefix length 33 exceeds 32 for IPv4 (hint: IPv4 prefix lengths go from 0 to 32; /32 is a single address)',
    ),
    {
      field: "spec.traffic.outboundIPRangeExclusionList[0]",
      value: '"203.0.113.10/33"',
      reason: "is not a valid CIDR: prefix length 33 exceeds 32 for IPv4",
      hint: "IPv4 prefix lengths go from 0 to 32; /32 is a single address",
    },
  );
  assert.deepEqual(parseCause("spec.x", "Required value"), {
    field: "spec.x",
    value: "",
    reason: "Required value",
  });
});

test("the server answers only to its loopback names", () => {
  assert.equal(isLocalHost("127.0.0.1:50750", 50750), true);
  assert.equal(isLocalHost("localhost:50750", 50750), true);
  assert.equal(isLocalHost("evil.example:50750", 50750), false);
  assert.equal(isLocalHost(undefined, 50750), false);
});

test("server: the page for any path, the state as the first event, a POST that is not JSON refused", async () => {
  const assets = mkdtempSync(join(tmpdir(), "osmt-dash-"));
  writeFileSync(join(assets, "index.html"), "<!doctype html><title>page</title>");
  const state = buildDashboardState(
    { osmNamespace: "osm-system", meshConfig: object({}), pods: [], namespaces: [], deployments: [] },
    "t",
  );
  const feed: LiveFeed = {
    state,
    decisions: [],
    onState: () => {},
    onDecision: () => {},
    start: async () => {},
    stop: async () => {},
  };
  const server = await startDashboardServer({
    kubeConfig: new KubeConfig(),
    osmNamespace: "osm-system",
    feed,
    host: "127.0.0.1",
    port: 0,
    assetsDir: assets,
  });
  try {
    assert.match(await (await fetch(`${server.url}pods`)).text(), /<title>page<\/title>/);
    const form = await fetch(`${server.url}api/meshconfig`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "{}",
    });
    assert.equal(form.status, 415);
    const events = await fetch(`${server.url}api/events`);
    const reader = events.body?.getReader();
    const first = new TextDecoder().decode((await reader?.read())?.value);
    assert.match(first, /^event: state\ndata: \{"overview":/);
    await reader?.cancel();
  } finally {
    await server.close();
    rmSync(assets, { recursive: true, force: true });
  }
});

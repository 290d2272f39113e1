import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import { buildEffectivePolicy, canonicalPolicyText, policyHash } from "../../../src/config/index.ts";
import type { InjectionInput, InjectionResult } from "../../../src/injector/index.ts";
import { injectPod, PREREQUISITE_MESSAGES } from "../../../src/injector/index.ts";
import { buildPlan, renderInitScript, renderIptables } from "../../../src/interception/index.ts";
import { exclusionList } from "../../support/exclusions.ts";
import { meshConfig, namespace, OPTIONS, pod, SEEDS } from "./builders.ts";

function run(overrides: Partial<InjectionInput> = {}): InjectionResult {
  return injectPod({
    pod: pod(),
    namespace: namespace(),
    meshConfig: meshConfig(),
    options: OPTIONS,
    seeds: SEEDS,
    ...overrides,
  });
}

/** Injects and applies the patch to the input pod, as the API server would. */
function injected(overrides: Partial<InjectionInput> = {}): { pod: V1Pod; warnings: readonly string[] } {
  const input = overrides.pod ?? pod();
  const result = run({ ...overrides, pod: input });
  assert.equal(result.kind, "inject", JSON.stringify(result));
  assert.ok(result.kind === "inject");
  const patched = jsonpatch.applyPatch(
    structuredClone(input),
    result.patch as jsonpatch.Operation[],
    true,
    false,
  ).newDocument;
  return { pod: patched, warnings: result.warnings };
}

function container(p: V1Pod, name: string, init = false): V1Container {
  const list = (init ? p.spec?.initContainers : p.spec?.containers) ?? [];
  const found = list.find((c) => c.name === name);
  assert.ok(found, `container ${name} not found`);
  return found;
}

describe("osm-init is built exactly as OSM's getInitContainerSpec (docs/osm-behaviour.md §1.7)", () => {
  test("osm-init runs OSM's iptables script with /bin/sh -c, as root with NET_ADMIN, POD_IP from status.podIP", () => {
    const { pod: p } = injected();
    const init = container(p, "osm-init", true);
    const policy = buildEffectivePolicy(meshConfig(), {
      podAnnotations: {},
      namespaceAnnotations: namespace().metadata?.annotations ?? {},
    });
    assert.deepEqual(init, {
      name: "osm-init",
      image: "osm-ts/init:test",
      command: ["/bin/sh"],
      args: ["-c", renderInitScript(policy, { backend: "iptables" })],
      env: [{ name: "POD_IP", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "status.podIP" } } }],
      imagePullPolicy: "IfNotPresent",
      securityContext: {
        capabilities: { add: ["NET_ADMIN"] },
        privileged: false,
        runAsNonRoot: false,
        runAsUser: 0,
      },
    });
    // OSM's IPv4 script byte for byte after `set -e`, then its IPv6 counterpart whenever the pod has IPv6.
    const script = init.args?.[1] ?? "";
    assert.ok(script.startsWith(`set -e\n${renderIptables(buildPlan(policy))}`), script);
    assert.match(
      script,
      /\nif \[ -e \/proc\/net\/if_inet6 \]; then\nip6tables-restore --noflush <<EOF \|\| \{ echo "osm-init: ip6tables-restore failed/,
    );
    assert.ok(script.endsWith("COMMIT\nEOF\nfi\n"));
  });

  test("osm-init is appended after the pod's existing init containers", () => {
    const { pod: p } = injected({
      pod: pod({
        initContainers: [
          { name: "setup", image: "busybox" },
          { name: "migrate", image: "busybox" },
        ],
      }),
    });
    assert.deepEqual(
      p.spec?.initContainers?.map((c) => c.name),
      ["setup", "migrate", "osm-init"],
    );
  });

  test("privileged follows spec.sidecar.enablePrivilegedInitContainer", () => {
    const { pod: p } = injected({
      meshConfig: meshConfig({ sidecar: { enablePrivilegedInitContainer: true } }),
    });
    assert.equal(container(p, "osm-init", true).securityContext?.privileged, true);
  });

  test("the MeshConfig's initContainerImage wins over the injector's default", () => {
    const { pod: p } = injected({
      meshConfig: meshConfig({ sidecar: { initContainerImage: "mine/init:1" } }),
    });
    assert.equal(container(p, "osm-init", true).image, "mine/init:1");
  });

  test("the auto backend puts interception's run-time-choosing script (nft, else iptables) in osm-init", () => {
    const { pod: p } = injected({ options: { ...OPTIONS, initBackend: "auto" } });
    const script = container(p, "osm-init", true).args?.[1] ?? "";
    const policy = buildEffectivePolicy(meshConfig(), {
      podAnnotations: {},
      namespaceAnnotations: namespace().metadata?.annotations ?? {},
    });
    assert.equal(script, renderInitScript(policy, { backend: "auto" }));
    assert.match(script, /nft -f -/);
    assert.match(script, /iptables-restore --noflush/);
  });

  test("the pod's exclusion annotations and the MeshConfig's lists are merged into the script (IPs pod first)", () => {
    const { pod: p } = injected({
      pod: pod({ annotations: { "openservicemesh.io/outbound-ip-range-exclusion-list": "198.51.100.0/24" } }),
      meshConfig: meshConfig({ traffic: { outboundIPRangeExclusionList: ["203.0.113.10/32"] } }),
    });
    const script = container(p, "osm-init", true).args?.[1] ?? "";
    const pod1 = script.indexOf("-d 198.51.100.0/24 -j RETURN");
    const global1 = script.indexOf("-d 203.0.113.10/32 -j RETURN");
    assert.ok(pod1 > 0 && global1 > pod1, script);
  });

  test("an IPv6 exclusion annotation is programmed with ip6tables instead of crashing osm-init (OSM bug)", () => {
    const { pod: p } = injected({
      pod: pod({ annotations: { "openservicemesh.io/outbound-ip-range-exclusion-list": "2001:db8::/32" } }),
    });
    const script = container(p, "osm-init", true).args?.[1] ?? "";
    assert.match(script, /ip6tables-restore/);
    assert.match(script, /2001:db8::\/32/);
  });
});

describe("Windows pods get the sidecar but no osm-init (docs/osm-behaviour.md §1.7)", () => {
  for (const os of ["windows", "Windows", "WINDOWS"]) {
    test(`nodeSelector kubernetes.io/os=${os} gets no init container and the Windows sidecar image`, () => {
      const { pod: p } = injected({ pod: pod({ nodeSelector: { "kubernetes.io/os": os } }) });
      assert.equal(p.spec?.initContainers, undefined);
      const envoy = container(p, "envoy");
      assert.equal(envoy.image, "osm-ts/sidecar-windows:test");
      assert.deepEqual(envoy.securityContext, { windowsOptions: { runAsUserName: "EnvoyUser" } });
      assert.equal(p.metadata?.annotations?.["osm-ts.io/interception-policy-hash"], undefined);
    });
  }

  test("a linux nodeSelector gets osm-init as usual", () => {
    const { pod: p } = injected({ pod: pod({ nodeSelector: { "kubernetes.io/os": "linux" } }) });
    assert.equal(p.spec?.initContainers?.[0]?.name, "osm-init");
  });
});

describe("prerequisites deny with OSM's verifyPrerequisites messages", () => {
  const noDefaults = {
    ...OPTIONS,
    defaultSidecarImage: undefined,
    defaultSidecarWindowsImage: undefined,
    defaultInitContainerImage: undefined,
  } as unknown as typeof OPTIONS;

  test("no sidecar image anywhere denies with 'MeshConfig sidecar.envoyImage not set'", () => {
    const result = run({
      options: noDefaults,
      meshConfig: meshConfig({ sidecar: { initContainerImage: "i" } }),
    });
    assert.ok(result.kind === "deny");
    assert.equal(result.message, PREREQUISITE_MESSAGES.envoyImage);
    assert.equal(result.message, "MeshConfig sidecar.envoyImage not set");
  });

  test("no init image anywhere denies with 'MeshConfig sidecar.initContainerImage not set'", () => {
    const result = run({ options: noDefaults, meshConfig: meshConfig({ sidecar: { envoyImage: "e" } }) });
    assert.ok(result.kind === "deny");
    assert.equal(result.message, "MeshConfig sidecar.initContainerImage not set");
  });

  test("a Windows pod without a Windows sidecar image denies with 'MeshConfig sidecar.envoyWindowsImage not set'", () => {
    const result = run({
      options: noDefaults,
      pod: pod({ nodeSelector: { "kubernetes.io/os": "windows" } }),
    });
    assert.ok(result.kind === "deny");
    assert.equal(result.message, "MeshConfig sidecar.envoyWindowsImage not set");
  });

  test("MeshConfig images alone are enough", () => {
    const result = run({
      options: noDefaults,
      meshConfig: meshConfig({ sidecar: { envoyImage: "e:1", initContainerImage: "i:1" } }),
    });
    assert.equal(result.kind, "inject");
  });
});

describe("bad exclusion annotations deny with OSM's exclusions.go messages", () => {
  const cases: [string, string, string][] = [
    [
      "openservicemesh.io/outbound-port-exclusion-list",
      "6060, -7070",
      "Invalid port value '-7070' specified for annotation 'openservicemesh.io/outbound-port-exclusion-list'",
    ],
    [
      "openservicemesh.io/inbound-port-exclusion-list",
      "foobar",
      "Invalid port value 'foobar' specified for annotation 'openservicemesh.io/inbound-port-exclusion-list'",
    ],
    [
      "openservicemesh.io/outbound-ip-range-exclusion-list",
      "1.1.1.1/32,",
      "Invalid IP range '' specified for annotation 'openservicemesh.io/outbound-ip-range-exclusion-list'",
    ],
    [
      "openservicemesh.io/outbound-ip-range-inclusion-list",
      "54.91.118.50/33",
      "Invalid IP range '54.91.118.50/33' specified for annotation 'openservicemesh.io/outbound-ip-range-inclusion-list'",
    ],
  ];
  for (const [key, value, message] of cases) {
    test(`${key}=${JSON.stringify(value)} is denied with "${message}" and a hint`, () => {
      const result = run({ pod: pod({ annotations: { [key]: value } }) });
      assert.ok(result.kind === "deny", JSON.stringify(result));
      assert.equal(result.message, message);
      assert.ok((result.hint ?? "").length > 0);
    });
  }
});

describe("the sidecar container, labels and annotations", () => {
  test("the sidecar is named envoy, runs the osm-ts sidecar as uid 1500 with OSM's port names", () => {
    const { pod: p } = injected();
    const envoy = container(p, "envoy");
    assert.equal(envoy.image, "osm-ts/sidecar:test");
    assert.deepEqual(envoy.command?.slice(0, 4), [
      "osm",
      "sidecar",
      "run",
      "--node-flag=--single-threaded-gc",
    ]);
    assert.ok(envoy.command?.includes(OPTIONS.controllerUrl));
    assert.deepEqual(envoy.securityContext, { allowPrivilegeEscalation: false, runAsUser: 1500 });
    assert.deepEqual(envoy.ports, [
      { name: "proxy-admin", containerPort: 15000, protocol: "TCP" },
      { name: "proxy-inbound", containerPort: 15003, protocol: "TCP" },
      { name: "proxy-metrics", containerPort: 15010, protocol: "TCP" },
    ]);
    const env = Object.fromEntries(
      (envoy.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]),
    );
    assert.deepEqual(env, {
      POD_UID: "metadata.uid",
      POD_NAME: "metadata.name",
      POD_NAMESPACE: "metadata.namespace",
      POD_IP: "status.podIP",
      SERVICE_ACCOUNT: "spec.serviceAccountName",
    });
    // The credential is a projected token the node writes, never a value in the PodSpec.
    assert.deepEqual(envoy.volumeMounts, [
      { name: "osm-sidecar-token", mountPath: "/var/run/secrets/osm-ts.io/sidecar", readOnly: true },
    ]);
    assert.deepEqual(p.spec?.volumes, [
      {
        name: "osm-sidecar-token",
        projected: {
          sources: [
            { serviceAccountToken: { audience: "osm-controller", expirationSeconds: 3600, path: "token" } },
          ],
        },
      },
    ]);
    assert.deepEqual(
      p.spec?.containers?.map((c) => c.name),
      ["curl", "envoy"],
    );
  });

  test("a configurable osm command lets a real image run its own binary path", () => {
    const { pod: p } = injected({ options: { ...OPTIONS, osmCommand: ["/usr/local/bin/osm"] } });
    assert.equal(container(p, "envoy").command?.[0], "/usr/local/bin/osm");
  });

  test("the sidecar's log level and resources come from the MeshConfig", () => {
    const { pod: p } = injected({
      meshConfig: meshConfig({
        sidecar: { logLevel: "debug", resources: { limits: { cpu: "500m", memory: 1 } } },
      }),
    });
    const envoy = container(p, "envoy");
    assert.equal(envoy.command?.[envoy.command.indexOf("--log-level") + 1], "debug");
    assert.deepEqual(envoy.resources, { limits: { cpu: "500m", memory: "1" } });
  });

  test("the osm-proxy-uuid label is added next to existing labels (JSON pointer escaped)", () => {
    const { pod: p } = injected({ pod: pod({ labels: { app: "curl" } }) });
    assert.deepEqual(p.metadata?.labels, { app: "curl", "osm-proxy-uuid": SEEDS.proxyUuid });
  });

  test("the pod records the hash and canonical text of its interception policy", () => {
    const annotations = { "openservicemesh.io/outbound-port-exclusion-list": "6379" };
    const mc = meshConfig({ traffic: { outboundIPRangeExclusionList: ["203.0.113.10/32"] } });
    const { pod: p } = injected({ pod: pod({ annotations }), meshConfig: mc });
    const policy = buildEffectivePolicy(mc, {
      podAnnotations: annotations,
      namespaceAnnotations: namespace().metadata?.annotations ?? {},
    });
    const a = p.metadata?.annotations ?? {};
    assert.equal(a["osm-ts.io/interception-policy-hash"], policyHash(policy));
    assert.equal(a["osm-ts.io/interception-policy"], canonicalPolicyText(policy));
    assert.match(a["osm-ts.io/interception-policy"] ?? "", /203\.0\.113\.10\/32/);
    assert.equal(a["openservicemesh.io/outbound-port-exclusion-list"], "6379");
  });

  for (const value of ["enabled", "yes", "TRUE"]) {
    test(`a namespace with openservicemesh.io/metrics=${value} gets OSM's Prometheus annotations on the pod`, () => {
      const ns = namespace("curl", {
        annotations: {
          "openservicemesh.io/sidecar-injection": "enabled",
          "openservicemesh.io/metrics": value,
        },
      });
      const { pod: p } = injected({ namespace: ns });
      const a = p.metadata?.annotations ?? {};
      assert.equal(a["prometheus.io/scrape"], "true");
      assert.equal(a["prometheus.io/port"], "15010");
      assert.equal(a["prometheus.io/path"], "/stats/prometheus");
    });
  }

  test("a policy too large for the pod (100,000 exclusions) is fetched by hash: small pod, no argv script", () => {
    // 100,000 distinct, non-adjacent /32s (every other address from 10.0.0.0): nothing aggregates.
    const list = exclusionList(100_000);
    const mc = meshConfig({ traffic: { outboundIPRangeExclusionList: list } });
    const result = run({ meshConfig: mc });
    assert.ok(result.kind === "inject");
    assert.ok(JSON.stringify(result.patch).length < 8 * 1024, "the patch stays small");
    const { pod: p } = injected({ meshConfig: mc });
    const init = container(p, "osm-init", true);
    const hash = policyHash(
      buildEffectivePolicy(mc, { namespaceAnnotations: namespace().metadata?.annotations ?? {} }),
    );
    assert.deepEqual(init.command, [...OPTIONS.osmCommand, "interception", "init"]);
    assert.deepEqual(init.args, [
      "--controller",
      OPTIONS.controllerUrl,
      "--policy-hash",
      hash,
      "--backend",
      OPTIONS.initBackend,
    ]);
    assert.deepEqual(init.securityContext?.capabilities, { add: ["NET_ADMIN"] });
    const a = p.metadata?.annotations ?? {};
    assert.equal(a["osm-ts.io/interception-policy-hash"], hash);
    assert.equal(a["osm-ts.io/interception-policy"], undefined);
    assert.equal(a["osm-ts.io/interception-policy-source"], "MeshConfig osm-system/osm-mesh-config");
  });

  test("a namespace without the metrics annotation gets no Prometheus annotations", () => {
    const { pod: p } = injected();
    assert.equal(p.metadata?.annotations?.["prometheus.io/scrape"], undefined);
  });

  test("an unrecognised metrics value adds nothing and says so in a warning", () => {
    const ns = namespace("curl", {
      annotations: {
        "openservicemesh.io/sidecar-injection": "enabled",
        "openservicemesh.io/metrics": "sure",
      },
    });
    const { pod: p, warnings } = injected({ namespace: ns });
    assert.equal(p.metadata?.annotations?.["prometheus.io/scrape"], undefined);
    assert.ok(warnings.some((w) => w.includes("openservicemesh.io/metrics")));
  });

  test("policy footguns come back as warnings (excluding everything)", () => {
    const { warnings } = injected({
      meshConfig: meshConfig({ traffic: { outboundIPRangeExclusionList: ["0.0.0.0/0"] } }),
    });
    assert.ok(
      warnings.some((w) => w.startsWith("exclude-everything:")),
      warnings.join("\n"),
    );
  });

  for (const [level, pinoLevel] of [
    ["warning", "warn"],
    ["critical", "fatal"],
    ["off", "silent"],
    ["trace", "trace"],
  ]) {
    test(`MeshConfig logLevel ${level} runs the sidecar with pino level ${pinoLevel}`, () => {
      const { pod: p } = injected({ meshConfig: meshConfig({ sidecar: { logLevel: level } }) });
      const command = container(p, "envoy").command ?? [];
      assert.equal(command[command.indexOf("--log-level") + 1], pinoLevel);
    });
  }

  test("a pod that already has a container named envoy is denied with the reason", () => {
    const p = pod();
    p.spec?.containers.push({ name: "envoy", image: "envoyproxy/envoy" });
    const result = run({ pod: p });
    assert.ok(result.kind === "deny");
    assert.match(result.message, /already has a container named "envoy"/);
  });

  test("a pod that already has a volume named osm-sidecar-token is denied with the reason", () => {
    const p = pod();
    p.spec = {
      ...p.spec,
      containers: p.spec?.containers ?? [],
      volumes: [{ name: "osm-sidecar-token", emptyDir: {} }],
    };
    const result = run({ pod: p });
    assert.ok(result.kind === "deny");
    assert.match(result.message, /already has a volume named "osm-sidecar-token"/);
    assert.match(result.hint ?? "", /rename the volume/);
  });
});

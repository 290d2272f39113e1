import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { MeshError } from "../../../src/errors.ts";
import { renderDeployFiles } from "../../../src/kube/deploy-files.ts";
import { crdManifests } from "../../../src/kube/install.ts";
import { applySetValues, defaultInstallValues, splitSetArgument } from "../../../src/kube/install-values.ts";
import {
  buildInstallManifests,
  buildNodeAgentManifests,
  buildPresetMeshConfig,
  type Manifest,
  type PolicyRule,
  toApiObject,
} from "../../../src/kube/manifests.ts";
import { buildMutatingWebhookConfiguration } from "../../../src/kube/webhook-configs.ts";

const root = new URL("../../../", import.meta.url);
const version = (JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string })
  .version;
const defaults = defaultInstallValues(version);

function key(m: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${m.kind}/${m.metadata.namespace ?? ""}/${m.metadata.name}`;
}

describe("deploy/ is the kustomize base of the same manifests osm install applies", () => {
  test("every generated file in deploy/ is current (node scripts/generate-deploy.ts)", () => {
    for (const [name, text] of renderDeployFiles(version)) {
      assert.equal(readFileSync(new URL(`deploy/${name}`, root), "utf8"), text, `deploy/${name} is stale`);
    }
  });

  test("kubectl kustomize deploy/ renders the CRDs plus exactly the objects of osm install", () => {
    const out = execFileSync("kubectl", ["kustomize", new URL("deploy/", root).pathname], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const rendered = parseAllDocuments(out).map((d) => d.toJS() as Manifest);
    const expected = buildInstallManifests(defaults).map(toApiObject);
    const byKey = new Map(rendered.map((m) => [key(m), m]));
    const crds = crdManifests();
    for (const crd of crds) assert.ok(byKey.has(key(crd)), key(crd));
    assert.equal(rendered.length, expected.length + crds.length);
    for (const m of expected) assert.deepEqual(byKey.get(key(m)), JSON.parse(JSON.stringify(m)), key(m));
  });

  test("kubectl kustomize deploy/node-agent/ renders exactly what osm.nodeAgent.enabled=true adds", () => {
    const out = execFileSync("kubectl", ["kustomize", new URL("deploy/node-agent/", root).pathname], {
      encoding: "utf8",
      timeout: 60_000,
    });
    const rendered = parseAllDocuments(out).map((d) => d.toJS() as Manifest);
    const base = new Set(buildInstallManifests(defaults).map(key));
    const added = buildInstallManifests(applySetValues(defaults, ["osm.nodeAgent.enabled=true"]))
      .filter((m) => !base.has(key(m)))
      .map(toApiObject);
    assert.deepEqual(added.map(key).sort(), rendered.map(key).sort());
    const byKey = new Map(rendered.map((m) => [key(m), m]));
    for (const m of added) assert.deepEqual(byKey.get(key(m)), JSON.parse(JSON.stringify(m)), key(m));
  });
});

describe("the osm-node DaemonSet", () => {
  const objects = buildNodeAgentManifests(defaults);
  const daemonSet = objects.find((m) => m.kind === "DaemonSet") as Manifest & {
    spec: { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
  };
  const pod = daemonSet.spec.template.spec;
  const container = pod.containers[0]!;

  test("not installed by default (the embedded engine's node agent does its work)", () => {
    assert.ok(!buildInstallManifests(defaults).some((m) => m.kind === "DaemonSet"));
  });

  test("hostPID, no hostNetwork, root with NET_ADMIN, NET_RAW, SYS_ADMIN and SYS_PTRACE only, not privileged", () => {
    assert.equal(pod["hostPID"], true);
    assert.equal(pod["hostNetwork"], undefined);
    assert.deepEqual(container["securityContext"], {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  test("its node from the downward API; the image is osm-node from the registry, or osm.nodeAgentImage", () => {
    assert.deepEqual((container["command"] as string[]).slice(0, 4), [
      "osm",
      "node-agent",
      "--node",
      "$(NODE_NAME)",
    ]);
    assert.deepEqual(container["env"], [
      { name: "NODE_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "spec.nodeName" } } },
    ]);
    assert.equal(container["image"], `openservicemesh-ts/osm-node:v${version}`);
    const custom = buildNodeAgentManifests(applySetValues(defaults, ["osm.nodeAgentImage=reg.example/n:1"]));
    assert.match(JSON.stringify(custom), /"image":"reg\.example\/n:1"/);
  });

  test("RBAC: pods list/watch, pods/status patch (never pods), namespaces, events create; MeshConfigs in its namespace only", () => {
    const rules = (kind: string) =>
      (objects.find((m) => m.kind === kind)!["rules"] as PolicyRule[]).map((r) => [
        r.apiGroups.join(","),
        r.resources.join(","),
        r.verbs.join(","),
      ]);
    assert.deepEqual(rules("ClusterRole"), [
      ["", "pods", "list,watch"],
      ["", "pods/status", "patch"],
      ["", "namespaces", "list,watch"],
      ["", "events", "create"],
    ]);
    assert.deepEqual(rules("Role"), [["config.openservicemesh.io", "meshconfigs", "list,watch"]]);
    assert.equal(objects.find((m) => m.kind === "Role")?.metadata.namespace, "osm-system");
  });
});

describe("install manifests", () => {
  const manifests = buildInstallManifests(defaults);

  test("the controller Deployment carries OSM's labels so osm namespace add finds the mesh", () => {
    const d = manifests.find((m) => m.kind === "Deployment" && m.metadata.name === "osm-controller");
    assert.equal(d?.metadata.labels?.["app"], "osm-controller");
    assert.equal(d?.metadata.labels?.["meshName"], "osm");
  });

  test("--mesh-name and --osm-namespace reach labels, RBAC subjects, webhook names and selectors", () => {
    const v = { ...structuredClone(defaults), meshName: "blue", osmNamespace: "blue-system" };
    const all = buildInstallManifests(v);
    const text = JSON.stringify(all);
    assert.ok(!text.includes("osm-system"), "no default namespace left");
    assert.ok(
      all.some((m) => m.kind === "MutatingWebhookConfiguration" && m.metadata.name === "osm-webhook-blue"),
    );
    assert.ok(
      all.some(
        (m) => m.kind === "ValidatingWebhookConfiguration" && m.metadata.name === "osm-validator-mesh-blue",
      ),
    );
  });

  test("the injector webhook is registered exactly as OSM registers it (docs/osm-behaviour.md §4)", () => {
    const config = buildMutatingWebhookConfiguration({ meshName: "osm", osmNamespace: "osm-system" });
    const [hook] = config["webhooks"] as Record<string, unknown>[];
    assert.deepEqual(hook, {
      name: "osm-inject.k8s.io",
      clientConfig: {
        service: { name: "osm-injector", namespace: "osm-system", path: "/mutate-pod-creation", port: 9090 },
      },
      failurePolicy: "Fail",
      matchPolicy: "Exact",
      namespaceSelector: {
        matchLabels: { "openservicemesh.io/monitored-by": "osm" },
        matchExpressions: [
          { key: "openservicemesh.io/ignore", operator: "DoesNotExist" },
          { key: "name", operator: "NotIn", values: ["osm-system"] },
          { key: "control-plane", operator: "DoesNotExist" },
        ],
      },
      rules: [
        { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "*" },
      ],
      sideEffects: "NoneOnDryRun",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 10,
    });
  });

  test("RBAC is least privilege: every rule says why, no wildcards, no secrets, webhook updates limited by name", () => {
    const rules = manifests
      .filter((m) => m.kind === "ClusterRole" || m.kind === "Role")
      .flatMap((m) => m["rules"] as PolicyRule[]);
    assert.ok(rules.length >= 6);
    for (const r of rules) {
      assert.ok(r.why.length > 20, `rule ${JSON.stringify(r)} has a reason`);
      assert.ok(![...r.verbs, ...r.resources, ...r.apiGroups].includes("*"));
      assert.ok(!r.resources.includes("secrets"));
      assert.ok(!r.verbs.includes("delete"));
      if (r.verbs.includes("update"))
        assert.ok(r.resourceNames && r.resourceNames.length === 1, JSON.stringify(r));
    }
    for (const m of manifests) assert.ok(!JSON.stringify(toApiObject(m)).includes('"why"'));
  });

  test("the preset ConfigMap holds the preset MeshConfig spec; --set values land in it", () => {
    const v = applySetValues(defaults, [
      "osm.enableEgress=false",
      "osm.outboundIPRangeExclusionList={203.0.113.10/32,2001:db8::/32}",
      "osm.outboundPortExclusionList={6379}",
    ]);
    const cm = buildInstallManifests(v).find((m) => m.kind === "ConfigMap");
    assert.ok(cm);
    const spec = JSON.parse((cm["data"] as Record<string, string>)["preset-mesh-config.json"] ?? "{}");
    assert.equal(spec.traffic.enableEgress, false);
    assert.deepEqual(spec.traffic.outboundIPRangeExclusionList, ["203.0.113.10/32", "2001:db8::/32"]);
    assert.deepEqual(spec.traffic.outboundPortExclusionList, [6379]);
    assert.deepEqual(buildPresetMeshConfig(v)["spec"], spec);
  });

  test("--set osm.liveInterceptionUpdates=true annotates the MeshConfig (absent by default); a non-bool is refused", () => {
    const on = buildPresetMeshConfig(applySetValues(defaults, ["osm.liveInterceptionUpdates=true"]));
    assert.deepEqual((on["metadata"] as { annotations?: unknown }).annotations, {
      "osm-ts.io/live-interception-updates": "true",
    });
    const off = buildPresetMeshConfig(defaults);
    assert.equal((off["metadata"] as { annotations?: unknown }).annotations, undefined);
    assert.throws(
      () => applySetValues(defaults, ["osm.liveInterceptionUpdates=yes"]),
      /--set osm\.liveInterceptionUpdates=yes/,
    );
  });

  test("an invalid --set value for the MeshConfig fails with the field and value", () => {
    const v = applySetValues(defaults, ["osm.outboundIPRangeExclusionList={54.91.118.50/33}"]);
    assert.throws(
      () => buildPresetMeshConfig(v),
      (e: Error) => /spec\.traffic\.outboundIPRangeExclusionList\[0\]: "54\.91\.118\.50\/33"/.test(e.message),
    );
  });
});

describe("--set parsing (Helm syntax, OSM value names)", () => {
  test("commas split pairs except inside braces", () => {
    assert.deepEqual(splitSetArgument("osm.enableEgress=false,osm.outboundIPRangeExclusionList={a,b}"), [
      "osm.enableEgress=false",
      "osm.outboundIPRangeExclusionList={a,b}",
    ]);
  });

  test("images, pull policy, command and controller URL are settable for a real cluster", () => {
    const v = applySetValues(defaults, [
      "osm.image.registry=registry.example/osm-ts",
      "osm.image.tag=v9",
      "osm.image.pullPolicy=Always",
      "osm.osmCommand={/usr/local/bin/osm}",
      "osm.controllerUrl=http://127.0.0.1:15128",
      "osm.interceptionBackend=iptables",
      "osm.kubeconfig=/root/.kube/config",
    ]);
    const injector = buildInstallManifests(v).find(
      (m) => m.kind === "Deployment" && m.metadata.name === "osm-injector",
    );
    const text = JSON.stringify(injector);
    assert.match(text, /registry\.example\/osm-ts\/osm-controller:v9/);
    assert.match(text, /"--sidecar-image","registry\.example\/osm-ts\/osm-sidecar:v9"/);
    assert.match(text, /"command":\["\/usr\/local\/bin\/osm","injector","run"/);
    assert.match(text, /"--controller-url","http:\/\/127\.0\.0\.1:15128"/);
    assert.match(text, /"--interception-backend","iptables"/);
    assert.match(text, /"--kubeconfig","\/root\/.kube\/config"/);
    const controller = buildInstallManifests(v).find(
      (m) => m.kind === "Deployment" && m.metadata.name === "osm-controller",
    );
    assert.match(JSON.stringify(controller), /"--kubeconfig","\/root\/.kube\/config"/);
  });

  const bad: [string, RegExp][] = [
    ["osm.nope=1", /--set osm\.nope: unknown key/],
    ["osm.enableEgress=maybe", /--set osm\.enableEgress=maybe: is not true or false/],
    ["osm.outboundPortExclusionList={80,http}", /"http" is not an integer/],
    ["osm.image.pullPolicy=Sometimes", /is not one of Always, IfNotPresent, Never/],
    ["justakey", /is not key=value/],
  ];
  for (const [arg, message] of bad) {
    test(`--set ${arg} is refused naming the key and the value`, () => {
      assert.throws(
        () => applySetValues(defaults, [arg]),
        (e: unknown) => e instanceof MeshError && message.test(e.message),
      );
    });
  }
});

describe("Dockerfiles", () => {
  for (const name of ["controller", "sidecar", "init", "node"]) {
    test(`deploy/docker/${name}.Dockerfile copies only paths that exist in the repository`, () => {
      const text = readFileSync(new URL(`deploy/docker/${name}.Dockerfile`, root), "utf8");
      assert.match(text, /^FROM /m);
      for (const line of text.split("\n")) {
        const m = /^COPY (?!--from)(.+) \S+$/.exec(line);
        if (!m) continue;
        for (const src of (m[1] ?? "").split(" ")) {
          assert.ok(existsSync(new URL(src, root)), `${name}.Dockerfile copies ${src}, which does not exist`);
        }
      }
    });
  }

  test("the init image has a shell, iptables, ip6tables and nft (the script picks the backend at run time)", () => {
    const text = readFileSync(new URL("deploy/docker/init.Dockerfile", root), "utf8");
    assert.match(text, /apk add --no-cache iptables ip6tables nftables/);
  });
});

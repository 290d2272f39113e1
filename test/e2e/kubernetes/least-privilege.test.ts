/**
 * Least privilege, proven on the real kube-apiserver with RBAC: the service accounts `osm install` creates can
 * do what their rules say and nothing else (`kubectl auth can-i --as=…`), and each component, run with its own
 * service-account token, starts with its rules and stops with one clear error naming the verb and resource
 * (no stack trace, no retry loop) when any single permission is taken away. The table is printed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { defaultInstallValues } from "../../../src/kube/install-values.ts";
import { rbacRules } from "../../../src/kube/manifests.ts";
import { describePermission, type Permission, permissionsOf } from "../../../src/kube/permissions.ts";
import { type RealControlPlane, startRealControlPlane } from "../../support/kubernetes.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const rootSkip = process.getuid?.() === 0 ? false : "needs root (the control plane's state and ports)";
const NS = "osm-system";
const rules = rbacRules(defaultInstallValues("test"));

interface Component {
  readonly name: "osm-controller" | "osm-injector";
  readonly argv: readonly string[];
  readonly cluster: Permission[];
  readonly namespaced: Permission[];
}

const COMPONENTS: readonly Component[] = [
  {
    name: "osm-controller",
    argv: ["controller", "run", "--listen", "127.0.0.1:0"],
    cluster: permissionsOf(rules.controllerCluster),
    namespaced: permissionsOf(rules.controllerNamespaced, NS),
  },
  {
    name: "osm-injector",
    argv: ["injector", "run", "--listen", "127.0.0.1:0"],
    cluster: permissionsOf(rules.injectorCluster),
    namespaced: permissionsOf(rules.injectorNamespaced, NS),
  },
];

/** What neither service account may do (`kubectl auth can-i` arguments). */
const NEVER: readonly string[][] = [
  ["create", "pods", "-n", "curl"],
  ["delete", "pods", "-n", "curl"],
  ["get", "secrets", "-n", "kube-system"],
  ["list", "secrets", "-n", NS],
  ["create", "clusterrolebindings"],
  ["update", "mutatingwebhookconfigurations/some-other-webhook"],
  ["delete", "meshconfigs.config.openservicemesh.io", "-n", NS],
  ["create", "serviceaccounts/token", "-n", NS],
  // The controller verifies tokens (create tokenreviews, in its rules above) but, unlike
  // system:auth-delegator, is given no SubjectAccessReview.
  ["create", "subjectaccessreviews.authorization.k8s.io"],
];

function canIArgs(p: Permission): string[] {
  const resource = `${p.resource}${p.group ? `.${p.group}` : ""}${p.name ? `/${p.name}` : ""}`;
  return [p.verb, resource, ...(p.namespace ? ["-n", p.namespace] : [])];
}

/** Objects as one multi-document YAML stream, as `kubectl apply -f -` reads it. */
function toYaml(list: readonly unknown[]): string {
  return list.map((d) => stringify(d)).join("---\n");
}

/** A Role/ClusterRole granting `grants`, one rule each (so any single one can be left out). */
function roleOf(kind: "ClusterRole" | "Role", name: string, grants: readonly Permission[]) {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind,
    metadata: { name, ...(kind === "Role" ? { namespace: NS } : {}) },
    rules: grants.map((p) => ({
      apiGroups: [p.group],
      resources: [p.resource],
      verbs: [p.verb],
      ...(p.name ? { resourceNames: [p.name] } : {}),
    })),
  };
}

describe("least privilege on the real kube-apiserver", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let real: RealControlPlane;
  const table: string[] = ["| component | taken away | result |", "| --- | --- | --- |"];
  const kubectl = (args: readonly string[], input?: string) =>
    run("kubectl", args, { env: real.env, ...(input ? { input } : {}) });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-lp-"));
    real = await startRealControlPlane(dir, "osmt-lp");
    // What `osm install` creates, but the workloads: these run here as processes with their own tokens.
    const manifests = (await run(OSM, ["install", "--dry-run"])).stdout;
    const docs = parseAllDocuments(manifests)
      .map((d) => d.toJS() as { kind: string })
      .filter(
        (d) => d && !["Deployment", "Service"].includes(d.kind) && !d.kind.endsWith("WebhookConfiguration"),
      );
    const crd = docs.filter((d) => d.kind === "CustomResourceDefinition");
    const rest = docs.filter((d) => d.kind !== "CustomResourceDefinition");
    assert.equal((await kubectl(["apply", "-f", "-"], toYaml(crd))).code, 0);
    await kubectl(["wait", "--for=condition=Established", "crd/meshconfigs.config.openservicemesh.io"]);
    const applied = await kubectl(["apply", "-f", "-"], toYaml(rest));
    assert.equal(applied.code, 0, applied.stderr);
    for (const c of COMPONENTS) {
      const token = await kubectl(["create", "token", c.name, "-n", NS, "--duration=1h"]);
      assert.equal(token.code, 0, token.stderr);
      const ca = join(dir, "ca.crt");
      writeFileSync(ca, real.plane.pki.caPem);
      const kubeconfig = join(dir, `${c.name}.kubeconfig`);
      const env = { ...real.env, KUBECONFIG: kubeconfig };
      for (const args of [
        ["config", "set-cluster", "c", `--server=${real.plane.apiUrl}`, `--certificate-authority=${ca}`],
        ["config", "set-credentials", "sa", `--token=${token.stdout.trim()}`],
        ["config", "set-context", "c", "--cluster=c", "--user=sa"],
        ["config", "use-context", "c"],
      ]) {
        assert.equal((await run("kubectl", args, { env })).code, 0);
      }
    }
  });

  after(async () => {
    await real?.plane.stop();
    process.stdout.write(`\n${table.join("\n")}\n`);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the component with its own token until it says it listens (then stops it) or exits. */
  async function runComponent(
    c: Component,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return run(OSM, [...c.argv, "--kubeconfig", join(dir, `${c.name}.kubeconfig`)], {
      timeoutMs: 8000,
      env: { ...process.env, HOME: dir },
    });
  }

  for (const c of COMPONENTS) {
    test(`${c.name}: kubectl auth can-i says yes to its rules and no to the rest`, async () => {
      const as = `--as=system:serviceaccount:${NS}:${c.name}`;
      for (const p of [...c.cluster, ...c.namespaced]) {
        const r = await kubectl(["auth", "can-i", ...canIArgs(p), as]);
        assert.equal(r.stdout.trim(), "yes", `${c.name} may ${canIArgs(p).join(" ")}`);
      }
      for (const args of NEVER) {
        const r = await kubectl(["auth", "can-i", ...args, as]);
        assert.equal(r.stdout.trim(), "no", `${c.name} must not ${args.join(" ")}`);
      }
    });

    test(`${c.name}: starts with its own token and the installed rules`, async () => {
      const r = await runComponent(c);
      assert.match(r.stdout, new RegExp(`${c.name} listening on`), r.stderr);
      table.push(`| ${c.name} | nothing | starts |`);
    });

    test(`${c.name}: without any one permission it stops with an error naming the verb and resource`, async () => {
      const all = [...c.cluster, ...c.namespaced];
      for (const gone of all) {
        const keep = (list: Permission[]) => list.filter((p) => p !== gone);
        const roles = [
          roleOf("ClusterRole", `${c.name}-osm`, keep(c.cluster)),
          roleOf("Role", `${c.name}-osm`, keep(c.namespaced)),
        ];
        const applied = await kubectl(["apply", "-f", "-"], toYaml(roles));
        assert.equal(applied.code, 0, applied.stderr);
        const r = await runComponent(c);
        assert.equal(r.code, 1, `${c.name} without "${describePermission(gone)}" must exit 1: ${r.stdout}`);
        assert.ok(r.stderr.includes(describePermission(gone)), r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
        table.push(
          `| ${c.name} | ${gone.verb} ${gone.resource}${gone.name ? `/${gone.name}` : ""} | exit 1: ${describePermission(gone)} |`,
        );
      }
      // Back to the installed rules.
      const restored = await kubectl(
        ["apply", "-f", "-"],
        toYaml([
          roleOf("ClusterRole", `${c.name}-osm`, c.cluster),
          roleOf("Role", `${c.name}-osm`, c.namespaced),
        ]),
      );
      assert.equal(restored.code, 0, restored.stderr);
    });
  }
});

import { createRequire } from "node:module";
import { ApisApi, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Command } from "commander";
import { DEFAULT_MESH_NAME, DEFAULT_OSM_NAMESPACE } from "../../constants.ts";
import { apiErrorMessage, loadKubeConfig } from "../../edge/kube-client.ts";
import { ErrorCode, isMeshError, MeshError } from "../../errors.ts";
import { discoverGroupVersions } from "../../kube/apply.ts";
import { installMesh, renderInstallYaml, uninstallMesh } from "../../kube/install.ts";
import { applySetValues, defaultInstallValues, type InstallValues } from "../../kube/install-values.ts";
import { parseGoDuration, waitForControlPlane } from "../../kube/install-wait.ts";

const packageJson = createRequire(import.meta.url)("../../../package.json") as { version: string };

interface KubeFlags {
  kubeconfig?: string;
  context?: string;
}

interface InstallFlags extends KubeFlags {
  timeout: string;
  wait: boolean;
  meshName: string;
  osmNamespace: string;
  set: string[];
  dryRun: boolean;
}

interface UninstallFlags extends KubeFlags {
  meshName: string;
  osmNamespace: string;
  deleteNamespace: boolean;
  deleteClusterWideResources: boolean;
  force: boolean;
}

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function values(flags: { meshName: string; osmNamespace: string; set?: string[] }): InstallValues {
  const base = defaultInstallValues(packageJson.version);
  base.meshName = flags.meshName;
  base.osmNamespace = flags.osmNamespace;
  return applySetValues(base, flags.set ?? []);
}

/** API failures become MeshErrors carrying the server's own message (as kubectl prints it). */
async function withApiErrors(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (isMeshError(error)) throw error;
    throw new MeshError(ErrorCode.Unavailable, apiErrorMessage(error), { cause: error });
  }
}

/** Registers `osm install` and `osm uninstall mesh` (OSM's cmd/cli/install.go, uninstall_mesh.go). */
export function registerInstall(program: Command): void {
  program
    .command("install")
    .description("install the osm-ts control plane (CRD, RBAC, controller, injector, webhooks, MeshConfig)")
    .option("--mesh-name <name>", "name of the mesh", DEFAULT_MESH_NAME)
    .option("--osm-namespace <ns>", "namespace of the control plane", DEFAULT_OSM_NAMESPACE)
    .option(
      "--set <key=value>",
      "override a value, e.g. osm.enableEgress=false or osm.outboundIPRangeExclusionList={203.0.113.10/32} " +
        "(repeatable); osm.liveInterceptionUpdates=true makes exclusion changes reach running pods without a " +
        'restart (annotation osm-ts.io/live-interception-updates: "true" on the MeshConfig); on a cluster ' +
        "osm.nodeAgent.enabled=true adds the osm-node DaemonSet that applies them (osm.nodeAgentImage=<ref>)",
      collect,
      [],
    )
    .option("--dry-run", "print the manifests instead of applying them", false)
    .option(
      "--timeout <duration>",
      "how long to wait for the controller and injector to be ready and the webhooks to answer",
      "5m0s",
    )
    .option(
      "--no-wait",
      "return once the objects are applied, without waiting for the control plane to be ready (e.g. a cluster with no nodes yet)",
    )
    .option("--kubeconfig <path>", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "kubeconfig context to use (default: the current context)")
    .action(async (flags: InstallFlags) => {
      const timeoutMs = parseGoDuration(flags.timeout);
      if (timeoutMs === undefined) {
        throw new MeshError(ErrorCode.InvalidArgument, `--timeout: "${flags.timeout}" is not a duration`, {
          hint: "write it as Go does, e.g. 5m0s, 90s or 1m30s",
        });
      }
      const v = values(flags);
      if (flags.dryRun) {
        process.stdout.write(renderInstallYaml(v, packageJson.version));
        return;
      }
      const kc = loadKubeConfig(flags);
      const client = KubernetesObjectApi.makeApiClient(kc);
      await withApiErrors(async () => {
        const served = await discoverGroupVersions(kc.makeApiClient(ApisApi));
        await installMesh({
          client,
          values: v,
          out,
          served,
          waitReady: !flags.wait
            ? undefined
            : () =>
                waitForControlPlane({
                  kc,
                  osmNamespace: v.osmNamespace,
                  deployments: ["osm-controller", "osm-injector"],
                  timeoutMs,
                  out,
                }),
        });
      });
    });

  const uninstall = program.command("uninstall").description("uninstall osm-ts");
  uninstall
    .command("mesh")
    .description("remove the control plane; keeps the MeshConfig, namespace and CRD unless asked")
    .option("--mesh-name <name>", "name of the mesh", DEFAULT_MESH_NAME)
    .option("--osm-namespace <ns>", "namespace of the control plane", DEFAULT_OSM_NAMESPACE)
    .option("--delete-namespace", "also delete the control-plane namespace (and the MeshConfig in it)", false)
    .option("--delete-cluster-wide-resources", "also delete the MeshConfig CRD", false)
    .option("-f, --force", "accepted for OSM compatibility (osm-ts never prompts)", false)
    .option("--kubeconfig <path>", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "kubeconfig context to use (default: the current context)")
    .action(async (flags: UninstallFlags) => {
      const v = values(flags);
      const kc = loadKubeConfig(flags);
      const client = KubernetesObjectApi.makeApiClient(kc);
      await withApiErrors(async () =>
        uninstallMesh({
          client,
          served: await discoverGroupVersions(kc.makeApiClient(ApisApi)),
          values: v,
          deleteNamespace: flags.deleteNamespace,
          deleteClusterWideResources: flags.deleteClusterWideResources,
          out,
        }),
      );
    });
}

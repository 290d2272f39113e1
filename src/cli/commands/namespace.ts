import type { Command } from "commander";
import { DEFAULT_MESH_NAME } from "../../constants.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { addNamespaces, ignoreNamespaces, listNamespaces, removeNamespace } from "../../guide/namespace.ts";

interface KubeFlags {
  kubeconfig?: string;
  context?: string;
}

const out = (text: string): void => {
  process.stdout.write(text);
};

function withKubeFlags(command: Command): Command {
  return command
    .option("--kubeconfig <path>", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "kubeconfig context to use (default: the current context)");
}

/** `osm namespace add|remove|list|ignore`, as OSM's CLI (cmd/cli/namespace*.go). */
export function registerNamespace(program: Command): void {
  const namespace = program
    .command("namespace")
    .alias("ns")
    .description("manage namespaces enlisted in the mesh");

  withKubeFlags(
    namespace
      .command("add")
      .description("add namespace to mesh")
      .argument("<NAMESPACE...>", "namespaces to add")
      .option("--mesh-name <name>", "Name of the service mesh", DEFAULT_MESH_NAME)
      .option("--disable-sidecar-injection", "Disable automatic sidecar injection", false),
  ).action(
    async (
      namespaces: string[],
      flags: KubeFlags & { meshName: string; disableSidecarInjection: boolean },
    ): Promise<void> => {
      const kc = loadKubeConfig(flags);
      await addNamespaces(
        kc,
        { namespaces, meshName: flags.meshName, disableSidecarInjection: flags.disableSidecarInjection },
        out,
      );
    },
  );

  withKubeFlags(
    namespace
      .command("remove")
      .description("remove namespace from mesh")
      .argument("<NAMESPACE>", "namespace to remove")
      .option("--mesh-name <name>", "Name of the service mesh", DEFAULT_MESH_NAME),
  ).action(async (ns: string, flags: KubeFlags & { meshName: string }): Promise<void> => {
    await removeNamespace(loadKubeConfig(flags), { namespace: ns, meshName: flags.meshName }, out);
  });

  withKubeFlags(
    namespace
      .command("list")
      .description("list namespaces enlisted in meshes")
      .argument("[MESH]", "only namespaces of this mesh")
      .option("--mesh-name <name>", "Name of service mesh to list namespaces", ""),
  ).action(async (mesh: string | undefined, flags: KubeFlags & { meshName: string }): Promise<void> => {
    await listNamespaces(loadKubeConfig(flags), { meshName: mesh ?? flags.meshName }, out);
  });

  withKubeFlags(
    namespace
      .command("ignore")
      .description("ignore namespace from participating in the mesh")
      .argument("<NAMESPACE...>", "namespaces to ignore"),
  ).action(async (namespaces: string[], flags: KubeFlags): Promise<void> => {
    await ignoreNamespaces(loadKubeConfig(flags), { namespaces }, out);
  });
}

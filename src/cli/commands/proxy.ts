import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import type { Command } from "commander";
import { DEFAULT_OSM_NAMESPACE } from "../../constants.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { adminGet, proxyGet } from "../../guide/proxy-get.ts";
import { fetchProxyStatus, formatProxyStatus } from "../../guide/proxy-status.ts";

interface KubeFlags {
  kubeconfig?: string;
  context?: string;
}

function withKubeFlags(command: Command): Command {
  return command
    .option("--kubeconfig <path>", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "kubeconfig context to use (default: the current context)");
}

/** The namespace kubectl would use: the context's namespace, else `default`. */
function contextNamespace(kc: ReturnType<typeof loadKubeConfig>): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
}

/** `osm proxy status` (interception staleness) and `osm proxy get QUERY POD` (OSM's cmd/cli/proxy_get.go). */
export function registerProxy(program: Command): void {
  const proxy = program.command("proxy").description("interact with the sidecar proxies of meshed pods");

  withKubeFlags(
    proxy
      .command("status")
      .description(
        "show, per meshed pod, whether its interception policy matches the current MeshConfig and annotations",
      )
      .option("-n, --namespace <ns>", "namespace of the pods (default: the context's namespace)")
      .option("-A, --all-namespaces", "pods of every namespace", false)
      .option("--osm-namespace <ns>", "namespace of the mesh's MeshConfig", DEFAULT_OSM_NAMESPACE),
  ).action(
    async (flags: KubeFlags & { namespace?: string; allNamespaces: boolean; osmNamespace: string }) => {
      const kc = loadKubeConfig(flags);
      const namespace = flags.allNamespaces ? undefined : (flags.namespace ?? contextNamespace(kc));
      const statuses = await fetchProxyStatus(kc, { namespace, osmNamespace: flags.osmNamespace });
      const scope = namespace === undefined ? "in any namespace" : `in namespace ${namespace}`;
      process.stdout.write(formatProxyStatus(statuses, scope));
    },
  );

  withKubeFlags(
    proxy
      .command("get")
      .description("get query for proxy (config_dump, stats, ...) of a meshed pod")
      .argument("<QUERY>", "admin query, e.g. config_dump or stats")
      .argument("<POD>", "pod name")
      .option("-n, --namespace <ns>", "Namespace of pod", "default")
      .option("-f, --file <path>", "File to write output to"),
  ).action(async (query: string, pod: string, flags: KubeFlags & { namespace: string; file?: string }) => {
    const kc = loadKubeConfig(flags);
    const out: Writable = flags.file ? createWriteStream(flags.file) : process.stdout;
    try {
      await proxyGet(kc, { namespace: flags.namespace, pod, query }, out);
    } finally {
      if (flags.file) await new Promise((resolve) => out.end(resolve));
    }
  });

  proxy
    .command("admin-get", { hidden: true })
    .description("inside a pod: GET a path of the sidecar admin endpoint on 127.0.0.1 (used by `proxy get`)")
    .argument("<PATH>", "admin path, e.g. config_dump")
    .action(async (path: string) => {
      await adminGet(path, process.stdout);
    });
}

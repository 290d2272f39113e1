import type { Command } from "commander";
import { DEFAULT_OSM_NAMESPACE } from "../../constants.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import {
  DEFAULT_API_PORT,
  DEFAULT_CONTEXT,
  DEFAULT_ETCD_PORT,
  DEFAULT_KUBELET_PORT,
  DEFAULT_STATE_DIR,
  ENGINES,
  type Engine,
} from "../../local/daemon/config.ts";
import {
  addExternalHost,
  meshDown,
  meshStatus,
  meshUp,
  removeExternalHost,
} from "../../local/daemon/control.ts";
import type { Health } from "../../local/daemon/daemon.ts";
import { findKubeBinaries } from "../../local/kubernetes/binaries.ts";
import { DEFAULT_NETWORK, type NodeNetworkConfig } from "../../local/node/network-config.ts";
import { integer } from "../flags.ts";

/**
 * One line on the meshed pods' interception policies (current or stale), read through the daemon's own
 * kubeconfig context; says why when it cannot (e.g. the control plane is not installed yet).
 */
async function stalenessSummary(kubeconfig: string, context: string): Promise<string> {
  const { loadKubeConfig } = await import("../../edge/kube-client.ts");
  const { fetchProxyStatus, summarizeStaleness } = await import("../../guide/proxy-status.ts");
  try {
    const kc = loadKubeConfig({ kubeconfig, context });
    const statuses = await fetchProxyStatus(kc, {
      namespace: undefined,
      osmNamespace: DEFAULT_OSM_NAMESPACE,
    });
    return summarizeStaleness(statuses);
  } catch (error) {
    return `unknown (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`;
  }
}

function engineOf(value: string): Engine {
  if ((ENGINES as readonly string[]).includes(value)) return value as Engine;
  throw new MeshError(ErrorCode.InvalidArgument, `--engine: "${value}" is not an engine`, {
    hint: `use one of: ${ENGINES.join(", ")}`,
  });
}

/** `  engine: kubernetes (kube-apiserver v1.36.3)` or `  engine: embedded`. */
function engineLine(h: Health): string {
  const engine = h.engine ?? "embedded";
  return `  engine:      ${engine}${h.kubernetes ? ` (kube-apiserver ${h.kubernetes.version})` : ""}\n`;
}

interface UpFlags {
  stateDir: string;
  engine: string;
  etcdPort: number;
  kubeletPort: number;
  kubeconfig?: string;
  context: string;
  port: number;
  bridge: string;
  namePrefix: string;
  subnet4: string;
  subnet6: string;
  firstSlot: number;
  lastSlot: number;
  shutdownGrace: number;
  containerPath?: string;
  liveInterception: boolean;
}

/** Registers `osm mesh up | down | status | external-host` on the program. */
export function registerMesh(program: Command): void {
  const mesh = program
    .command("mesh")
    .description(
      "the embedded default: a local Kubernetes-compatible API server and node agent (pods as network namespaces)",
    );

  mesh
    .command("up")
    .description(
      "start the API server and node agent as a daemon, and write kubeconfig context osm-local (made current)",
    )
    .option(
      "--state-dir <dir>",
      "where the daemon keeps its store, certificates, logs and pidfile",
      DEFAULT_STATE_DIR,
    )
    .option(
      "--kubeconfig <path>",
      "kubeconfig file to write the context to (default: $KUBECONFIG or ~/.kube/config)",
    )
    .option("--context <name>", "kubeconfig context name", DEFAULT_CONTEXT)
    .option(
      "--engine <engine>",
      "embedded: this project's API server (fast, the default); kubernetes: the real kube-apiserver, kube-controller-manager, kube-scheduler and etcd (build them first: bash scripts/kube-binaries)",
      "embedded",
    )
    .option(
      "--port <port>",
      "API server port (127.0.0.1; with --engine kubernetes, on the pod bridge's host address)",
      integer("--port"),
      DEFAULT_API_PORT,
    )
    .option(
      "--etcd-port <port>",
      "etcd client port on 127.0.0.1, and the next port for its peer URL (--engine kubernetes)",
      integer("--etcd-port"),
      DEFAULT_ETCD_PORT,
    )
    .option(
      "--kubelet-port <port>",
      "the node agent's kubelet API port on the pod bridge's host address (--engine kubernetes)",
      integer("--kubelet-port"),
      DEFAULT_KUBELET_PORT,
    )
    .option("--bridge <name>", "host bridge of the pods", DEFAULT_NETWORK.bridge)
    .option("--name-prefix <prefix>", "prefix of the pods' netns and veth names", DEFAULT_NETWORK.namePrefix)
    .option("--subnet4 <cidr>", "pods' IPv4 subnet (the host takes its .1)", DEFAULT_NETWORK.subnet4)
    .option("--subnet6 <cidr>", "pods' IPv6 subnet (the host takes its ::1)", DEFAULT_NETWORK.subnet6)
    .option(
      "--first-slot <n>",
      "first host number handed to pods",
      integer("--first-slot"),
      DEFAULT_NETWORK.firstSlot,
    )
    .option(
      "--last-slot <n>",
      "last host number handed to pods",
      integer("--last-slot"),
      DEFAULT_NETWORK.lastSlot,
    )
    .option(
      "--shutdown-grace <seconds>",
      "grace period given to pods by `osm mesh down`",
      integer("--shutdown-grace"),
      5,
    )
    .option(
      "--container-path <PATH>",
      "PATH of every container, where their commands resolve on the host (default: this osm-ts's bin/, then /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)",
    )
    .option(
      "--no-live-interception",
      "the node agent never changes a running pod's interception: leave live interception updates to the osm-node DaemonSet (osm install --set osm.nodeAgent.enabled=true)",
    )
    .action(async (flags: UpFlags) => {
      const network: NodeNetworkConfig = {
        bridge: flags.bridge,
        namePrefix: flags.namePrefix,
        subnet4: flags.subnet4,
        subnet6: flags.subnet6,
        gatewayOffset: 1,
        firstSlot: flags.firstSlot,
        lastSlot: flags.lastSlot,
      };
      const engine = engineOf(flags.engine);
      const result = await meshUp({
        stateDir: flags.stateDir,
        engine,
        ...(engine === "kubernetes"
          ? {
              kubernetes: {
                binDir: findKubeBinaries(),
                etcdPort: flags.etcdPort,
                kubeletPort: flags.kubeletPort,
              },
            }
          : {}),
        ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
        context: flags.context,
        port: flags.port,
        network,
        shutdownGraceSeconds: flags.shutdownGrace,
        ...(flags.containerPath ? { containerPath: flags.containerPath } : {}),
        liveInterception: flags.liveInterception,
      });
      const h = result.health;
      process.stdout.write(
        `${result.alreadyRunning ? "osm-local is already running" : "osm-local is up"} (pid ${h.pid})\n` +
          engineLine(h) +
          `  API server:  ${h.apiServer}\n` +
          `  kubeconfig:  ${h.kubeconfig} (context ${h.context}, current)\n` +
          `  pod network: bridge ${h.bridge}, host ${h.gateway4} and ${h.gateway6}\n` +
          `  logs:        ${result.logFile}\n`,
      );
    });

  mesh
    .command("down")
    .description("stop the daemon and remove every pod process, netns, veth, route and the bridge it created")
    .option("--state-dir <dir>", "the daemon's state directory", DEFAULT_STATE_DIR)
    .option("--kubeconfig <path>", "kubeconfig file to remove the context from (default: the one `up` wrote)")
    .option("--purge", "also delete the stored state (API objects, certificates, logs)", false)
    .action(async (flags: { stateDir: string; kubeconfig?: string; purge: boolean }) => {
      const result = await meshDown({
        stateDir: flags.stateDir,
        purge: flags.purge,
        ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
      });
      if (result.nothingThere) {
        process.stdout.write(
          `osm-local was not running (no daemon state in ${flags.stateDir}); nothing to clean up\n`,
        );
        return;
      }
      process.stdout.write(
        `${result.stoppedPid ? `osm-local stopped (pid ${result.stoppedPid})` : "osm-local was not running"}; host network cleaned up${result.purged ? "; state deleted" : ""}\n`,
      );
    });

  mesh
    .command("status")
    .description("show whether the daemon runs, its API server and pod network")
    .option("--state-dir <dir>", "the daemon's state directory", DEFAULT_STATE_DIR)
    .option("-o, --output <format>", "output format: text|json", "text")
    .action(async (flags: { stateDir: string; output: string }) => {
      const s = await meshStatus(flags.stateDir);
      if (flags.output === "json") {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const h = s.health;
      if (!h) {
        process.stdout.write(
          s.pid
            ? `osm-local: pid ${s.pid} is alive but does not answer its health endpoint\n`
            : "osm-local is not running\n",
        );
        return;
      }
      process.stdout.write(
        `osm-local is running (pid ${h.pid}, since ${h.startedAt})\n` +
          engineLine(h) +
          (h.kubernetes
            ? Object.entries(h.kubernetes.components)
                .map(([name, state]) => `    ${name.padEnd(24)} ${state}\n`)
                .join("")
            : "") +
          `  API server:  ${h.apiServer}\n` +
          `  kubeconfig:  ${h.kubeconfig} (context ${h.context})\n` +
          `  pod network: bridge ${h.bridge}, host ${h.gateway4} and ${h.gateway6}\n` +
          `  pods:        ${h.pods}\n` +
          (h.externalHosts.length > 0 ? `  external:    ${h.externalHosts.join(", ")}\n` : "") +
          `  mesh:        ${await stalenessSummary(h.kubeconfig, h.context)}\n`,
      );
    });

  const ext = mesh
    .command("external-host")
    .description(
      "non-mesh hosts on the pod bridge (their own netns), reachable from pods on documentation addresses",
    );
  ext
    .command("add <name>")
    .description("attach a host answering on --address (e.g. 203.0.113.10/32); prints its netns")
    .requiredOption(
      "--address <cidr...>",
      "address(es) it answers on, from 203.0.113.0/24, 192.0.2.0/24 or 2001:db8::/32",
    )
    .option(
      "--hostname <name...>",
      "name(s) pods resolve to its addresses through the cluster DNS (e.g. httpbin.org)",
    )
    .option("--state-dir <dir>", "the daemon's state directory", DEFAULT_STATE_DIR)
    .action(async (name: string, flags: { address: string[]; hostname?: string[]; stateDir: string }) => {
      const host = await addExternalHost(flags.stateDir, name, flags.address, flags.hostname ?? []);
      const names = host.hostnames?.length ? `, resolves as ${host.hostnames.join(" ")}` : "";
      process.stdout.write(
        `external host ${host.name}: netns ${host.netns}, bridge leg ${host.leg4} ${host.leg6}, answers on ${host.addresses.join(" ")}${names}\n` +
          `  start a server in it: ip netns exec ${host.netns} <command>\n`,
      );
    });
  ext
    .command("remove <name>")
    .description("detach an external host (its processes, netns and routes)")
    .option("--state-dir <dir>", "the daemon's state directory", DEFAULT_STATE_DIR)
    .action(async (name: string, flags: { stateDir: string }) => {
      await removeExternalHost(flags.stateDir, name);
      process.stdout.write(`external host ${name} removed\n`);
    });
}

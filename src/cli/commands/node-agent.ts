import { type Command, Option } from "commander";
import { OSM_NODE_METRICS_PORT } from "../../constants.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { startDaemonSetAgent } from "../../local/node/daemonset-agent.ts";
import { type KubeFlags, kubeOptions, preflightRbac, stderrLogger, untilStopSignal } from "../service.ts";
import { parseListen, parseLogLevel } from "./controller.ts";

interface NodeAgentFlags extends KubeFlags {
  node?: string;
  meshName: string;
  listen: string;
  proc: string;
  logLevel: string;
}

async function run(flags: NodeAgentFlags): Promise<void> {
  const node = flags.node?.trim() ?? "";
  if (node === "") {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "--node is required: the name of the node this agent runs on",
      {
        hint: "in the DaemonSet: env NODE_NAME from the downward API (fieldRef spec.nodeName), --node $(NODE_NAME)",
      },
    );
  }
  const level = parseLogLevel(flags.logLevel);
  const listen = parseListen(flags.listen);
  const kubeConfig = loadKubeConfig({ ...flags, preferInCluster: true });
  await preflightRbac(kubeConfig, "node-agent", flags.meshName, flags.osmNamespace);
  const { logger, flush } = stderrLogger("osm-node", level);
  const agent = await startDaemonSetAgent({
    kubeConfig,
    nodeName: node,
    osmNamespace: flags.osmNamespace,
    logger,
    host: listen.host,
    port: listen.port,
    proc: flags.proc,
  });
  process.stdout.write(`osm-node on node ${node}: metrics and health on ${agent.url}\n`);
  await untilStopSignal(logger);
  await agent.stop();
  flush();
}

/** Registers `osm node-agent`. */
export function registerNodeAgent(program: Command): void {
  kubeOptions(
    program
      .command("node-agent")
      .description(
        "the osm-node DaemonSet's process: bring the interception of the meshed pods running on this node up to date with the MeshConfig, live (when osm-ts.io/live-interception-updates is \"true\" on osm-mesh-config); finds each pod's network namespace through the host's /proc, so it needs hostPID and CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN, CAP_SYS_PTRACE (deploy/README.md)",
      ),
  )
    .addOption(
      new Option("--node <name>", "the node this agent runs on: only pods bound to it are watched").env(
        "NODE_NAME",
      ),
    )
    .option("--mesh-name <name>", "mesh name (its RBAC objects are named osm-node-<mesh name>)", "osm")
    .option("--listen <host:port>", "address of /metrics and /healthz", `0.0.0.0:${OSM_NODE_METRICS_PORT}`)
    .option("--proc <dir>", "where the host's /proc is (the pod runs with hostPID, so /proc)", "/proc")
    .option(
      "--log-level <level>",
      "log level: trace, debug, info, warn, error, fatal (OSM names warning, panic, disabled too)",
      "info",
    )
    .action(async (flags: NodeAgentFlags) => {
      await run(flags);
    });
}

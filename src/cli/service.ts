/**
 * What the long-running control-plane commands (`osm controller run`, `osm injector run`) share: the
 * kubeconfig flags, a JSON logger on stderr (stdout carries only their "listening on" line) and the wait for
 * SIGINT/SIGTERM before a graceful close.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Command } from "commander";
import pino, { type Logger } from "pino";
import {
  DEFAULT_OSM_NAMESPACE,
  INJECTOR_SERVICE_NAME,
  OSM_CONTROLLER_NAME,
  OSM_NODE_NAME,
} from "../constants.ts";
import { defaultInstallValues } from "../kube/install-values.ts";
import { rbacRules } from "../kube/manifests.ts";
import { assertPermissions, permissionsOf } from "../kube/permissions.ts";

/** What `kubeOptions` parses. */
export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  osmNamespace: string;
}

/** Adds --kubeconfig, --context and --osm-namespace, in that order. */
export function kubeOptions(command: Command): Command {
  return command
    .option(
      "--kubeconfig <path>",
      "path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    .option("--context <name>", "kubeconfig context to use (default: the current context)")
    .option(
      "--osm-namespace <ns>",
      "namespace of the control plane and the MeshConfig",
      DEFAULT_OSM_NAMESPACE,
    );
}

/** A logger writing asynchronously to stderr; `flush` before exiting so no line is lost. */
export function stderrLogger(component: string, level: string): { logger: Logger; flush(): void } {
  const destination = pino.destination({ dest: 2, sync: false });
  const logger = pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return { logger, flush: () => destination.flushSync() };
}

/** Resolves at the first SIGINT or SIGTERM (logged), and removes both handlers again. */
export function untilStopSignal(logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, "shutting down");
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve();
    };
    const onInt = (): void => stop("SIGINT");
    const onTerm = (): void => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

/**
 * Before a control-plane component starts: may its identity do all that `osm install` grants it? Stops it
 * with one error naming each missing verb and resource (see kube/permissions.ts).
 */
export async function preflightRbac(
  kc: KubeConfig,
  component: "controller" | "injector" | "node-agent",
  meshName: string,
  osmNamespace: string,
): Promise<void> {
  const values = { ...defaultInstallValues("preflight"), meshName, osmNamespace };
  const rules = rbacRules(values);
  const [name, cluster, namespaced] = {
    controller: [OSM_CONTROLLER_NAME, rules.controllerCluster, rules.controllerNamespaced] as const,
    injector: [INJECTOR_SERVICE_NAME, rules.injectorCluster, rules.injectorNamespaced] as const,
    "node-agent": [OSM_NODE_NAME, rules.nodeAgentCluster, rules.nodeAgentNamespaced] as const,
  }[component];
  await assertPermissions({
    kc,
    component: name,
    serviceAccount: `system:serviceaccount:${osmNamespace}:${name}`,
    wanted: [...permissionsOf(cluster), ...permissionsOf(namespaced, osmNamespace)],
    grantedBy: `the ClusterRole and Role ${name}-${meshName}`,
  });
}

import type { Command } from "commander";
import { CONTROLLER_SIDECAR_API_PORT, DEFAULT_MESH_NAME } from "../../constants.ts";
import { startController } from "../../controller/index.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { parseListenAddress } from "../../net/host-port.ts";
import { type KubeFlags, kubeOptions, preflightRbac, stderrLogger, untilStopSignal } from "../service.ts";

interface RunFlags extends KubeFlags {
  meshName: string;
  listen: string;
  requireSourceIp: boolean;
  annotatePods: boolean;
  logLevel: string;
}

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseListen(text: string): { host: string; port: number } {
  const listen = parseListenAddress(text);
  if (!listen) {
    throw new MeshError(ErrorCode.InvalidArgument, `--listen ${JSON.stringify(text)} is not host:port`, {
      hint: `e.g. --listen 0.0.0.0:${CONTROLLER_SIDECAR_API_PORT}, --listen 127.0.0.1:0 or --listen [::1]:${CONTROLLER_SIDECAR_API_PORT}`,
    });
  }
  return listen;
}

const PINO_LEVELS = new Set(["trace", "debug", "info", "warn", "error", "fatal", "silent"]);

/**
 * The pino level for `--log-level`: pino's own names, plus OSM's `osmLogLevel` values (the install passes
 * them through): `warning` → warn, `panic` → fatal, `disabled` → silent.
 */
export function parseLogLevel(text: string): string {
  const level = text.trim().toLowerCase();
  const mapped =
    level === "warning" ? "warn" : level === "panic" ? "fatal" : level === "disabled" ? "silent" : level;
  if (!PINO_LEVELS.has(mapped)) {
    throw new MeshError(ErrorCode.InvalidArgument, `--log-level ${JSON.stringify(text)} is not a log level`, {
      hint: "one of trace, debug, info, warn, error, fatal, panic, disabled",
    });
  }
  return mapped;
}

async function run(flags: RunFlags): Promise<void> {
  const level = parseLogLevel(flags.logLevel);
  const listen = parseListen(flags.listen);
  const kubeConfig = loadKubeConfig(flags);
  await preflightRbac(kubeConfig, "controller", flags.meshName, flags.osmNamespace);
  const { logger, flush } = stderrLogger("osm-controller", level);
  const controller = await startController({
    kubeConfig,
    osmNamespace: flags.osmNamespace,
    meshName: flags.meshName,
    host: listen.host,
    port: listen.port,
    logger,
    requireSourceIp: flags.requireSourceIp,
    annotatePods: flags.annotatePods,
  });
  // The only line on stdout: where the API is (port 0 picks one), for scripts and tests to read.
  process.stdout.write(`osm-controller listening on ${controller.url}\n`);
  await untilStopSignal(logger);
  await controller.close();
  flush();
}

/** Registers `osm controller run`. */
export function registerController(program: Command): void {
  const controller = program.command("controller").description("the osm-ts control plane's controller");
  kubeOptions(
    controller
      .command("run")
      .description(
        "watch the Kubernetes API and serve the sidecar watch API, the stale-pod report, metrics and health",
      ),
  )
    .option(
      "--mesh-name <name>",
      "mesh name: namespaces labelled openservicemesh.io/monitored-by=<name>",
      DEFAULT_MESH_NAME,
    )
    .option(
      "--listen <host:port>",
      "address of the API (sidecars, /metrics, /healthz)",
      `0.0.0.0:${CONTROLLER_SIDECAR_API_PORT}`,
    )
    .option("--require-source-ip", "also require sidecars to connect from their pod's IP", false)
    .option(
      "--no-annotate-pods",
      "do not write to pods (the osm-ts.io/interception-stale annotation, the EgressBypassPossible event)",
    )
    .option(
      "--log-level <level>",
      "log level: trace, debug, info, warn, error, fatal (OSM names warning, panic, disabled too)",
      "info",
    )
    .action(async (flags: RunFlags) => {
      await run(flags);
    });
}

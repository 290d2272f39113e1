import { isIP } from "node:net";
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi } from "@kubernetes/client-node";
import { type Command, InvalidArgumentError } from "commander";
import {
  CONTROLLER_SIDECAR_API_PORT,
  DEFAULT_MESH_NAME,
  INJECTOR_SERVICE_NAME,
  INJECTOR_SERVICE_PORT,
  OSM_CONTROLLER_NAME,
} from "../../constants.ts";
import { serviceDnsNames } from "../../edge/certificates.ts";
import { loadKubeConfig } from "../../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import type { InitBackend } from "../../injector/index.ts";
import { createCaBundlePublisher } from "../../kube/ca-bundle.ts";
import { createClusterReader } from "../../kube/cluster-reader.ts";
import { startInjectorWebhook } from "../../kube/injector-webhook.ts";
import { parseListenAddress } from "../../net/host-port.ts";
import { type KubeFlags, kubeOptions, preflightRbac, stderrLogger, untilStopSignal } from "../service.ts";

interface RunFlags extends KubeFlags {
  meshName: string;
  listen: string;
  sidecarImage?: string;
  sidecarWindowsImage?: string;
  initContainerImage?: string;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  controllerUrl?: string;
  interceptionBackend: InitBackend;
  egressStrict: boolean;
  osmCommand: string;
  san: string[];
  caValidityHours: number;
  certValidityHours: number;
  publishCaBundle: boolean;
  logLevel: string;
}

function oneOf<T extends string>(values: readonly T[]) {
  return (value: string): T => {
    if (!values.includes(value as T)) {
      throw new InvalidArgumentError(`must be one of ${values.join(", ")}, got "${value}"`);
    }
    return value as T;
  };
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`must be a positive number, got "${value}"`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function run(flags: RunFlags): Promise<void> {
  const listen = parseListenAddress(flags.listen);
  if (!listen) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `--listen ${JSON.stringify(flags.listen)} is not host:port`,
      {
        hint: `e.g. --listen 0.0.0.0:${INJECTOR_SERVICE_PORT}`,
      },
    );
  }
  const osmCommand = flags.osmCommand.split(" ").filter((s) => s !== "");
  if (osmCommand.length === 0) throw new MeshError(ErrorCode.InvalidArgument, "--osm-command is empty");
  const kubeConfig = loadKubeConfig(flags);
  await preflightRbac(kubeConfig, "injector", flags.meshName, flags.osmNamespace);
  const { logger, flush } = stderrLogger("osm-injector", flags.logLevel);
  // The API server dials <service>.<namespace>.svc; the pod IP and loopback help direct and local callers.
  const extra = [
    ...flags.san,
    ...(process.env["POD_IP"] ? [process.env["POD_IP"]] : []),
    "127.0.0.1",
    "localhost",
  ];
  const dnsNames = [
    ...serviceDnsNames(INJECTOR_SERVICE_NAME, flags.osmNamespace),
    ...extra.filter((s) => !isIP(s)),
  ];
  const ipAddresses = [...new Set(extra.filter((s) => isIP(s) !== 0))];
  const hook = await startInjectorWebhook({
    host: listen.host,
    port: listen.port,
    injector: {
      meshName: flags.meshName,
      osmNamespace: flags.osmNamespace,
      ...(flags.sidecarImage ? { defaultSidecarImage: flags.sidecarImage } : {}),
      ...(flags.sidecarWindowsImage ? { defaultSidecarWindowsImage: flags.sidecarWindowsImage } : {}),
      ...(flags.initContainerImage ? { defaultInitContainerImage: flags.initContainerImage } : {}),
      imagePullPolicy: flags.imagePullPolicy,
      osmCommand,
      controllerUrl:
        flags.controllerUrl ??
        `http://${OSM_CONTROLLER_NAME}.${flags.osmNamespace}.svc.cluster.local:${CONTROLLER_SIDECAR_API_PORT}`,
      initBackend: flags.interceptionBackend,
      egressStrict: flags.egressStrict,
    },
    reader: createClusterReader({
      core: kubeConfig.makeApiClient(CoreV1Api),
      custom: kubeConfig.makeApiClient(CustomObjectsApi),
      osmNamespace: flags.osmNamespace,
    }),
    ...(flags.publishCaBundle
      ? {
          publisher: createCaBundlePublisher(
            KubernetesObjectApi.makeApiClient(kubeConfig),
            flags.meshName,
            logger,
          ),
        }
      : {}),
    dnsNames: [...new Set(dnsNames)],
    ipAddresses,
    caValidityHours: flags.caValidityHours,
    certValidityHours: flags.certValidityHours,
    logger,
  });
  // The only line on stdout: where the webhook listens (port 0 picks one), for scripts and tests.
  process.stdout.write(`osm-injector listening on https://${listen.host}:${hook.port}\n`);
  if (!flags.publishCaBundle) process.stdout.write(hook.caPem());
  await untilStopSignal(logger);
  await hook.close();
  flush();
}

/** Registers `osm injector run`: the sidecar injector and MeshConfig validator webhooks (HTTPS). */
export function registerInjector(program: Command): void {
  const injector = program
    .command("injector")
    .description("the osm-ts sidecar injector (admission webhooks)");
  kubeOptions(
    injector
      .command("run")
      .description(
        "serve /mutate-pod-creation and /validate-meshconfig over HTTPS, publishing the CA as caBundle",
      ),
  )
    .option(
      "--mesh-name <name>",
      "mesh name (namespaces labelled openservicemesh.io/monitored-by=<name>)",
      DEFAULT_MESH_NAME,
    )
    .option("--listen <host:port>", "HTTPS address of the webhooks", `0.0.0.0:${INJECTOR_SERVICE_PORT}`)
    .option(
      "--sidecar-image <image>",
      "sidecar image when MeshConfig spec.sidecar.envoyImage is empty (default: $OSM_DEFAULT_ENVOY_IMAGE)",
      process.env["OSM_DEFAULT_ENVOY_IMAGE"],
    )
    .option(
      "--sidecar-windows-image <image>",
      "Windows sidecar image (default: $OSM_DEFAULT_ENVOY_WINDOWS_IMAGE)",
      process.env["OSM_DEFAULT_ENVOY_WINDOWS_IMAGE"],
    )
    .option(
      "--init-container-image <image>",
      "osm-init image when MeshConfig spec.sidecar.initContainerImage is empty (default: $OSM_DEFAULT_INIT_CONTAINER_IMAGE)",
      process.env["OSM_DEFAULT_INIT_CONTAINER_IMAGE"],
    )
    .option(
      "--image-pull-policy <policy>",
      "imagePullPolicy of injected containers",
      oneOf(["Always", "IfNotPresent", "Never"] as const),
      "IfNotPresent",
    )
    .option(
      "--controller-url <url>",
      "the sidecars' config source (default: http://osm-controller.<ns>.svc.cluster.local:15128)",
    )
    .option(
      "--interception-backend <backend>",
      "osm-init script: iptables (OSM's, byte for byte), nftables or auto (nft when the node has it)",
      oneOf(["auto", "iptables", "nftables"] as const),
      "auto",
    )
    .option(
      "--egress-strict",
      "strict egress by default: app containers lose CAP_SETUID/CAP_SETGID (osm-ts.io/egress-strict overrides)",
      false,
    )
    .option(
      "--osm-command <argv>",
      "how injected containers run the osm CLI (space-separated argv prefix)",
      "osm",
    )
    .option("--san <name>", "extra DNS name or IP in the serving certificate (repeatable)", collect, [])
    .option("--ca-validity-hours <h>", "lifetime of the self-signed CA", positive, 8760)
    .option(
      "--cert-validity-hours <h>",
      "lifetime of the serving certificate (renewed in its last third)",
      positive,
      720,
    )
    .option(
      "--no-publish-ca-bundle",
      "do not patch caBundle into the webhook configurations (print the CA instead)",
    )
    .option("--log-level <level>", "pino log level (trace, debug, info, warn, error)", "info")
    .action(async (flags: RunFlags) => {
      await run(flags);
    });
}

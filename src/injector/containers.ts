/**
 * The two containers the injector adds: `osm-init` exactly as OSM builds it (pkg/injector/init_container.go:
 * getInitContainerSpec) and the sidecar, named `envoy` as in OSM (pkg/injector/envoy_container.go) so scripts
 * that say `-c envoy` keep working, although it runs the osm-ts sidecar, not Envoy.
 */
import type { V1Container, V1EnvVar, V1ResourceRequirements } from "@kubernetes/client-node";
import { type ForwardedProbe, formatProbe } from "../config/health-probes.ts";
import type { MeshConfig } from "../config/index.ts";
import { sidecarTokenMount } from "../config/sidecar-token.ts";
import {
  ENVOY_ADMIN_PORT,
  ENVOY_INBOUND_LISTENER_PORT,
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  ENVOY_UID,
  INIT_CONTAINER_NAME,
  SIDECAR_CONTAINER_NAME,
} from "../constants.ts";
import type { InjectorOptions } from "./types.ts";

/** OSM's Windows sidecar user (pkg/constants: EnvoyWindowsUser). */
export const ENVOY_WINDOWS_USER = "EnvoyUser";

function fieldEnv(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } } };
}

/** What osm-init runs: OSM's `/bin/sh -c <script>`, or (a policy too large for argv) `osm interception init`. */
export interface InitRun {
  readonly command: string[];
  readonly args: string[];
}

/** OSM's: the whole script in the PodSpec. */
export function initScriptRun(script: string): InitRun {
  return { command: ["/bin/sh"], args: ["-c", script] };
}

/**
 * A policy too large for argv (and for the pod object): osm-init fetches its text from the controller by the
 * hash recorded on the pod, checks the hash, and programs the rules through stdin (`osm interception init`).
 */
export function fetchPolicyRun(options: InjectorOptions, hash: string): InitRun {
  return {
    command: [...options.osmCommand, "interception", "init"],
    args: ["--controller", options.controllerUrl, "--policy-hash", hash, "--backend", options.initBackend],
  };
}

/** `osm-init`: NET_ADMIN, root, privileged from MeshConfig, POD_IP from the downward API. */
export function buildInitContainer(input: {
  image: string;
  run: InitRun;
  meshConfig: MeshConfig;
  options: InjectorOptions;
}): V1Container {
  return {
    name: INIT_CONTAINER_NAME,
    image: input.image,
    command: input.run.command,
    args: input.run.args,
    // Present always since v1.2 (PodIP mode DNATs to $POD_IP, which the script's shell expands).
    env: [fieldEnv("POD_IP", "status.podIP")],
    imagePullPolicy: input.options.imagePullPolicy,
    securityContext: {
      capabilities: { add: ["NET_ADMIN"] },
      privileged: input.meshConfig.spec.sidecar.enablePrivilegedInitContainer,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}

/** MeshConfig `spec.sidecar.logLevel` (Envoy's names) → the sidecar's pino level. */
export function sidecarLogLevel(meshConfigLevel: string): string {
  const map: Record<string, string> = { warning: "warn", critical: "fatal", off: "silent" };
  return map[meshConfigLevel] ?? meshConfigLevel;
}

/**
 * Node/V8 flags of the sidecar process, each kept because it paid in `npm run bench:sidecar`
 * (bench/README.md, "Footprint and tail"): `--single-threaded-gc` (no GC helper threads: on a node's few
 * shared cores the main thread waited for them; the longest GC pause while new connections arrive fell from
 * 12–81 ms to 4–7 ms, CPU per connection unchanged). `bin/osm` turns each `--node-flag=` word into a flag.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ["--single-threaded-gc"];

/**
 * The argv that starts the osm-ts sidecar (`osm sidecar run`): its config source is the controller's watch
 * API; its identity (POD_NAMESPACE/POD_NAME) and token come from the container's env.
 */
export function buildSidecarCommand(
  options: InjectorOptions,
  meshConfigLogLevel: string,
  probes: readonly ForwardedProbe[] = [],
): string[] {
  return [
    ...options.osmCommand,
    "sidecar",
    "run",
    ...SIDECAR_NODE_FLAGS.map((flag) => `--node-flag=${flag}`),
    "--controller",
    options.controllerUrl,
    "--log-level",
    sidecarLogLevel(meshConfigLogLevel),
    // The app's httpGet probes the sidecar forwards (probes.ts rewrote them to its ports).
    ...probes.flatMap((probe) => ["--probe", formatProbe(probe)]),
  ];
}

/**
 * The sidecar container `envoy`: uid 1500 (the interception rules exempt it by `--uid-owner 1500`), OSM's port
 * names, its identity through the downward API (pod name/namespace/uid/IP, service account), and its
 * credential: the projected token volume (`src/config/sidecar-token.ts`), mounted read-only.
 */
export function buildSidecarContainer(input: {
  image: string;
  windows: boolean;
  meshConfig: MeshConfig;
  options: InjectorOptions;
  probes?: readonly ForwardedProbe[];
}): V1Container {
  const sidecar = input.meshConfig.spec.sidecar;
  const container: V1Container = {
    name: SIDECAR_CONTAINER_NAME,
    image: input.image,
    command: buildSidecarCommand(input.options, sidecar.logLevel, input.probes),
    ports: [
      { name: "proxy-admin", containerPort: ENVOY_ADMIN_PORT, protocol: "TCP" },
      { name: "proxy-inbound", containerPort: ENVOY_INBOUND_LISTENER_PORT, protocol: "TCP" },
      { name: "proxy-metrics", containerPort: ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT, protocol: "TCP" },
    ],
    env: [
      fieldEnv("POD_UID", "metadata.uid"),
      fieldEnv("POD_NAME", "metadata.name"),
      fieldEnv("POD_NAMESPACE", "metadata.namespace"),
      fieldEnv("POD_IP", "status.podIP"),
      fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    ],
    volumeMounts: [sidecarTokenMount()],
    imagePullPolicy: input.options.imagePullPolicy,
    securityContext: input.windows
      ? { windowsOptions: { runAsUserName: ENVOY_WINDOWS_USER } }
      : { allowPrivilegeEscalation: false, runAsUser: ENVOY_UID },
  };
  if (sidecar.resources) container.resources = quantitiesAsStrings(sidecar.resources);
  return container;
}

type Quantities = Record<string, string | number> | undefined;

/** Kubernetes serialises quantities as strings (`"100m"`, `"1"`); MeshConfig allows numbers too. */
function quantitiesAsStrings(resources: {
  limits?: Quantities;
  requests?: Quantities;
}): V1ResourceRequirements {
  const convert = (q: Quantities) =>
    q === undefined ? undefined : Object.fromEntries(Object.entries(q).map(([k, v]) => [k, String(v)]));
  const out: V1ResourceRequirements = {};
  const limits = convert(resources.limits);
  const requests = convert(resources.requests);
  if (limits) out.limits = limits;
  if (requests) out.requests = requests;
  return out;
}

/**
 * The daemon's configuration and the layout of its state directory. Pure. `osm mesh up` writes the config
 * to `<stateDir>/daemon.json` before starting the daemon, so `osm mesh down` can clean up what it made even
 * when the daemon is gone (crashed, killed).
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_PATH } from "../node/container-launch.ts";
import { DEFAULT_NETWORK, type NodeNetworkConfig } from "../node/network-config.ts";

export const DEFAULT_STATE_DIR = "/var/lib/osm-ts";
export const DEFAULT_CONTEXT = "osm-local";
export const DEFAULT_API_PORT = 6443;
export const DEFAULT_API_HOST = "127.0.0.1";
/**
 * Containers' default PATH: this checkout's `bin/` first, then the usual directories. So the `osm` of the
 * control-plane manifests (and of injected sidecars) is the osm-ts that runs the daemon, whatever else
 * `/usr/local/bin/osm` points at (the image's PATH, which the host stands in for, would carry its own `osm`).
 */
export const DEFAULT_CONTAINER_PATH = `${fileURLToPath(new URL("../../../bin", import.meta.url))}:${DEFAULT_PATH}`;

/** The embedded API server's Service (ClusterIP) range (`apiserver/api.ts` allocates from it). */
export const SERVICE_CIDR4 = "192.0.2.0/24";

/** Which API server the mesh runs on: the embedded one, or the real Kubernetes control plane. */
export type Engine = "embedded" | "kubernetes";
export const ENGINES: readonly Engine[] = ["embedded", "kubernetes"];

/** The real control plane's settings (engine `kubernetes`). */
export interface KubernetesEngineConfig {
  /** Folder with kube-apiserver, kube-controller-manager, kube-scheduler and etcd (scripts/kube-binaries). */
  readonly binDir: string;
  readonly etcdPort: number;
  readonly kubeletPort: number;
}

export const DEFAULT_ETCD_PORT = 2379;
export const DEFAULT_KUBELET_PORT = 10250;

export interface DaemonConfig {
  readonly stateDir: string;
  readonly engine: Engine;
  /** Set when `engine` is `kubernetes`. */
  readonly kubernetes?: KubernetesEngineConfig;
  /** Kubeconfig file the context is written to (merged, as kind does). */
  readonly kubeconfig: string;
  readonly context: string;
  readonly host: string;
  readonly port: number;
  readonly network: NodeNetworkConfig;
  /** Grace period given to pods when the daemon stops (`osm mesh down`). */
  readonly shutdownGraceSeconds: number;
  /** PATH of every container (the image's PATH; commands resolve on the host). */
  readonly containerPath: string;
  /** False: the node agent leaves live interception updates to the osm-node DaemonSet. */
  readonly liveInterception: boolean;
}

/** The kubeconfig path kubectl would use: $KUBECONFIG's first entry, else ~/.kube/config. */
export function defaultKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.KUBECONFIG ?? "").split(":").find((p) => p !== "");
  return first ?? join(env.HOME ?? homedir(), ".kube", "config");
}

export function buildDaemonConfig(partial: Partial<DaemonConfig> & { stateDir?: string }): DaemonConfig {
  return {
    stateDir: partial.stateDir ?? DEFAULT_STATE_DIR,
    engine: partial.engine ?? "embedded",
    ...(partial.kubernetes ? { kubernetes: partial.kubernetes } : {}),
    kubeconfig: partial.kubeconfig ?? defaultKubeconfigPath(),
    context: partial.context ?? DEFAULT_CONTEXT,
    host: partial.host ?? DEFAULT_API_HOST,
    port: partial.port ?? DEFAULT_API_PORT,
    network: partial.network ?? DEFAULT_NETWORK,
    shutdownGraceSeconds: partial.shutdownGraceSeconds ?? 5,
    containerPath: partial.containerPath ?? DEFAULT_CONTAINER_PATH,
    liveInterception: partial.liveInterception ?? true,
  };
}

/** Where everything lives under the state directory. */
export function statePaths(stateDir: string) {
  return {
    config: join(stateDir, "daemon.json"),
    pidfile: join(stateDir, "daemon.pid"),
    log: join(stateDir, "daemon.log"),
    /** The control and health endpoint: HTTP over a unix socket (root-only by its directory's mode). */
    socket: join(stateDir, "daemon.sock"),
    apiserver: join(stateDir, "apiserver"),
    /** The real control plane's PKI, etcd data, kubeconfigs, logs and pidfiles (engine `kubernetes`). */
    kubernetes: join(stateDir, "kubernetes"),
    node: join(stateDir, "node"),
  };
}

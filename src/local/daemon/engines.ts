/**
 * The two API servers the daemon can run the node against, behind one shape: the embedded one (in this
 * process) and the real Kubernetes control plane (child processes). Each says where it serves, which
 * credentials kubectl and the node agent use, and how to stop it.
 */
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { ErrorCode, MeshError } from "../../errors.ts";
import { hostIPv4Addresses } from "../apiserver/host-addresses.ts";
import { startApiServer } from "../embedded-api-server.ts";
import { startControlPlane } from "../kubernetes/control-plane.ts";
import { chooseServiceCidr } from "../kubernetes/service-range.ts";
import type { PodApiAccess } from "../node/pod-files.ts";
import type { NodeRuntime } from "../node/runtime.ts";
import { type DaemonConfig, SERVICE_CIDR4, statePaths } from "./config.ts";

export type Credential =
  | { readonly token: string }
  | { readonly clientCertificate: { readonly certPem: string; readonly keyPem: string } };

export interface RunningEngine {
  readonly apiUrl: string;
  readonly apiPort: number;
  readonly caPem: string;
  /** What the kubeconfig context gives kubectl. */
  readonly user: Credential;
  /** The node agent's identity. */
  readonly node: Credential;
  /** Who the node agent watches Services and Endpoints as (kube-proxy's identity on a cluster). */
  readonly serviceProxy: Credential;
  /**
   * Who live interception updates act as (read MeshConfigs and namespaces, patch a pod's recorded policy): a
   * node may do neither (Node authorizer), so the daemon's own admin identity, which it holds anyway.
   */
  readonly interceptionUpdater: Credential;
  /** How pods reach the API: address, port and CA (and, on the embedded engine, the token they share). */
  readonly podApiAccess: PodApiAccess;
  /** The real control plane's version and components (engine `kubernetes`). */
  readonly kubernetes?: {
    readonly version: string;
    readonly components: () => Record<string, string>;
    readonly kubeletServing: { readonly certPem: string; readonly keyPem: string };
    readonly kubeletPort: number;
  };
  close(): Promise<void>;
}

/** A client-node KubeConfig for `credential` against `engine`. */
export function kubeConfigFor(engine: RunningEngine, credential: Credential, context: string): KubeConfig {
  const kc = new KubeConfig();
  const user =
    "token" in credential
      ? { name: context, token: credential.token }
      : {
          name: context,
          certData: Buffer.from(credential.clientCertificate.certPem).toString("base64"),
          keyData: Buffer.from(credential.clientCertificate.keyPem).toString("base64"),
        };
  kc.loadFromOptions({
    clusters: [
      {
        name: context,
        server: engine.apiUrl,
        caData: Buffer.from(engine.caPem).toString("base64"),
        skipTLSVerify: false,
      },
    ],
    users: [user],
    contexts: [{ name: context, cluster: context, user: context }],
    currentContext: context,
  });
  return kc;
}

/** The Service range of the engine: the embedded allocator skips host addresses; kube-apiserver cannot. */
export function serviceCidrOf(config: DaemonConfig): string {
  if (config.engine === "embedded") return SERVICE_CIDR4;
  const cidr = chooseServiceCidr(hostIPv4Addresses());
  if (!cidr) {
    throw new MeshError(
      ErrorCode.Unavailable,
      "every candidate Service range in 192.0.2.0/24 holds an address this host uses",
      { hint: "run the real engine on a machine whose uplink is not 192.0.2.0/24" },
    );
  }
  return cidr;
}

export async function startEngine(
  config: DaemonConfig,
  runtime: NodeRuntime,
  serviceCidr: string,
  nodeName: string,
  logger: Logger,
): Promise<RunningEngine> {
  const paths = statePaths(config.stateDir);
  if (config.engine === "kubernetes") {
    const k8s = config.kubernetes;
    if (!k8s) throw new MeshError(ErrorCode.InvalidConfig, "engine kubernetes needs its settings");
    const plane = await startControlPlane({
      root: paths.kubernetes,
      settings: {
        binDir: k8s.binDir,
        address: runtime.plan.gateway4,
        apiPort: config.port,
        etcdPort: k8s.etcdPort,
        kubeletPort: k8s.kubeletPort,
        serviceCidr,
        nodeName,
      },
      logger: logger.child({ component: "control-plane" }),
    });
    return {
      apiUrl: plane.apiUrl,
      apiPort: config.port,
      caPem: plane.pki.caPem,
      user: { clientCertificate: plane.pki.admin },
      node: { clientCertificate: plane.pki.node },
      serviceProxy: { clientCertificate: plane.pki.kubeProxy },
      interceptionUpdater: { clientCertificate: plane.pki.admin },
      // No shared token: each pod's own service-account token comes through TokenRequest.
      podApiAccess: { host: runtime.plan.gateway4, port: config.port, caPem: plane.pki.caPem, token: "" },
      kubernetes: {
        version: plane.version,
        components: plane.components,
        kubeletServing: plane.pki.kubeletServing,
        kubeletPort: k8s.kubeletPort,
      },
      close: plane.stop,
    };
  }
  const api = await startApiServer({
    stateDir: paths.apiserver,
    host: config.host,
    // Pods reach the API on the bridge's gateway addresses (their default gateway), as in-cluster clients.
    extraHosts: [runtime.plan.gateway4, runtime.plan.gateway6],
    port: config.port,
    nodeConnector: runtime,
    logger: logger.child({ component: "apiserver" }),
  });
  return {
    apiUrl: api.url,
    apiPort: api.port,
    caPem: api.caPem,
    user: { clientCertificate: api.adminCertificate },
    node: { token: api.nodeToken },
    serviceProxy: { token: api.nodeToken },
    interceptionUpdater: { clientCertificate: api.adminCertificate },
    // The pods' shared token counts only from a pod's own address, as its service account (apiserver/authn.ts).
    podApiAccess: { host: runtime.plan.gateway4, port: api.port, caPem: api.caPem, token: api.podToken },
    close: () => api.close(),
  };
}

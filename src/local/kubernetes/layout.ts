/**
 * Where the real control plane keeps its files under the daemon's state directory, and the settings that
 * place it on the host. Pure.
 */
import { join } from "node:path";

export interface ControlPlaneSettings {
  /** Folder with kube-apiserver, kube-controller-manager, kube-scheduler and etcd. */
  readonly binDir: string;
  /** The node's address on the pod bridge: kube-apiserver listens and advertises here, pods reach it here. */
  readonly address: string;
  readonly apiPort: number;
  /** etcd's client port on 127.0.0.1 (its peer port is the next one). */
  readonly etcdPort: number;
  /** The kubelet API's port on `address`. */
  readonly kubeletPort: number;
  /** Services' ClusterIP range (kube-apiserver `--service-cluster-ip-range`). */
  readonly serviceCidr: string;
  readonly nodeName: string;
}

export function controlPlanePaths(root: string) {
  const pki = join(root, "pki");
  return {
    root,
    pki,
    etcdData: join(root, "etcd"),
    logs: join(root, "logs"),
    run: join(root, "run"),
    kubeconfigs: join(root, "kubeconfigs"),
    ca: { cert: join(pki, "ca.crt"), key: join(pki, "ca.key") },
    serviceAccountKey: join(pki, "sa.key"),
    /** Its public half: kube-apiserver verifies tokens with it (it reads no public key out of a private one). */
    serviceAccountPublicKey: join(pki, "sa.pub"),
    leaf: (name: string) => ({ cert: join(pki, `${name}.crt`), key: join(pki, `${name}.key`) }),
    kubeconfig: (name: string) => join(root, "kubeconfigs", `${name}.kubeconfig`),
    log: (component: string) => join(root, "logs", `${component}.log`),
    pidfile: (component: string) => join(root, "run", `${component}.pid`),
  };
}

export type ControlPlanePaths = ReturnType<typeof controlPlanePaths>;

/** The service-account issuer kube-apiserver signs tokens as (and accepts, as the default audience). */
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

/** The names a client may use for kube-apiserver: its serving certificate covers them all. */
export function apiServerNames(settings: ControlPlaneSettings, kubernetesServiceIp: string) {
  return {
    dnsNames: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    ipAddresses: [...new Set(["127.0.0.1", settings.address, kubernetesServiceIp])],
  };
}

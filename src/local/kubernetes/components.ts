/**
 * The command lines of the four control-plane processes, as kubeadm and kwok run them, with the flags this
 * project depends on spelled out: TLS everywhere but etcd on loopback, `Node,RBAC` authorization, the
 * NodeRestriction and admission-webhook plugins, service-account token issuing, and webhooks reached at their
 * endpoints' pod addresses (`--enable-aggregator-routing`: this host has no kube-proxy path to ClusterIPs).
 * Pure: paths and settings in, argv out.
 */
import { join } from "node:path";
import { type ControlPlanePaths, type ControlPlaneSettings, SERVICE_ACCOUNT_ISSUER } from "./layout.ts";

export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";

export interface Component {
  readonly name: ComponentName;
  readonly binary: string;
  readonly args: readonly string[];
}

/** In start order: each needs the ones before it. */
export const COMPONENT_ORDER: readonly ComponentName[] = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
];

export function etcdComponent(paths: ControlPlanePaths, settings: ControlPlaneSettings): Component {
  const client = `http://127.0.0.1:${settings.etcdPort}`;
  const peer = `http://127.0.0.1:${settings.etcdPort + 1}`;
  return {
    name: "etcd",
    binary: join(settings.binDir, "etcd"),
    args: [
      "--name=osm-local",
      `--data-dir=${paths.etcdData}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=osm-local=${peer}`,
      "--initial-cluster-state=new",
      // Metrics and health on the client port only; nothing listens beyond loopback.
      "--listen-metrics-urls=",
      "--log-level=warn",
      "--quota-backend-bytes=2147483648",
      "--snapshot-count=10000",
    ],
  };
}

export function apiServerComponent(paths: ControlPlanePaths, settings: ControlPlaneSettings): Component {
  const serving = paths.leaf("apiserver");
  const kubeletClient = paths.leaf("apiserver-kubelet-client");
  return {
    name: "kube-apiserver",
    binary: join(settings.binDir, "kube-apiserver"),
    args: [
      `--etcd-servers=http://127.0.0.1:${settings.etcdPort}`,
      `--bind-address=${settings.address}`,
      `--advertise-address=${settings.address}`,
      `--secure-port=${settings.apiPort}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${paths.ca.cert}`,
      "--authorization-mode=Node,RBAC",
      "--enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${paths.serviceAccountPublicKey}`,
      `--service-account-signing-key-file=${paths.serviceAccountKey}`,
      `--service-cluster-ip-range=${settings.serviceCidr}`,
      `--kubelet-client-certificate=${kubeletClient.cert}`,
      `--kubelet-client-key=${kubeletClient.key}`,
      `--kubelet-certificate-authority=${paths.ca.cert}`,
      "--kubelet-preferred-address-types=InternalIP,Hostname",
      "--enable-aggregator-routing=true",
      "--allow-privileged=true",
      "--profiling=false",
      "--v=1",
    ],
  };
}

export function controllerManagerComponent(
  paths: ControlPlanePaths,
  settings: ControlPlaneSettings,
): Component {
  return {
    name: "kube-controller-manager",
    binary: join(settings.binDir, "kube-controller-manager"),
    args: [
      `--kubeconfig=${paths.kubeconfig("kube-controller-manager")}`,
      `--root-ca-file=${paths.ca.cert}`,
      `--service-account-private-key-file=${paths.serviceAccountKey}`,
      "--use-service-account-credentials=true",
      `--service-cluster-ip-range=${settings.serviceCidr}`,
      `--cluster-signing-cert-file=${paths.ca.cert}`,
      `--cluster-signing-key-file=${paths.ca.key}`,
      "--leader-elect=false",
      // No HTTPS endpoint: the daemon watches the process, and nothing else needs its metrics.
      "--secure-port=0",
      "--profiling=false",
      "--v=1",
    ],
  };
}

export function schedulerComponent(paths: ControlPlanePaths, settings: ControlPlaneSettings): Component {
  return {
    name: "kube-scheduler",
    binary: join(settings.binDir, "kube-scheduler"),
    args: [
      `--kubeconfig=${paths.kubeconfig("kube-scheduler")}`,
      "--leader-elect=false",
      "--secure-port=0",
      "--profiling=false",
      "--v=1",
    ],
  };
}

export function controlPlaneComponents(
  paths: ControlPlanePaths,
  settings: ControlPlaneSettings,
): Component[] {
  return [
    etcdComponent(paths, settings),
    apiServerComponent(paths, settings),
    controllerManagerComponent(paths, settings),
    schedulerComponent(paths, settings),
  ];
}

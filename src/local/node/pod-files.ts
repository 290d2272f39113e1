/**
 * What a kubelet gives every pod besides its network: a managed `/etc/hosts`, `/etc/resolv.conf` pointing at the
 * node's cluster DNS (`cluster-dns.ts`) with the Kubernetes search path, and, unless the pod opts out
 * (`automountServiceAccountToken: false`), the service account directory
 * (`/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`) with `KUBERNETES_SERVICE_HOST/PORT`,
 * so client libraries' in-cluster config works in the pod unchanged. The files live under the node's state
 * directory (mode 0700 up the path; bind mounts do not need the path to be searchable) and are bind-mounted
 * read-only in the pod's mount namespace (`pod-namespaces.ts`). Rendering is pure.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { CLUSTER_DOMAIN } from "./cluster-dns.ts";
import type { PodMount } from "./pod-namespaces.ts";

/** Where in-cluster clients look for their credentials (client-go, client-node). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How pods reach the API server: the address on the bridge, the port, the CA and a bearer token. */
export interface PodApiAccess {
  readonly host: string;
  readonly port: number;
  readonly caPem: string;
  readonly token: string;
}

/**
 * The pod's `/etc/hosts`, as the kubelet writes it: the header and localhost lines and the pod's own name on
 * its IPs. Services are found through the cluster DNS, not here.
 */
export function renderHostsFile(pod: { readonly name: string; readonly ips: readonly string[] }): string {
  const lines = [
    "# Kubernetes-managed hosts file (osm-ts local node agent).",
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
    ...pod.ips.map((ip) => `${ip}\t${pod.name}`),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The pod's `/etc/resolv.conf` for `dnsPolicy` ClusterFirst (the default): the cluster DNS, the search path
 * `<ns>.svc.<domain> svc.<domain> <domain>` and `ndots:5`, as the kubelet writes it; `spec.dnsConfig` is
 * merged in (nameservers, searches, options), and `dnsPolicy: None` takes only `dnsConfig`. Undefined for
 * `dnsPolicy: Default` (the host's file, as the node's own resolver config).
 */
export function renderResolvConf(
  pod: V1Pod,
  nameserver: string,
  domain = CLUSTER_DOMAIN,
): string | undefined {
  const policy = pod.spec?.dnsPolicy ?? "ClusterFirst";
  if (policy === "Default") return undefined;
  const ns = pod.metadata?.namespace ?? "default";
  const own = policy === "None";
  const config = pod.spec?.dnsConfig;
  const nameservers = [...(own ? [] : [nameserver]), ...(config?.nameservers ?? [])];
  const searches = [
    ...(own ? [] : [`${ns}.svc.${domain}`, `svc.${domain}`, domain]),
    ...(config?.searches ?? []),
  ];
  const options = new Map<string, string | undefined>(own ? [] : [["ndots", "5"]]);
  for (const o of config?.options ?? []) if (o.name) options.set(o.name, o.value);
  const lines = [
    ...nameservers.map((n) => `nameserver ${n}`),
    ...(searches.length > 0 ? [`search ${searches.join(" ")}`] : []),
    ...(options.size > 0
      ? [`options ${[...options].map(([k, v]) => (v === undefined ? k : `${k}:${v}`)).join(" ")}`]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}

/** True when the pod gets the service account files (the PodSpec field; a ServiceAccount's own is not read). */
export function automountsToken(pod: V1Pod): boolean {
  return pod.spec?.automountServiceAccountToken !== false;
}

/** The env the kubelet sets for the API service (`KUBERNETES_SERVICE_HOST` is read by in-cluster config). */
export function apiServiceEnv(access: PodApiAccess): Record<string, string> {
  const port = String(access.port);
  return {
    KUBERNETES_SERVICE_HOST: access.host,
    KUBERNETES_SERVICE_PORT: port,
    KUBERNETES_SERVICE_PORT_HTTPS: port,
  };
}

export interface PodEnvironment {
  readonly mounts: readonly PodMount[];
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Writes the pod's files under `dir` (replacing earlier ones) and returns the mounts and env its containers
 * get. Files are 0644, as the kubelet's projected token defaults: any uid in the pod may read them.
 */
export function writePodFiles(
  dir: string,
  pod: V1Pod,
  ips: readonly string[],
  nameserver: string | undefined,
  access: PodApiAccess | undefined,
): PodEnvironment {
  const namespace = pod.metadata?.namespace ?? "default";
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hosts = join(dir, "hosts");
  writeFileSync(hosts, renderHostsFile({ name: pod.metadata?.name ?? "", ips }), { mode: 0o644 });
  const mounts: PodMount[] = [{ source: hosts, target: "/etc/hosts" }];
  const resolv = nameserver === undefined ? undefined : renderResolvConf(pod, nameserver);
  if (resolv !== undefined) {
    writeFileSync(join(dir, "resolv.conf"), resolv, { mode: 0o644 });
    mounts.push({ source: join(dir, "resolv.conf"), target: "/etc/resolv.conf" });
  }
  if (!access || !automountsToken(pod)) return { mounts, env: {} };
  const sa = join(dir, "serviceaccount");
  mkdirSync(sa, { recursive: true, mode: 0o755 });
  writeFileSync(join(sa, "token"), access.token, { mode: 0o644 });
  writeFileSync(join(sa, "ca.crt"), access.caPem, { mode: 0o644 });
  writeFileSync(join(sa, "namespace"), namespace, { mode: 0o644 });
  // The mount point, once, on the host (/var/run is the /run tmpfs: gone after a reboot, like /run/netns).
  // Never removed: a mount point removed on the host detaches the mounts of running pods (of any daemon).
  mkdirSync(SERVICE_ACCOUNT_DIR, { recursive: true, mode: 0o755 });
  mounts.push({ source: sa, target: SERVICE_ACCOUNT_DIR });
  return { mounts, env: apiServiceEnv(access) };
}

export function removePodFiles(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

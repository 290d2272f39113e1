/**
 * What kube-proxy computes from Services and Endpoints (pure): for each ClusterIP port, the ready endpoints'
 * addresses and target ports. Named target ports need no work here: the Endpoints controller already resolved
 * them per pod, and an Endpoints subset's port carries the Service port's name. IPv4 only (ClusterIPs are).
 */
import { isIPv4 } from "node:net";
import type { V1Endpoints, V1Service } from "@kubernetes/client-node";

export type ServiceProtocol = "tcp" | "udp" | "sctp";

export interface ServiceBackend {
  readonly ip: string;
  readonly port: number;
}

export interface ServicePortRoute {
  /** `<namespace>/<service>:<port name or number>`, for logs and comments. */
  readonly name: string;
  readonly clusterIP: string;
  readonly protocol: ServiceProtocol;
  readonly port: number;
  /** Ready endpoints, sorted; empty when none is ready (the ClusterIP port then answers nothing). */
  readonly backends: readonly ServiceBackend[];
}

const key = (o: { metadata?: { namespace?: string; name?: string } }) =>
  `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** Every port of every Service with an IPv4 ClusterIP, with its ready endpoints; in a stable order. */
export function planServiceRoutes(
  services: readonly V1Service[],
  endpoints: readonly V1Endpoints[],
): ServicePortRoute[] {
  const byKey = new Map(endpoints.map((e) => [key(e), e]));
  const routes: ServicePortRoute[] = [];
  for (const svc of services) {
    const clusterIP = svc.spec?.clusterIP ?? "";
    if (!isIPv4(clusterIP) || svc.spec?.type === "ExternalName") continue;
    const subsets = byKey.get(key(svc))?.subsets ?? [];
    for (const p of svc.spec?.ports ?? []) {
      const protocol = (p.protocol ?? "TCP").toLowerCase() as ServiceProtocol;
      const backends = new Map<string, ServiceBackend>();
      for (const subset of subsets) {
        const target = (subset.ports ?? []).find(
          (sp) => (sp.name ?? "") === (p.name ?? "") && (sp.protocol ?? "TCP").toLowerCase() === protocol,
        );
        if (!target) continue;
        for (const a of subset.addresses ?? []) {
          if (isIPv4(a.ip)) backends.set(`${a.ip}:${target.port}`, { ip: a.ip, port: target.port });
        }
      }
      routes.push({
        name: `${key(svc)}:${p.name || p.port}`,
        clusterIP,
        protocol,
        port: p.port,
        backends: [...backends.values()].sort((a, b) =>
          `${a.ip}:${a.port}`.localeCompare(`${b.ip}:${b.port}`),
        ),
      });
    }
  }
  return routes.sort((a, b) =>
    `${a.clusterIP} ${a.protocol} ${a.port}`.localeCompare(`${b.clusterIP} ${b.protocol} ${b.port}`),
  );
}

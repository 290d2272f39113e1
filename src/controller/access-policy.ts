/**
 * SMI access control turned into sidecar config (pure): with permissive mode off, each pod gets as mesh
 * upstreams only the services whose service account a TrafficTarget lets its own reach (OSM's
 * ListOutboundServicesForIdentity), and as inbound rules the addresses of the meshed pods each TrafficTarget
 * lets in. Computed once per service account per reconcile.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { SidecarInboundRule, SidecarMeshEndpoint } from "../config/sidecar-api.ts";
import { type Identity, inboundGrants, outboundIdentities, podIdentity } from "../smi/access.ts";
import type { TCPRoute, TrafficTarget } from "../smi/schema.ts";
import { podIps } from "./mesh-endpoints.ts";

export interface AccessInputs {
  readonly trafficTargets: readonly TrafficTarget[];
  readonly tcpRoutes: readonly TCPRoute[];
  /** The whole mesh's endpoints (buildMeshEndpoints). */
  readonly meshEndpoints: readonly SidecarMeshEndpoint[];
  /** Every pod: backends are mapped to service accounts by address. */
  readonly pods: readonly V1Pod[];
  /** Pods that may be sources (meshed and live): only a sidecar's connections carry an identity. */
  readonly sourcePods: readonly V1Pod[];
}

export interface PodAccess {
  readonly meshEndpoints: SidecarMeshEndpoint[];
  readonly inboundAccess: { rules: SidecarInboundRule[] };
}

/** The service accounts behind each service: those of the pods its endpoints point at. */
function serviceIdentities(inputs: AccessInputs): Map<string, Set<Identity>> {
  const identityByIp = new Map<string, Identity>();
  for (const pod of inputs.pods) for (const ip of podIps(pod)) identityByIp.set(ip, podIdentity(pod));
  const out = new Map<string, Set<Identity>>();
  for (const endpoint of inputs.meshEndpoints) {
    const set = out.get(endpoint.service) ?? new Set<Identity>();
    const ips = endpoint.backends.length > 0 ? endpoint.backends.map((b) => b.ip) : [endpoint.ip];
    for (const ip of ips) {
      const identity = identityByIp.get(ip);
      if (identity !== undefined) set.add(identity);
    }
    out.set(endpoint.service, set);
  }
  return out;
}

/** Returns the access of one service account; results are cached for the inputs' lifetime. */
export function createAccessPolicy(inputs: AccessInputs): (identity: Identity) => PodAccess {
  const services = serviceIdentities(inputs);
  const sourcesByIdentity = new Map<Identity, { ip: string; pod: string }[]>();
  for (const pod of inputs.sourcePods) {
    const list = sourcesByIdentity.get(podIdentity(pod)) ?? [];
    const name = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
    for (const ip of podIps(pod)) list.push({ ip, pod: name });
    sourcesByIdentity.set(podIdentity(pod), list);
  }
  const cache = new Map<Identity, PodAccess>();
  return (identity) => {
    const cached = cache.get(identity);
    if (cached) return cached;
    const allowed = outboundIdentities(inputs.trafficTargets, identity);
    const meshEndpoints: SidecarMeshEndpoint[] = [];
    for (const endpoint of inputs.meshEndpoints) {
      let allowedBy: string | undefined;
      for (const destination of services.get(endpoint.service) ?? []) {
        const target = allowed.get(destination);
        if (target !== undefined && (allowedBy === undefined || target < allowedBy)) allowedBy = target;
      }
      if (allowedBy !== undefined) meshEndpoints.push({ ...endpoint, allowedBy });
    }
    const rules = inboundGrants(inputs.trafficTargets, inputs.tcpRoutes, identity).map((grant) => ({
      trafficTarget: grant.trafficTarget,
      ...(grant.ports === undefined ? {} : { ports: [...grant.ports] }),
      sources: grant.sources.flatMap((source) => sourcesByIdentity.get(source) ?? []),
    }));
    const access = { meshEndpoints, inboundAccess: { rules } };
    cache.set(identity, access);
    return access;
  };
}

/**
 * SMI access control turned into sidecar config (pure): with permissive mode off, each pod gets as mesh
 * upstreams only the services whose service account a TrafficTarget lets its own reach (OSM's
 * ListOutboundServicesForIdentity), and as inbound rules the addresses of the meshed pods each TrafficTarget
 * lets in. Computed once per service account per reconcile.
 */
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import type { SidecarInboundAccess, SidecarMeshEndpoint } from "../config/sidecar-api.ts";
import { hasSidecarToken } from "../config/sidecar-token.ts";
import { type Identity, inboundGrants, outboundIdentities, podIdentity } from "../smi/access.ts";
import type { HttpRouteGroup } from "../smi/http-route-group.ts";
import type { TCPRoute, TrafficTarget } from "../smi/schema.ts";
import { podIps, servicePortProtocol } from "./mesh-endpoints.ts";

export interface AccessInputs {
  readonly trafficTargets: readonly TrafficTarget[];
  readonly tcpRoutes: readonly TCPRoute[];
  readonly httpRouteGroups: readonly HttpRouteGroup[];
  /** The mesh's Services: their ports' protocols say which pod ports serve HTTP. */
  readonly services: readonly V1Service[];
  /** The whole mesh's endpoints (buildMeshEndpoints). */
  readonly meshEndpoints: readonly SidecarMeshEndpoint[];
  /** Every pod: backends are mapped to service accounts by address. */
  readonly pods: readonly V1Pod[];
  /** Pods that may be sources (meshed and live): only a sidecar's connections carry an identity. */
  readonly sourcePods: readonly V1Pod[];
}

/** A pod on its way out (or done) can no longer send anything. */
export function isLive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return pod.metadata?.deletionTimestamp === undefined && phase !== "Succeeded" && phase !== "Failed";
}

/** The pods that may be sources: meshed (only a sidecar's connections carry an identity) and live. */
export function sourcePods(pods: readonly V1Pod[]): V1Pod[] {
  return pods.filter((p) => hasSidecarToken(p) && isLive(p));
}

export interface PodAccess {
  readonly meshEndpoints: SidecarMeshEndpoint[];
  readonly inboundAccess: SidecarInboundAccess;
}

function identitiesByIp(inputs: AccessInputs): Map<string, Identity> {
  const identityByIp = new Map<string, Identity>();
  for (const pod of inputs.pods) for (const ip of podIps(pod)) identityByIp.set(ip, podIdentity(pod));
  return identityByIp;
}

/**
 * The pod ports that serve an HTTP Service port, per service account of the pods behind them: a Service
 * port's backends (from its ClusterIP entries) are pod address:target port. Headless Services have no such
 * entry and are not seen here (their ports stay decided per connection).
 */
function httpPortsByIdentity(
  inputs: AccessInputs,
  identityByIp: Map<string, Identity>,
): Map<Identity, Set<number>> {
  const http = new Set<string>();
  for (const service of inputs.services) {
    const name = `${service.metadata?.namespace ?? ""}/${service.metadata?.name ?? ""}`;
    for (const port of service.spec?.ports ?? []) {
      if (servicePortProtocol(port) === "http") http.add(`${name}|${port.port}`);
    }
  }
  const out = new Map<Identity, Set<number>>();
  for (const endpoint of inputs.meshEndpoints) {
    if (!http.has(`${endpoint.service}|${endpoint.port}`)) continue;
    for (const backend of endpoint.backends) {
      const identity = identityByIp.get(backend.ip);
      if (identity === undefined) continue;
      const ports = out.get(identity) ?? new Set<number>();
      ports.add(backend.port);
      out.set(identity, ports);
    }
  }
  return out;
}

/** The service accounts behind each service: those of the pods its endpoints point at. */
function serviceIdentities(
  inputs: AccessInputs,
  identityByIp: Map<string, Identity>,
): Map<string, Set<Identity>> {
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
  const identityByIp = identitiesByIp(inputs);
  const services = serviceIdentities(inputs, identityByIp);
  const httpPorts = httpPortsByIdentity(inputs, identityByIp);
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
    const grants = inboundGrants(inputs.trafficTargets, inputs.tcpRoutes, inputs.httpRouteGroups, identity);
    const rules = grants.map((grant) => ({
      trafficTarget: grant.trafficTarget,
      ...(grant.ports === undefined ? {} : { ports: [...grant.ports] }),
      sources: grant.sources.flatMap((source) => sourcesByIdentity.get(source) ?? []),
      ...(grant.httpMatches === undefined ? {} : { httpMatches: [...grant.httpMatches] }),
    }));
    const ports = [...(httpPorts.get(identity) ?? [])].sort((a, b) => a - b);
    const inboundAccess = { rules, ...(ports.length === 0 ? {} : { httpPorts: ports }) };
    const access = { meshEndpoints, inboundAccess };
    cache.set(identity, access);
    return access;
  };
}

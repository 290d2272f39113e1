/**
 * The sidecar's per-connection decision, as pure functions over the config in force: proxy to a mesh
 * upstream, pass through to the original destination (egress on), or refuse. No I/O here, so every rule is
 * unit-tested (test/unit/sidecar/decide.test.ts).
 */
import type { SidecarConfig, SidecarMeshEndpoint } from "../config/sidecar-api.ts";
import { buildEgressTable, decideEgress, type EgressTable, type PortRule } from "../egress/decide.ts";
import { compileInboundAccess, decideInboundAccess, type InboundAccess } from "./access.ts";

/** An IP address (canonical text) and port. */
export interface Destination {
  readonly address: string;
  readonly port: number;
}

export type RefuseReason =
  /** Non-mesh destination while `enableEgress` is false (OSM: no matching filter chain). */
  | "egress-disabled"
  /** `maxDataPlaneConnections` reached. */
  | "connection-limit"
  /** No config received yet: fail closed. */
  | "no-config"
  /** The connection reached the listener without being redirected (would loop into the sidecar). */
  | "not-redirected"
  /** Permissive mode off and no TrafficTarget lets this source reach this port (OSM: RBAC denies). */
  | "access-denied";

/** With permissive mode off: the TrafficTarget that allowed a mesh connection (and, inbound, its source pod). */
export interface AllowedBy {
  readonly trafficTarget?: string;
  readonly sourcePod?: string;
}

export type Decision =
  | ({ readonly kind: "mesh"; readonly service: string; readonly upstream: Destination } & AllowedBy)
  /** To the original destination: egress on, or (`egress`) an Egress policy allows it. */
  | ({ readonly kind: "passthrough"; readonly upstream: Destination; readonly egress?: string } & AllowedBy)
  /**
   * Inbound to a port whose requests HTTPRouteGroup routes decide, one by one (inbound-http.ts): the
   * connection itself is allowed (AllowedBy names the TrafficTarget that let the source in).
   */
  | ({ readonly kind: "inbound-http"; readonly upstream: Destination; readonly peer: string } & AllowedBy)
  /** Egress policies that look at the first bytes (TLS server name, HTTP requests) decide: egress-inspect.ts. */
  | {
      readonly kind: "inspect";
      readonly upstream: Destination;
      readonly tls: readonly PortRule[];
      readonly http: readonly PortRule[];
    }
  /** `detail`: what was missing, e.g. `no Egress for service account curl allows 203.0.113.11:80`. */
  | { readonly kind: "refuse"; readonly reason: RefuseReason; readonly detail?: string };

/** The config compiled for lookups: `ip|port` → mesh endpoint, with a round-robin cursor per endpoint. */
export interface RoutingTable {
  readonly config: SidecarConfig;
  readonly endpoints: ReadonlyMap<string, SidecarMeshEndpoint>;
  /** Inbound access rules; undefined in permissive mode. */
  readonly inbound: InboundAccess;
  /** Round-robin position per endpoint key; the only mutable part (advanced by `decideOutbound`). */
  readonly cursors: Map<string, number>;
  /** The pod's Egress rules (present while egress is disabled). */
  readonly egress: EgressTable | undefined;
}

function key(address: string, port: number): string {
  return `${address}|${port}`;
}

/** Compiles a validated config. Later duplicates of an `ip:port` are ignored (first one wins, as listed). */
export function buildRoutingTable(config: SidecarConfig): RoutingTable {
  const endpoints = new Map<string, SidecarMeshEndpoint>();
  for (const endpoint of config.meshEndpoints) {
    const k = key(endpoint.ip, endpoint.port);
    if (!endpoints.has(k)) endpoints.set(k, endpoint);
  }
  const egress = config.egress === undefined ? undefined : buildEgressTable(config.egress);
  return { config, endpoints, inbound: compileInboundAccess(config), cursors: new Map(), egress };
}

/**
 * Whether the outbound listener (15001) should accept connections. OSM does not program the outbound
 * listener at all when the proxy has no upstreams and egress is off (docs/osm-behaviour.md §5.1), so clients get
 * *connection refused*; before the first config we are closed too (fail closed).
 */
export function outboundListenerWanted(table: RoutingTable | undefined): boolean {
  if (table === undefined) return false;
  return table.config.enableEgress || table.endpoints.size > 0 || (table.egress?.byPort.size ?? 0) > 0;
}

/** Whether `active` connections already fill `maxDataPlaneConnections` (0 = unlimited). */
export function atConnectionLimit(table: RoutingTable | undefined, active: number): boolean {
  const max = table?.config.maxDataPlaneConnections ?? 0;
  return max > 0 && active >= max;
}

/**
 * What becomes of an outbound connection to a destination that is no mesh endpoint: passed through (egress
 * on), refused (egress off, no Egress policy), or decided by the pod's Egress policies (`egress`, which may
 * read the first bytes). The relay threads' table (native-table.ts) is compiled from this.
 */
export function nonMeshOutbound(table: RoutingTable): "passthrough" | "refuse" | "egress" {
  if (table.config.enableEgress) return "passthrough";
  return table.egress === undefined ? "refuse" : "egress";
}

/**
 * Decides one outbound connection. `original` is the destination before REDIRECT; `local` is the address
 * the connection actually reached (the listener): equal means it was not redirected, and proxying it would
 * connect the sidecar to itself.
 */
export function decideOutbound(
  table: RoutingTable | undefined,
  original: Destination,
  local: Destination,
  active: number,
): Decision {
  if (table === undefined) return { kind: "refuse", reason: "no-config" };
  if (original.port === local.port && original.address === local.address) {
    return { kind: "refuse", reason: "not-redirected" };
  }
  if (atConnectionLimit(table, active)) return { kind: "refuse", reason: "connection-limit" };
  const k = key(original.address, original.port);
  const endpoint = table.endpoints.get(k);
  if (endpoint !== undefined) {
    const allowedBy = endpoint.allowedBy === undefined ? {} : { trafficTarget: endpoint.allowedBy };
    if (endpoint.backends.length === 0)
      return { kind: "mesh", service: endpoint.service, upstream: original, ...allowedBy };
    const cursor = table.cursors.get(k) ?? 0;
    table.cursors.set(k, (cursor + 1) % endpoint.backends.length);
    const backend = endpoint.backends[cursor % endpoint.backends.length]!;
    const upstream = { address: backend.ip, port: backend.port };
    return { kind: "mesh", service: endpoint.service, upstream, ...allowedBy };
  }
  const other = nonMeshOutbound(table);
  if (other === "passthrough") return { kind: "passthrough", upstream: original };
  if (other === "refuse" || table.egress === undefined) return { kind: "refuse", reason: "egress-disabled" };
  const verdict = decideEgress(table.egress, original.address, original.port);
  if (verdict.kind === "allow") return { kind: "passthrough", upstream: original, egress: verdict.egress };
  if (verdict.kind === "inspect")
    return { kind: "inspect", upstream: original, tls: verdict.tls, http: verdict.http };
  return { kind: "refuse", reason: "egress-disabled", detail: verdict.reason };
}

/**
 * Where an inbound (15003) connection from `peer` goes: the app on the original port over loopback, as
 * Envoy's local cluster does, when access control lets it in (always in permissive mode); on an HTTP port
 * with HTTPRouteGroup routes, request by request (`inbound-http`). Loopback, because
 * the pod IP would be redirected back to 15003 for uid 1500 (OSM rule
 * `-o lo ! -d 127.0.0.1/32 --uid-owner 1500 -j OSM_PROXY_IN_REDIRECT`).
 */
export function decideInbound(
  table: RoutingTable | undefined,
  original: Destination,
  local: Destination,
  family: 4 | 6,
  peer: string,
): Decision {
  if (original.port === local.port && original.address === local.address) {
    return { kind: "refuse", reason: "not-redirected" };
  }
  // Before the first config nothing says whether access control is on: fail closed.
  if (table === undefined) return { kind: "refuse", reason: "no-config" };
  const verdict = decideInboundAccess(table.inbound, peer, original.port);
  if (!verdict.allowed) return { kind: "refuse", reason: "access-denied" };
  const { allowed: _allowed, ...allowedBy } = verdict;
  const upstream = { address: family === 4 ? "127.0.0.1" : "::1", port: original.port };
  if (table.inbound?.routedPorts.has(original.port)) {
    return { kind: "inbound-http", upstream, peer, ...allowedBy };
  }
  return { kind: "passthrough", upstream, ...allowedBy };
}

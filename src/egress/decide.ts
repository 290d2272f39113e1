/**
 * The sidecar's Egress decision, pure: given the pod's Egress rules and a connection's destination (then,
 * when needed, its TLS server name or each HTTP request), which Egress allows it, or why nothing does.
 * Semantics: OSM's Envoy filter chains for Egress (`pkg/envoy/generator/lds/egress.go`,
 * `pkg/catalog/egress.go`; src/egress/README.md says where osm-ts differs):
 *
 * - `tcp` and `tcp-server-first`: destination port, and address within `ipAddresses` (none: any address).
 *   Decided at accept, before any byte: a server-first protocol works.
 * - `https`: port, address within `ipAddresses` if listed, and the ClientHello's SNI among `hosts` if listed.
 *   TLS is not terminated.
 * - `http`: port, address within `ipAddresses` if listed, each request's Host among `hosts` (as `host` or
 *   `host:port`) if listed, and the request satisfying one of the HTTPRouteGroup matches if the Egress names
 *   any (else 404, as OSM's Envoy answers a path outside its routes).
 */
import { cidrContains, parseCidr, tryParseIp } from "../net/index.ts";
import type { Cidr, IpAddress } from "../net/types.ts";
import type { EgressProtocol, SidecarEgressPolicy, SidecarEgressRule } from "./types.ts";

/** One rule for one port, ready for lookups. */
export interface PortRule {
  readonly egress: string;
  readonly protocol: EgressProtocol;
  readonly hosts: readonly string[];
  readonly ranges: readonly Cidr[];
  readonly rule: SidecarEgressRule;
}

/** A pod's Egress rules by destination port. */
export interface EgressTable {
  readonly serviceAccount: string;
  readonly byPort: ReadonlyMap<number, readonly PortRule[]>;
}

export function buildEgressTable(policy: SidecarEgressPolicy): EgressTable {
  const byPort = new Map<number, PortRule[]>();
  for (const rule of policy.rules) {
    const ranges = rule.ipAddresses.map(parseCidr);
    for (const port of rule.ports) {
      const list = byPort.get(port.number) ?? [];
      list.push({ egress: rule.egress, protocol: port.protocol, hosts: rule.hosts, ranges, rule });
      byPort.set(port.number, list);
    }
  }
  return { serviceAccount: policy.serviceAccount, byPort };
}

/** What the connection needs before it can be decided. */
export type EgressVerdict =
  /** Allowed at accept (tcp, tcp-server-first; https with neither hosts nor a closer match needed). */
  | { readonly kind: "allow"; readonly egress: string; readonly protocol: EgressProtocol }
  /** Allowed only by rules that look at the first bytes: read them, then `decideTls` / `decideHttpRequest`. */
  | { readonly kind: "inspect"; readonly tls: readonly PortRule[]; readonly http: readonly PortRule[] }
  | { readonly kind: "refuse"; readonly reason: string };

function inRanges(rule: PortRule, address: IpAddress | undefined): boolean {
  if (rule.ranges.length === 0) return true;
  return address !== undefined && rule.ranges.some((range) => cidrContains(range, address));
}

function serviceAccountName(table: EgressTable): string {
  return table.serviceAccount.slice(table.serviceAccount.indexOf("/") + 1);
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Decides at accept: `address` is the original destination's canonical text. */
export function decideEgress(table: EgressTable, address: string, port: number): EgressVerdict {
  const parsed = tryParseIp(address);
  const ip = parsed.ok ? parsed.value : undefined;
  const rules = (table.byPort.get(port) ?? []).filter((rule) => inRanges(rule, ip));
  const direct = rules.find((r) => r.protocol === "tcp" || r.protocol === "tcp-server-first");
  if (direct) return { kind: "allow", egress: direct.egress, protocol: direct.protocol };
  const tls = rules.filter((r) => r.protocol === "https");
  const http = rules.filter((r) => r.protocol === "http");
  if (tls.length > 0 || http.length > 0) return { kind: "inspect", tls, http };
  return {
    kind: "refuse",
    reason: `no Egress for service account ${serviceAccountName(table)} allows ${hostPort(address, port)}`,
  };
}

/** Whether `name` (lower case, no port) is one of `hosts`; `*.example.com` covers every subdomain. */
export function hostMatches(hosts: readonly string[], name: string): boolean {
  const host = name.toLowerCase().replace(/\.$/, "");
  return hosts.some((h) =>
    h.startsWith("*.") ? host.endsWith(h.slice(1)) && host.length > h.length - 1 : h === host,
  );
}

/** The TLS path: the ClientHello's server name (undefined when it sent none). */
export function decideTls(
  table: EgressTable,
  rules: readonly PortRule[],
  serverName: string | undefined,
  destination: { readonly address: string; readonly port: number },
): { kind: "allow"; egress: string } | { kind: "refuse"; reason: string } {
  const rule = rules.find(
    (r) => r.hosts.length === 0 || (serverName !== undefined && hostMatches(r.hosts, serverName)),
  );
  if (rule) return { kind: "allow", egress: rule.egress };
  const what = serverName === undefined ? "TLS without a server name (SNI)" : `TLS server name ${serverName}`;
  return {
    kind: "refuse",
    reason: `no Egress for service account ${serviceAccountName(table)} allows ${what} to ${hostPort(destination.address, destination.port)}`,
  };
}

/** The Host header split into name and port (`[v6]:port` too). */
export function splitHostHeader(host: string): { name: string; port: number | undefined } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracket) return { name: bracket[1]!.toLowerCase(), port: bracket[2] ? Number(bracket[2]) : undefined };
  const colon = host.lastIndexOf(":");
  if (colon > 0 && /^\d+$/.test(host.slice(colon + 1)) && host.indexOf(":") === colon) {
    return { name: host.slice(0, colon).toLowerCase(), port: Number(host.slice(colon + 1)) };
  }
  return { name: host.toLowerCase(), port: undefined };
}

/**
 * The http rules whose host list admits this Host header on this port (`host`, or `host:port` with the
 * connection's port, as OSM's virtual host domains); a rule without hosts admits any Host.
 */
export function rulesForHost(rules: readonly PortRule[], host: string | undefined, port: number): PortRule[] {
  return rules.filter((rule) => {
    if (rule.hosts.length === 0) return true;
    if (host === undefined) return false;
    const split = splitHostHeader(host);
    return (split.port === undefined || split.port === port) && hostMatches(rule.hosts, split.name);
  });
}

/** Why no http rule admits a request's Host. */
export function hostRefusal(
  table: EgressTable,
  host: string | undefined,
  destination: { readonly address: string; readonly port: number },
): string {
  const what = host === undefined ? "a request without a Host header" : `host ${host}`;
  return `no Egress for service account ${serviceAccountName(table)} allows ${what} on ${hostPort(destination.address, destination.port)}`;
}

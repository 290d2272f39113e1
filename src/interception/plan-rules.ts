/**
 * The building blocks both planners share: OSM's static ports and names, rule constructors, and the rules
 * that start every egress filter. Pure.
 */
import type { Provenance } from "../config/policy-types.ts";
import {
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  ENVOY_UID,
  HEALTHCHECK_PORT,
  LIVENESS_PROBE_PORT,
  READINESS_PROBE_PORT,
  STARTUP_PROBE_PORT,
} from "../constants.ts";
import type { IpFamily } from "../net/types.ts";
import type { PlannedRule, RuleMatch, RuleTarget } from "./types.ts";

/** Ports that bypass the inbound redirect, in OSM's order (iptables.go). */
export const INBOUND_STATIC_SKIP_PORTS: readonly number[] = [
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  LIVENESS_PROBE_PORT,
  READINESS_PROBE_PORT,
  STARTUP_PROBE_PORT,
  HEALTHCHECK_PORT,
];

export const POD_IP_PLACEHOLDER = "$POD_IP";

/** The filter chain that drops non-TCP egress when egress is disabled (osm-ts's own; OSM has none). */
export const CHAIN_EGRESS = "OSM_PROXY_EGRESS";
/** ICMPv6 IPv6 cannot work without: router solicitation, neighbour solicitation/advertisement, MLDv2 reports. */
export const EGRESS_ICMPV6_TYPES: readonly number[] = [133, 135, 136, 143];

export const LOOPBACK: Record<IpFamily, string> = { 4: "127.0.0.1/32", 6: "::1/128" };
export const GLOBAL = (field: string): Provenance => ({ source: "meshconfig", field });

export function rule(
  family: IpFamily | "inet",
  chain: string,
  position: "append" | "insert",
  match: RuleMatch,
  target: RuleTarget,
  slug: string,
  provenance: readonly Provenance[] = [],
): PlannedRule {
  return { family, table: "nat", chain, position, match, target, slug, provenance };
}

/** An egress filter rule (always appended, in the filter table). */
export function filterRule(
  family: IpFamily | "inet",
  chain: string,
  match: RuleMatch,
  target: RuleTarget,
  slug: string,
  provenance: readonly Provenance[] = [],
): PlannedRule {
  return { family, table: "filter", chain, position: "append", match, target, slug, provenance };
}

export const TCP = { protocol: "tcp" } as const;
export const RETURN: RuleTarget = { kind: "return" };
export const DROP: RuleTarget = { kind: "drop" };
export const jump = (chain: string): RuleTarget => ({ kind: "jump", chain });

/**
 * The rules both backends put before the final drop, for one family: TCP (the nat rules and the sidecar
 * decide it), loopback, the sidecar's uid, replies to connections the pod accepted, then IPv6's own ICMPv6.
 */
export function egressHead(chain: string, family: IpFamily | "inet"): PlannedRule[] {
  return [
    filterRule(family, chain, TCP, RETURN, "egress-tcp"),
    filterRule(family, chain, { outInterface: "lo" }, RETURN, "egress-loopback"),
    filterRule(family, chain, { uidOwner: { uid: ENVOY_UID } }, RETURN, "egress-sidecar-uid"),
    filterRule(family, chain, { ctState: ["related", "established"] }, RETURN, "egress-replies"),
  ];
}

export function egressIcmpv6(chain: string): PlannedRule[] {
  return EGRESS_ICMPV6_TYPES.map((type) =>
    filterRule(6, chain, { protocol: "ipv6-icmp", icmpv6Type: type }, RETURN, `egress-icmpv6-${type}`),
  );
}

export const DNS = (family: IpFamily): RuleMatch => ({
  protocol: "udp",
  destinationPort: 53,
  resolvers: family,
});

/**
 * The interception rule IR: what the plan produces and every renderer, `explain` and `verify` consume.
 * Plain data, no exec strings: a rule is a match, a target and a comment slug.
 */
import type { Provenance } from "../config/policy-types.ts";
import type { Cidr, IpAddress, IpFamily } from "../net/types.ts";

export type Backend = "iptables" | "nftables";
/** The concrete tool family that programs the kernel (detected, or chosen with an override). */
export type BackendVariant = "iptables-legacy" | "iptables-nft" | "nftables";

/** A destination set of the nft rendering: host entries go into hash sets, prefixes into interval sets. */
export interface AddressSet {
  readonly name: string;
  readonly family: IpFamily;
  readonly kind: "hosts" | "prefixes";
  readonly entries: readonly { readonly cidr: Cidr; readonly provenance: Provenance }[];
}

export interface PortSet {
  readonly name: string;
  readonly entries: readonly { readonly port: number; readonly provenance: Provenance }[];
}

export interface RuleMatch {
  readonly protocol?: "tcp" | "udp" | "ipv6-icmp";
  /** Conntrack state (egress filter: replies to connections the pod accepted). */
  readonly ctState?: readonly ("established" | "related")[];
  /** One ICMPv6 type (egress filter: neighbour discovery and MLD, which IPv6 needs to work at all). */
  readonly icmpv6Type?: number;
  /**
   * The destination is one of the pod's DNS resolvers of this family (`nameserver` lines of /etc/resolv.conf),
   * known only where the rules are programmed: the init script reads them at run time; `plan.resolvers` has
   * them when the caller knows them (apply, verify, explain).
   */
  readonly resolvers?: IpFamily;
  readonly inInterface?: string;
  readonly outInterface?: string;
  /** Named interface set (nft rendering only). */
  readonly inInterfaceSet?: string;
  readonly outInterfaceSet?: string;
  /** Single prefix, exactly as the user wrote it (iptables prints and masks it itself). */
  readonly destination?: { readonly text: string; readonly cidr: Cidr; readonly negate?: boolean };
  /** Named address set (nft rendering only). */
  readonly destinationSet?: string;
  readonly destinationPort?: number;
  /** One multiport match: at most MULTIPORT_MAX_PORTS ports. */
  readonly destinationPorts?: readonly number[];
  /** Named port set (nft rendering only). */
  readonly destinationPortSet?: string;
  readonly uidOwner?: { readonly uid: number; readonly negate?: boolean };
}

export type RuleTarget =
  | { readonly kind: "jump"; readonly chain: string }
  | { readonly kind: "return" }
  | { readonly kind: "accept" }
  | { readonly kind: "drop" }
  | { readonly kind: "redirect"; readonly port: number }
  /** DNAT to the pod's IP: `$POD_IP`, expanded by the init container's shell, or a literal. */
  | { readonly kind: "dnat"; readonly to: string };

export interface PlannedRule {
  /** 4, 6, or "inet" for the nft table that serves both. */
  readonly family: IpFamily | "inet";
  /** nat: the redirect to the sidecar (OSM's); filter: the non-TCP egress filter (egress disabled only). */
  readonly table: "nat" | "filter";
  readonly chain: string;
  /** How OSM emits it: `-A` appends, `-I` inserts at the top (so later inserts end up above). */
  readonly position: "append" | "insert";
  readonly match: RuleMatch;
  readonly target: RuleTarget;
  /** Unique within its chain; rendered as comment `osm/<slug>` where the output format allows it. */
  readonly slug: string;
  /** Where the rule's entries came from; empty for static rules. */
  readonly provenance: readonly Provenance[];
}

/** One family's iptables rules in OSM's emission order. */
export interface IptablesPayload {
  readonly family: IpFamily;
  readonly table: "nat" | "filter";
  readonly chains: readonly string[];
  readonly rules: readonly PlannedRule[];
}

export interface NftPlan {
  readonly table: string;
  readonly addressSets: readonly AddressSet[];
  readonly portSets: readonly PortSet[];
  readonly interfaceSet: { readonly name: string; readonly entries: readonly string[] };
  /** Base chains (hooked) and regular chains, rules in evaluation order. */
  readonly chains: readonly NftChain[];
}

export interface NftChain {
  readonly name: string;
  readonly hook?: {
    readonly type: "nat" | "filter";
    readonly hook: "prerouting" | "output";
    readonly priority: number;
  };
  readonly rules: readonly PlannedRule[];
}

export interface InterceptionPlan {
  /** IPv4 payload (always) and IPv6 payload (when the policy has IPv6 entries, or `ipv6: true`). */
  readonly iptables: { readonly v4: IptablesPayload; readonly v6: IptablesPayload | undefined };
  /**
   * With egress disabled: the filter-table payloads that drop non-TCP traffic (UDP, ICMP, ...) to destinations
   * the sidecar would handle, except DNS to the pod's resolvers. Undefined with egress enabled (OSM's rules only).
   */
  readonly egressFilter: { readonly v4: IptablesPayload; readonly v6: IptablesPayload } | undefined;
  /** The pod's DNS resolvers when the caller knows them (the init script reads them at run time instead). */
  readonly resolvers: readonly IpAddress[];
  readonly nft: NftPlan;
  readonly podIpMode: boolean;
}

/**
 * The effective traffic policy: MeshConfig + namespace + pod annotations, merged once (OSM's order) and
 * normalised. This is the contract between config/ (which builds it) and interception/, injector/ and
 * sidecar/ (which consume it). Pure data: safe to serialise.
 */
import type { Cidr } from "../net/types.ts";

/** Where an entry came from: the global MeshConfig field, or a pod annotation. */
export type Provenance =
  | { readonly source: "meshconfig"; readonly field: string }
  | { readonly source: "annotation"; readonly key: string }
  /** A DNS resolver of the pod (its /etc/resolv.conf), allowed by the egress filter. */
  | { readonly source: "resolv.conf" };

/**
 * One CIDR list item, parsed once at the boundary: the text exactly as written (trimmed), its prefix (masked),
 * whether host bits were set, and where it came from. Code further in reads these, never the text again.
 */
export interface GivenCidr {
  readonly given: string;
  readonly cidr: Cidr;
  readonly hostBitsSet: boolean;
  readonly provenance: Provenance;
}

export interface CidrEntry {
  /** Canonical (masked, aggregated) prefix. */
  readonly cidr: Cidr;
  /**
   * The text exactly as given (trimmed), e.g. `10.0.0.1/8`, of the first item (in merge order) that
   * contributed to this prefix; `provenance` is that item's.
   */
  readonly given: string;
  readonly provenance: Provenance;
  /**
   * Every as-given item that contributed to this prefix (aggregation can merge several, e.g. two adjacent
   * /25s from the MeshConfig and a pod annotation), in merge order.
   */
  readonly sources?: readonly { readonly given: string; readonly provenance: Provenance }[];
}

export interface PortEntry {
  readonly port: number;
  readonly provenance: Provenance;
}

export interface PolicyWarning {
  /** Stable slug, e.g. `exclude-everything`, `host-bits-set`. */
  readonly code: string;
  readonly message: string;
}

export type LocalProxyMode = "Localhost" | "PodIP";

export interface EffectiveTrafficPolicy {
  /**
   * The merged lists as OSM hands them to generateIptablesCommands (IPs: pod then global; ports: global then
   * pod; exact-string dedup keeping the first), each item typed and carrying its provenance. The
   * OSM-identical iptables renderer prints exactly these texts, in this order.
   */
  readonly asGiven: {
    readonly outboundIPRangeExclusionList: readonly GivenCidr[];
    readonly outboundIPRangeInclusionList: readonly GivenCidr[];
    readonly outboundPortExclusionList: readonly PortEntry[];
    readonly inboundPortExclusionList: readonly PortEntry[];
    readonly networkInterfaceExclusionList: readonly string[];
  };
  /** Canonical view: masked, deduplicated, aggregated, split by family, entries in ascending order. */
  readonly canonical: {
    readonly outboundIPRangeExclusions: {
      readonly v4: readonly CidrEntry[];
      readonly v6: readonly CidrEntry[];
    };
    readonly outboundIPRangeInclusions: {
      readonly v4: readonly CidrEntry[];
      readonly v6: readonly CidrEntry[];
    };
    readonly outboundPortExclusions: readonly PortEntry[];
    readonly inboundPortExclusions: readonly PortEntry[];
    readonly networkInterfaceExclusions: readonly string[];
  };
  readonly localProxyMode: LocalProxyMode;
  /** Live (xDS-level) setting; not part of the interception rules, but the sidecar and explain need it. */
  readonly enableEgress: boolean;
  readonly warnings: readonly PolicyWarning[];
}

/**
 * The Egress section of the sidecar config document (`osm.sidecar/v1`, field `egress`): what the controller
 * computed for one pod's service account (rules.ts) and the sidecar enforces (decide.ts). No dependencies:
 * every sidecar loads it.
 */

/** The protocols of an Egress port (OSM's `constants.Protocol*`). */
export const EGRESS_PROTOCOLS = ["http", "https", "tcp", "tcp-server-first"] as const;
export type EgressProtocol = (typeof EGRESS_PROTOCOLS)[number];

/** An HTTPRouteGroup match as the controller validated it, with the group (`<namespace>/<name>`) it came from. */
export interface SidecarHttpMatch {
  routeGroup: string;
  name: string;
  pathRegex?: string;
  methods?: string[];
  headers?: Record<string, string>[];
}

export interface SidecarEgressRule {
  /** `<namespace>/<name>` of the Egress: named in access logs, metrics and `osm explain`. */
  egress: string;
  /** Lower-case host names; `*.example.com` matches subdomains. Empty: any host. */
  hosts: string[];
  /** Destination ranges, canonical CIDR text. Empty: any address. */
  ipAddresses: string[];
  ports: { number: number; protocol: EgressProtocol }[];
  /**
   * The HTTPRouteGroup matches http requests must satisfy. Absent: the Egress names no HTTPRouteGroup, any
   * request is allowed; empty: it names only groups that do not exist, no request is (404).
   */
  httpMatches?: SidecarHttpMatch[];
  /** Referenced HTTPRouteGroups that do not exist (`<namespace>/<name>`). */
  missingRouteGroups?: string[];
}

/** Present while MeshConfig `enableEgress` is false. */
export interface SidecarEgressPolicy {
  /** `<namespace>/<name>` of the pod's service account, for refusal messages. */
  serviceAccount: string;
  rules: SidecarEgressRule[];
}

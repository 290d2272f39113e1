/**
 * Builds EffectiveTrafficPolicy values by hand for interception tests and benchmarks, independent of
 * config/: OSM's merge order (IPs pod then global, ports global then pod, exact-string dedup) and a canonical
 * view (masked, deduplicated, aggregated, split by family, ascending).
 */
import type {
  CidrEntry,
  EffectiveTrafficPolicy,
  GivenCidr,
  LocalProxyMode,
  PortEntry,
  Provenance,
} from "../../../src/config/policy-types.ts";
import { aggregateCidrs, cidrCovers, compareCidrs, parseCidr, tryParseCidr } from "../../../src/net/index.ts";

export interface PolicyInput {
  readonly outboundIPRangeExclusionList?: readonly string[];
  readonly outboundIPRangeInclusionList?: readonly string[];
  readonly outboundPortExclusionList?: readonly number[];
  readonly inboundPortExclusionList?: readonly number[];
  readonly networkInterfaceExclusionList?: readonly string[];
  readonly localProxyMode?: LocalProxyMode;
  readonly enableEgress?: boolean;
  /** Pod annotation lists, merged as OSM does. */
  readonly podOutboundIPRangeExclusions?: readonly string[];
  readonly podOutboundIPRangeInclusions?: readonly string[];
  readonly podOutboundPortExclusions?: readonly number[];
  readonly podInboundPortExclusions?: readonly number[];
}

const field = (name: string): Provenance => ({ source: "meshconfig", field: `spec.traffic.${name}` });
const annotation = (key: string): Provenance => ({ source: "annotation", key: `openservicemesh.io/${key}` });

function dedup<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** Exact-key dedup keeping the first, as OSM merges its lists. */
function firstBy<T>(items: readonly T[], key: (item: T) => string | number): T[] {
  const seen = new Set<string | number>();
  return items.filter((item) => !seen.has(key(item)) && Boolean(seen.add(key(item))));
}

function given(tagged: readonly { given: string; provenance: Provenance }[]): GivenCidr[] {
  return firstBy(tagged, (t) => t.given).map((t) => {
    const r = tryParseCidr(t.given);
    if (!r.ok) throw new Error(`test policy: ${t.given} ${r.reason}`);
    return { given: t.given, cidr: r.cidr, hostBitsSet: r.hostBitsSet, provenance: t.provenance };
  });
}

function canonicalCidrs(tagged: readonly { given: string; provenance: Provenance }[]): {
  v4: CidrEntry[];
  v6: CidrEntry[];
} {
  const parsed = tagged.map((t) => ({ ...t, cidr: parseCidr(t.given) }));
  const merged = aggregateCidrs(parsed.map((p) => p.cidr)).sort(compareCidrs);
  const byText = new Map<string, (typeof parsed)[number]>();
  for (const p of parsed) if (!byText.has(p.cidr.toString())) byText.set(p.cidr.toString(), p);
  const entries: CidrEntry[] = merged.map((cidr) => {
    const first = byText.get(cidr.toString()) ?? parsed.find((p) => cidrCovers(cidr, p.cidr)) ?? parsed[0]!;
    return { cidr, given: first.given, provenance: first.provenance };
  });
  return { v4: entries.filter((e) => e.cidr.family === 4), v6: entries.filter((e) => e.cidr.family === 6) };
}

function canonicalPorts(tagged: readonly { port: number; provenance: Provenance }[]): PortEntry[] {
  const seen = new Map<number, PortEntry>();
  for (const t of tagged) if (!seen.has(t.port)) seen.set(t.port, { port: t.port, provenance: t.provenance });
  return [...seen.values()].sort((a, b) => a.port - b.port);
}

export function buildTestPolicy(input: PolicyInput = {}): EffectiveTrafficPolicy {
  const ex = [
    ...(input.podOutboundIPRangeExclusions ?? []).map((given) => ({
      given,
      provenance: annotation("outbound-ip-range-exclusion-list"),
    })),
    ...(input.outboundIPRangeExclusionList ?? []).map((given) => ({
      given,
      provenance: field("outboundIPRangeExclusionList"),
    })),
  ];
  const inc = [
    ...(input.podOutboundIPRangeInclusions ?? []).map((given) => ({
      given,
      provenance: annotation("outbound-ip-range-inclusion-list"),
    })),
    ...(input.outboundIPRangeInclusionList ?? []).map((given) => ({
      given,
      provenance: field("outboundIPRangeInclusionList"),
    })),
  ];
  const outPorts = [
    ...(input.outboundPortExclusionList ?? []).map((port) => ({
      port,
      provenance: field("outboundPortExclusionList"),
    })),
    ...(input.podOutboundPortExclusions ?? []).map((port) => ({
      port,
      provenance: annotation("outbound-port-exclusion-list"),
    })),
  ];
  const inPorts = [
    ...(input.inboundPortExclusionList ?? []).map((port) => ({
      port,
      provenance: field("inboundPortExclusionList"),
    })),
    ...(input.podInboundPortExclusions ?? []).map((port) => ({
      port,
      provenance: annotation("inbound-port-exclusion-list"),
    })),
  ];
  const ifaces = dedup(input.networkInterfaceExclusionList ?? []);
  return {
    asGiven: {
      outboundIPRangeExclusionList: given(ex),
      outboundIPRangeInclusionList: given(inc),
      outboundPortExclusionList: firstBy(outPorts, (p) => p.port),
      inboundPortExclusionList: firstBy(inPorts, (p) => p.port),
      networkInterfaceExclusionList: ifaces,
    },
    canonical: {
      outboundIPRangeExclusions: canonicalCidrs(ex),
      outboundIPRangeInclusions: canonicalCidrs(inc),
      outboundPortExclusions: canonicalPorts(outPorts),
      inboundPortExclusions: canonicalPorts(inPorts),
      networkInterfaceExclusions: [...ifaces].sort(),
    },
    localProxyMode: input.localProxyMode ?? "Localhost",
    enableEgress: input.enableEgress ?? true,
    warnings: [],
  };
}

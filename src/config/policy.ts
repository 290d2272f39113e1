/**
 * The effective traffic policy: MeshConfig + namespace + pod annotations → EffectiveTrafficPolicy, merged
 * exactly as OSM's injector does (`pkg/injector/patch.go: configurePodInit`, `exclusions.go`, docs/osm-behaviour.md §1.6),
 * plus a canonical, aggregated view with provenance, and warnings for footguns.
 */
import {
  ANNOTATION_INBOUND_PORT_EXCLUSION_LIST,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
  ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST,
  ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST,
  MULTIPORT_MAX_PORTS,
} from "../constants.ts";
import {
  aggregateCidrs,
  type Cidr,
  cidrCovers,
  cidrRange,
  compareCidrs,
  parseCidr,
  tryParseCidr,
} from "../net/index.ts";
import { type AnnotationCidr, parsePodAnnotations } from "./annotations.ts";
import type {
  CidrEntry,
  EffectiveTrafficPolicy,
  GivenCidr,
  PolicyWarning,
  PortEntry,
  Provenance,
} from "./policy-types.ts";
import type { MeshConfig } from "./schema.ts";

const FIELD_EXCLUSIONS = "spec.traffic.outboundIPRangeExclusionList";
const FIELD_INCLUSIONS = "spec.traffic.outboundIPRangeInclusionList";
const FIELD_OUT_PORTS = "spec.traffic.outboundPortExclusionList";
const FIELD_IN_PORTS = "spec.traffic.inboundPortExclusionList";

export interface PolicyInputs {
  /** The pod's annotations (exclusion lists are read from the pod only, as OSM does). */
  readonly podAnnotations?: Readonly<Record<string, string>>;
  /** The namespace's annotations: validated; exclusion keys on a namespace are ignored by OSM (warned). */
  readonly namespaceAnnotations?: Readonly<Record<string, string>>;
}

/** Renders a provenance for people: the MeshConfig field, or `pod annotation <key>`. */
export function describeProvenance(p: Provenance): string {
  if (p.source === "resolv.conf") return "the pod's DNS resolvers (nameserver in /etc/resolv.conf)";
  return p.source === "meshconfig" ? `MeshConfig ${p.field}` : `pod annotation ${p.key}`;
}

/** OSM `mergeIPRangeLists(pod, global)`: pod entries first, then global; exact-string dedup, first kept. */
function mergeIpRanges(pod: readonly GivenCidr[], global: readonly GivenCidr[]): GivenCidr[] {
  const seen = new Set<string>();
  const out: GivenCidr[] = [];
  for (const item of [...pod, ...global]) {
    if (seen.has(item.given)) continue;
    seen.add(item.given);
    out.push(item);
  }
  return out;
}

/** OSM `mergePortExclusionLists(pod, global)`: global entries first, then pod; dedup by value, first kept. */
function mergePorts(pod: readonly PortEntry[], global: readonly PortEntry[]): PortEntry[] {
  const seen = new Set<number>();
  const out: PortEntry[] = [];
  for (const item of [...global, ...pod]) {
    if (seen.has(item.port)) continue;
    seen.add(item.port);
    out.push(item);
  }
  return out;
}

function fromMeshConfig(list: readonly string[], field: string): GivenCidr[] {
  return list.map((given) => {
    const r = tryParseCidr(given);
    // validateMeshConfig guarantees valid items; parseCidr throws with the reason if handed an unvalidated one.
    const cidr = r.ok ? r.cidr : parseCidr(given);
    return { given, cidr, hostBitsSet: r.ok && r.hostBitsSet, provenance: { source: "meshconfig", field } };
  });
}

function fromAnnotation(list: readonly AnnotationCidr[] | undefined, key: string): GivenCidr[] {
  return (list ?? []).map((a) => ({ ...a, provenance: { source: "annotation", key } }));
}

/** Index of the prefix in `sorted` (disjoint, in compareCidrs order) that contains `cidr`, or -1. */
function findContaining(sorted: readonly Cidr[], cidr: Cidr): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = sorted[mid]!;
    if (m.family < cidr.family || (m.family === cidr.family && m.address <= cidr.address)) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found >= 0 && cidrCovers(sorted[found]!, cidr) ? found : -1;
}

/**
 * One canonical entry per aggregated prefix; `given`/`provenance` are those of the first contributing item
 * (in merge order), `sources` lists every contributing item. Each input prefix lies inside exactly one
 * aggregated prefix (aligned blocks nest or are disjoint), so this is a binary search per item.
 */
function canonicalCidrs(items: readonly GivenCidr[]): { v4: CidrEntry[]; v6: CidrEntry[] } {
  const aggregated = aggregateCidrs(items.map((i) => i.cidr));
  const buckets: GivenCidr[][] = aggregated.map(() => []);
  for (const item of items) buckets[findContaining(aggregated, item.cidr)]!.push(item);
  const entries = aggregated.map((cidr, k): CidrEntry => {
    const contributors = buckets[k]!;
    const first = contributors[0]!;
    return {
      cidr,
      given: first.given,
      provenance: first.provenance,
      sources: contributors.map((c) => ({ given: c.given, provenance: c.provenance })),
    };
  });
  return { v4: entries.filter((e) => e.cidr.family === 4), v6: entries.filter((e) => e.cidr.family === 6) };
}

function canonicalPorts(ports: readonly PortEntry[]): PortEntry[] {
  return [...ports].sort((a, b) => a.port - b.port);
}

/**
 * Builds the effective traffic policy of one pod. Throws MeshError InvalidAnnotation (OSM's text) when an
 * annotation is invalid; `meshConfig` must come from validateMeshConfig.
 */
export function buildEffectivePolicy(
  meshConfig: MeshConfig,
  inputs: PolicyInputs = {},
): EffectiveTrafficPolicy {
  const traffic = meshConfig.spec.traffic;
  const pod = parsePodAnnotations(inputs.podAnnotations ?? {});
  const namespace = parsePodAnnotations(inputs.namespaceAnnotations ?? {});

  const exclusions = mergeIpRanges(
    fromAnnotation(pod.outboundIPRangeExclusionList, ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST),
    fromMeshConfig(traffic.outboundIPRangeExclusionList, FIELD_EXCLUSIONS),
  );
  const inclusions = mergeIpRanges(
    fromAnnotation(pod.outboundIPRangeInclusionList, ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST),
    fromMeshConfig(traffic.outboundIPRangeInclusionList ?? [], FIELD_INCLUSIONS),
  );
  const portsFrom = (list: readonly number[] | undefined, provenance: Provenance): PortEntry[] =>
    (list ?? []).map((port) => ({ port, provenance }));
  const outPorts = mergePorts(
    portsFrom(pod.outboundPortExclusionList, {
      source: "annotation",
      key: ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST,
    }),
    portsFrom(traffic.outboundPortExclusionList, { source: "meshconfig", field: FIELD_OUT_PORTS }),
  );
  const inPorts = mergePorts(
    portsFrom(pod.inboundPortExclusionList, {
      source: "annotation",
      key: ANNOTATION_INBOUND_PORT_EXCLUSION_LIST,
    }),
    portsFrom(traffic.inboundPortExclusionList, { source: "meshconfig", field: FIELD_IN_PORTS }),
  );
  const interfaces = [...(traffic.networkInterfaceExclusionList ?? [])];

  const canonicalExclusions = canonicalCidrs(exclusions);
  const canonicalInclusions = canonicalCidrs(inclusions);
  const policy: EffectiveTrafficPolicy = {
    asGiven: {
      outboundIPRangeExclusionList: exclusions,
      outboundIPRangeInclusionList: inclusions,
      outboundPortExclusionList: outPorts,
      inboundPortExclusionList: inPorts,
      networkInterfaceExclusionList: interfaces,
    },
    canonical: {
      outboundIPRangeExclusions: canonicalExclusions,
      outboundIPRangeInclusions: canonicalInclusions,
      outboundPortExclusions: canonicalPorts(outPorts),
      inboundPortExclusions: canonicalPorts(inPorts),
      networkInterfaceExclusions: [...new Set(interfaces)].sort(),
    },
    localProxyMode: meshConfig.spec.sidecar.localProxyMode ?? "Localhost",
    enableEgress: traffic.enableEgress,
    warnings: [],
  };
  const warnings = detectWarnings(policy, exclusions, inclusions, inputs.namespaceAnnotations ?? {});
  void namespace; // parsed for validation only: OSM reads exclusion lists from the pod (docs/osm-behaviour.md §1.6)
  return { ...policy, warnings };
}

function detectWarnings(
  policy: EffectiveTrafficPolicy,
  exclusions: readonly GivenCidr[],
  inclusions: readonly GivenCidr[],
  namespaceAnnotations: Readonly<Record<string, string>>,
): PolicyWarning[] {
  const warnings: PolicyWarning[] = [];
  const from = (i: GivenCidr) => `(${describeProvenance(i.provenance)})`;

  for (const e of exclusions) {
    if (e.cidr.prefixLength === 0) {
      warnings.push({
        code: "exclude-everything",
        message: `exclusion ${e.given} ${from(e)} covers every IPv${e.cidr.family} destination: no outbound IPv${e.cidr.family} traffic reaches the sidecar (no mTLS, no policy, no egress control)`,
      });
    }
  }
  for (const family of [4, 6] as const) {
    const agg =
      family === 4
        ? policy.canonical.outboundIPRangeExclusions.v4
        : policy.canonical.outboundIPRangeExclusions.v6;
    if (
      agg.some((c) => c.cidr.prefixLength === 0) &&
      !exclusions.some((e) => e.cidr.family === family && e.cidr.prefixLength === 0)
    ) {
      warnings.push({
        code: "exclude-everything",
        message: `together, the exclusions cover every IPv${family} destination: no outbound IPv${family} traffic reaches the sidecar`,
      });
    }
  }
  for (const list of [exclusions, inclusions]) {
    for (const e of list) {
      if (e.hostBitsSet) {
        const kind = list === exclusions ? "exclusion" : "inclusion";
        const single = `${e.given.split("/")[0]}/${e.cidr.family === 4 ? 32 : 128}`;
        warnings.push({
          code: "host-bits-set",
          message: `${kind} ${e.given} ${from(e)} has host bits set: it means ${e.cidr.toString()} (${rangeSize(e.cidr)}); write ${single} for that one address`,
        });
      }
    }
  }
  for (const list of [exclusions, inclusions]) {
    const kind = list === exclusions ? "exclusion" : "inclusion";
    // Sweep in address order (ties: shorter prefix, then written first): prefixes nest or are disjoint, so an
    // entry is redundant exactly when the widest entry seen so far reaches past its end.
    const sorted = list
      .map((item, index) => ({ item, index, ...cidrRange(item.cidr) }))
      .sort((x, y) => compareCidrs(x.item.cidr, y.item.cidr) || x.index - y.index);
    const redundant: { index: number; warning: PolicyWarning }[] = [];
    let outer: (typeof sorted)[number] | undefined;
    for (const r of sorted) {
      if (outer && outer.item.cidr.family === r.item.cidr.family && outer.last >= r.last) {
        redundant.push({
          index: r.index,
          warning: {
            code: "redundant-entry",
            message: `${kind} ${r.item.given} ${from(r.item)} is already covered by ${outer.item.given} ${from(outer.item)}`,
          },
        });
      } else {
        outer = r;
      }
    }
    warnings.push(...redundant.sort((x, y) => x.index - y.index).map((r) => r.warning));
  }
  const included = [
    ...policy.canonical.outboundIPRangeInclusions.v4,
    ...policy.canonical.outboundIPRangeInclusions.v6,
  ];
  if (included.length > 0) {
    const families = new Set(included.map((i) => i.cidr.family));
    for (const e of exclusions) {
      const container = findContaining(
        included.map((i) => i.cidr),
        e.cidr,
      );
      const inc = (i: CidrEntry) => `inclusion ${i.cidr.toString()} (${describeProvenance(i.provenance)})`;
      if (container >= 0) {
        warnings.push({
          code: "exclusion-inside-inclusion",
          message: `exclusion ${e.given} ${from(e)} lies inside ${inc(included[container]!)}: exclusions are evaluated first, so it is still bypassed`,
        });
        continue;
      }
      const covered = included.filter((i) => cidrCovers(e.cidr, i.cidr));
      for (const i of covered) {
        warnings.push({
          code: "exclusion-covers-inclusion",
          message: `exclusion ${e.given} ${from(e)} covers all of ${inc(i)}: exclusions are evaluated first, so nothing in that inclusion is intercepted`,
        });
      }
      if (covered.length === 0 && families.has(e.cidr.family)) {
        warnings.push({
          code: "exclusion-outside-inclusions",
          message: `exclusion ${e.given} ${from(e)} lies outside every inclusion: traffic there is not intercepted anyway, so the exclusion has no effect`,
        });
      }
    }
  }
  if (!policy.enableEgress) {
    for (const e of [
      ...policy.canonical.outboundIPRangeExclusions.v4,
      ...policy.canonical.outboundIPRangeExclusions.v6,
    ]) {
      warnings.push({
        code: "egress-disabled-bypassed",
        message: `enableEgress is false, but traffic to ${e.cidr.toString()} (${describeProvenance(e.provenance)}) bypasses the sidecar and goes out directly: egress is not blocked there`,
      });
    }
    if (inclusions.length > 0) {
      warnings.push({
        code: "egress-disabled-bypassed",
        message:
          "enableEgress is false, but with an inclusion list, traffic to every destination outside it bypasses the sidecar and goes out directly",
      });
    }
  }
  for (const [name, list] of [
    ["outboundPortExclusionList", policy.asGiven.outboundPortExclusionList],
    ["inboundPortExclusionList", policy.asGiven.inboundPortExclusionList],
  ] as const) {
    if (list.length > MULTIPORT_MAX_PORTS) {
      warnings.push({
        code: "too-many-ports",
        message: `${name} has ${list.length} ports: OSM v1.2's init container fails on more than ${MULTIPORT_MAX_PORTS} (iptables multiport limit)`,
      });
    }
  }
  for (const key of [
    ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
    ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST,
    ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST,
    ANNOTATION_INBOUND_PORT_EXCLUSION_LIST,
  ]) {
    if (Object.hasOwn(namespaceAnnotations, key)) {
      warnings.push({
        code: "namespace-annotation-ignored",
        message: `namespace annotation ${key} has no effect: OSM reads it from pods only (annotate the pod template)`,
      });
    }
  }
  return capWarnings(warnings);
}

/** At most this many warnings of one code are listed; the rest are counted in one last warning. */
export const MAX_WARNINGS_PER_CODE = 10;

function capWarnings(warnings: readonly PolicyWarning[]): PolicyWarning[] {
  const counts = new Map<string, number>();
  const out: PolicyWarning[] = [];
  for (const w of warnings) {
    const n = (counts.get(w.code) ?? 0) + 1;
    counts.set(w.code, n);
    if (n <= MAX_WARNINGS_PER_CODE) out.push(w);
  }
  for (const [code, n] of counts) {
    if (n > MAX_WARNINGS_PER_CODE) {
      out.push({
        code,
        message: `... and ${n - MAX_WARNINGS_PER_CODE} more ${code} warnings like the above`,
      });
    }
  }
  return out;
}

function rangeSize(cidr: Cidr): string {
  const { first, last } = cidrRange(cidr);
  const n = last - first + 1n;
  return n === 1n
    ? "1 address"
    : n < 1_000_000n
      ? `${n} addresses`
      : `2^${(cidr.family === 4 ? 32 : 128) - cidr.prefixLength} addresses`;
}

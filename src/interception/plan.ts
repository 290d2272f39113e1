/**
 * Effective traffic policy → interception plan (the rule IR). Pure.
 *
 * The iptables payload follows OSM v1.2.4 `pkg/injector/iptables.go: generateIptablesCommands` rule by rule
 * and in emission order (docs/osm-behaviour.md §1.3), from the merged lists exactly as given, so the renderer can reproduce
 * OSM's text byte for byte. The nft plan has the same semantics with sets instead of one rule per entry.
 */
import type { CidrEntry, EffectiveTrafficPolicy, GivenCidr, Provenance } from "../config/policy-types.ts";
import {
  CHAIN_IN_REDIRECT,
  CHAIN_INBOUND,
  CHAIN_OUT_REDIRECT,
  CHAIN_OUTBOUND,
  ENVOY_ADMIN_PORT,
  ENVOY_INBOUND_LISTENER_PORT,
  ENVOY_OUTBOUND_LISTENER_PORT,
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  ENVOY_UID,
  HEALTHCHECK_PORT,
  LIVENESS_PROBE_PORT,
  MULTIPORT_MAX_PORTS,
  READINESS_PROBE_PORT,
  STARTUP_PROBE_PORT,
} from "../constants.ts";
import { parseCidr, tryParseIp } from "../net/index.ts";
import type { IpAddress, IpFamily } from "../net/types.ts";
import type {
  AddressSet,
  InterceptionPlan,
  IptablesPayload,
  NftChain,
  NftPlan,
  PlannedRule,
  RuleMatch,
  RuleTarget,
} from "./types.ts";

/** Ports that bypass the inbound redirect, in OSM's order (iptables.go). */
export const INBOUND_STATIC_SKIP_PORTS: readonly number[] = [
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  LIVENESS_PROBE_PORT,
  READINESS_PROBE_PORT,
  STARTUP_PROBE_PORT,
  HEALTHCHECK_PORT,
];

export const OSM_CHAINS: readonly string[] = [
  CHAIN_INBOUND,
  CHAIN_IN_REDIRECT,
  CHAIN_OUTBOUND,
  CHAIN_OUT_REDIRECT,
];

export const NFT_TABLE = "osm_proxy";
export const POD_IP_PLACEHOLDER = "$POD_IP";

export interface BuildPlanOptions {
  /** Emit the ip6tables payload even when the policy has no IPv6 entry (nft always covers both). */
  readonly ipv6?: boolean;
  /** The pod's DNS resolvers, when known here (the init script reads /etc/resolv.conf at run time instead). */
  readonly resolvers?: readonly IpAddress[];
}

/** The filter chain that drops non-TCP egress when egress is disabled (osm-ts's own; OSM has none). */
export const CHAIN_EGRESS = "OSM_PROXY_EGRESS";
/** ICMPv6 IPv6 cannot work without: router solicitation, neighbour solicitation/advertisement, MLDv2 reports. */
export const EGRESS_ICMPV6_TYPES: readonly number[] = [133, 135, 136, 143];

const LOOPBACK: Record<IpFamily, string> = { 4: "127.0.0.1/32", 6: "::1/128" };
const GLOBAL = (field: string): Provenance => ({ source: "meshconfig", field });

/** Splits ports into multiport-sized chunks (iptables accepts at most 15 per match). */
export function chunkPorts<T>(ports: readonly T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < ports.length; i += MULTIPORT_MAX_PORTS) {
    chunks.push(ports.slice(i, i + MULTIPORT_MAX_PORTS));
  }
  return chunks;
}

/** Builds the plan from the policy's typed lists (config/ parsed and validated them; nothing is re-parsed here). */
export function buildPlan(policy: EffectiveTrafficPolicy, options: BuildPlanOptions = {}): InterceptionPlan {
  const exclusions = policy.asGiven.outboundIPRangeExclusionList;
  const inclusions = policy.asGiven.outboundIPRangeInclusionList;
  const hasV6 =
    exclusions.some((e) => e.cidr.family === 6) ||
    inclusions.some((e) => e.cidr.family === 6) ||
    policy.canonical.outboundIPRangeExclusions.v6.length > 0 ||
    policy.canonical.outboundIPRangeInclusions.v6.length > 0;
  const inclusionMode = inclusions.length > 0;
  const ctx = { policy, exclusions, inclusions, inclusionMode };
  const resolvers = options.resolvers ?? [];
  return {
    iptables: {
      v4: buildIptablesPayload(ctx, 4),
      v6: hasV6 || options.ipv6 ? buildIptablesPayload(ctx, 6) : undefined,
    },
    egressFilter: policy.enableEgress
      ? undefined
      : { v4: buildEgressPayload(ctx, 4), v6: buildEgressPayload(ctx, 6) },
    nft: buildNftPlan(policy, inclusionMode, resolvers),
    podIpMode: policy.localProxyMode === "PodIP",
    resolvers,
  };
}

interface Ctx {
  readonly policy: EffectiveTrafficPolicy;
  readonly exclusions: readonly GivenCidr[];
  readonly inclusions: readonly GivenCidr[];
  readonly inclusionMode: boolean;
}

function rule(
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
function filterRule(
  family: IpFamily | "inet",
  chain: string,
  match: RuleMatch,
  target: RuleTarget,
  slug: string,
  provenance: readonly Provenance[] = [],
): PlannedRule {
  return { family, table: "filter", chain, position: "append", match, target, slug, provenance };
}

const TCP = { protocol: "tcp" } as const;
const RETURN: RuleTarget = { kind: "return" };
const DROP: RuleTarget = { kind: "drop" };
const jump = (chain: string): RuleTarget => ({ kind: "jump", chain });

/** OSM's rules for one family, in emission order (docs/osm-behaviour.md §1.3 A–I). */
function buildIptablesPayload(ctx: Ctx, family: IpFamily): IptablesPayload {
  const { policy } = ctx;
  const _canon = policy.canonical;
  const rules: PlannedRule[] = [];
  const add = (...args: Parameters<typeof rule> extends [unknown, ...infer R] ? R : never) =>
    rules.push(rule(family, ...args));
  const loopback = parseCidr(LOOPBACK[family]);
  const ifaces = policy.asGiven.networkInterfaceExclusionList;
  const ifaceProv = GLOBAL("spec.traffic.networkInterfaceExclusionList");

  // A. static inbound
  add(
    CHAIN_IN_REDIRECT,
    "append",
    TCP,
    { kind: "redirect", port: ENVOY_INBOUND_LISTENER_PORT },
    "inbound-redirect",
  );
  add("PREROUTING", "append", TCP, jump(CHAIN_INBOUND), "prerouting-to-inbound");
  for (const port of INBOUND_STATIC_SKIP_PORTS) {
    add(CHAIN_INBOUND, "append", { ...TCP, destinationPort: port }, RETURN, `inbound-skip-port-${port}`);
  }
  add(CHAIN_INBOUND, "append", TCP, jump(CHAIN_IN_REDIRECT), "inbound-to-redirect");
  // B. interface exclusions, inbound (-I: reversed in effect)
  for (const iface of ifaces) {
    add(CHAIN_INBOUND, "insert", { inInterface: iface }, RETURN, `inbound-skip-interface-${iface}`, [
      ifaceProv,
    ]);
  }
  // C. inbound port exclusions, one multiport rule per 15 ports
  chunkPorts(policy.asGiven.inboundPortExclusionList).forEach((entries, i) => {
    add(
      CHAIN_INBOUND,
      "insert",
      { ...TCP, destinationPorts: entries.map((e) => e.port) },
      RETURN,
      `inbound-skip-ports-${i}`,
      entries.map((e) => e.provenance),
    );
  });
  // D. static outbound (the ACCEPT after REDIRECT is dead, but OSM emits it)
  add(
    CHAIN_OUT_REDIRECT,
    "append",
    TCP,
    { kind: "redirect", port: ENVOY_OUTBOUND_LISTENER_PORT },
    "outbound-redirect",
  );
  add(
    CHAIN_OUT_REDIRECT,
    "append",
    { ...TCP, destinationPort: ENVOY_ADMIN_PORT },
    { kind: "accept" },
    "outbound-admin-accept",
  );
  add("OUTPUT", "append", TCP, jump(CHAIN_OUTBOUND), "output-to-outbound");
  add(
    CHAIN_OUTBOUND,
    "append",
    {
      outInterface: "lo",
      destination: { text: LOOPBACK[family], cidr: loopback, negate: true },
      uidOwner: { uid: ENVOY_UID },
    },
    jump(CHAIN_IN_REDIRECT),
    "outbound-sidecar-to-self",
  );
  add(
    CHAIN_OUTBOUND,
    "append",
    { outInterface: "lo", uidOwner: { uid: ENVOY_UID, negate: true } },
    RETURN,
    "outbound-app-loopback",
  );
  add(CHAIN_OUTBOUND, "append", { uidOwner: { uid: ENVOY_UID } }, RETURN, "outbound-sidecar-uid");
  add(
    CHAIN_OUTBOUND,
    "append",
    { destination: { text: LOOPBACK[family], cidr: loopback } },
    RETURN,
    "outbound-loopback",
  );
  // E. PodIP mode (IPv4 only: OSM's DNAT target is the pod's IPv4 address)
  if (policy.localProxyMode === "PodIP" && family === 4) {
    add(
      "OUTPUT",
      "insert",
      {
        ...TCP,
        outInterface: "lo",
        destination: { text: LOOPBACK[4], cidr: loopback },
        uidOwner: { uid: ENVOY_UID },
      },
      { kind: "dnat", to: POD_IP_PLACEHOLDER },
      "output-podip-dnat",
      [GLOBAL("spec.sidecar.localProxyMode")],
    );
  }
  // F. interface exclusions, outbound
  for (const iface of ifaces) {
    add(CHAIN_OUTBOUND, "append", { outInterface: iface }, RETURN, `outbound-skip-interface-${iface}`, [
      ifaceProv,
    ]);
  }
  // G. outbound IP exclusions, as given, this family only
  ctx.exclusions.forEach((g, i) => {
    if (g.cidr.family !== family) return;
    add(
      CHAIN_OUTBOUND,
      "append",
      { destination: { text: g.given, cidr: g.cidr } },
      RETURN,
      `outbound-exclude-ip-${i}`,
      [g.provenance],
    );
  });
  // H. outbound port exclusions
  chunkPorts(policy.asGiven.outboundPortExclusionList).forEach((entries, i) => {
    add(
      CHAIN_OUTBOUND,
      "append",
      { ...TCP, destinationPorts: entries.map((e) => e.port) },
      RETURN,
      `outbound-skip-ports-${i}`,
      entries.map((e) => e.provenance),
    );
  });
  // I. inclusions (opt-in redirect) or redirect everything
  if (ctx.inclusionMode) {
    ctx.inclusions.forEach((g, i) => {
      if (g.cidr.family !== family) return;
      add(
        CHAIN_OUTBOUND,
        "append",
        { destination: { text: g.given, cidr: g.cidr } },
        jump(CHAIN_OUT_REDIRECT),
        `outbound-include-ip-${i}`,
        [g.provenance],
      );
    });
    add(CHAIN_OUTBOUND, "append", {}, RETURN, "outbound-not-included");
  } else {
    add(CHAIN_OUTBOUND, "append", {}, jump(CHAIN_OUT_REDIRECT), "outbound-to-redirect");
  }
  return { family, table: "nat", chains: OSM_CHAINS, rules };
}

/**
 * The rules both backends put before the final drop, for one family: TCP (the nat rules and the sidecar
 * decide it), loopback, the sidecar's uid, replies to connections the pod accepted, then IPv6's own ICMPv6.
 */
function egressHead(chain: string, family: IpFamily | "inet"): PlannedRule[] {
  return [
    filterRule(family, chain, TCP, RETURN, "egress-tcp"),
    filterRule(family, chain, { outInterface: "lo" }, RETURN, "egress-loopback"),
    filterRule(family, chain, { uidOwner: { uid: ENVOY_UID } }, RETURN, "egress-sidecar-uid"),
    filterRule(family, chain, { ctState: ["related", "established"] }, RETURN, "egress-replies"),
  ];
}

function egressIcmpv6(chain: string): PlannedRule[] {
  return EGRESS_ICMPV6_TYPES.map((type) =>
    filterRule(6, chain, { protocol: "ipv6-icmp", icmpv6Type: type }, RETURN, `egress-icmpv6-${type}`),
  );
}

const DNS = (family: IpFamily): RuleMatch => ({ protocol: "udp", destinationPort: 53, resolvers: family });

/**
 * iptables: `-A OUTPUT -j OSM_PROXY_EGRESS`, and in it everything non-TCP that is not excluded is dropped;
 * in inclusion mode only what the inclusions cover (elsewhere TCP goes out directly too).
 */
function buildEgressPayload(ctx: Ctx, family: IpFamily): IptablesPayload {
  const { policy } = ctx;
  const rules: PlannedRule[] = [
    filterRule(family, "OUTPUT", {}, jump(CHAIN_EGRESS), "output-to-egress"),
    ...egressHead(CHAIN_EGRESS, family),
  ];
  const ifaceProv = GLOBAL("spec.traffic.networkInterfaceExclusionList");
  for (const iface of policy.asGiven.networkInterfaceExclusionList) {
    rules.push(
      filterRule(family, CHAIN_EGRESS, { outInterface: iface }, RETURN, `egress-skip-interface-${iface}`, [
        ifaceProv,
      ]),
    );
  }
  /** One rule per as-given entry of this family, with that entry's provenance. */
  const perEntry = (given: readonly GivenCidr[], target: RuleTarget, slug: string) =>
    given.forEach((g, i) => {
      if (g.cidr.family !== family) return;
      const match = { destination: { text: g.given, cidr: g.cidr } };
      rules.push(filterRule(family, CHAIN_EGRESS, match, target, `${slug}-${i}`, [g.provenance]));
    });
  perEntry(ctx.exclusions, RETURN, "egress-exclude-ip");
  rules.push(filterRule(family, CHAIN_EGRESS, DNS(family), RETURN, "egress-dns"));
  if (family === 6) rules.push(...egressIcmpv6(CHAIN_EGRESS));
  if (ctx.inclusionMode) {
    perEntry(ctx.inclusions, DROP, "egress-drop-included");
  } else {
    rules.push(filterRule(family, CHAIN_EGRESS, {}, DROP, "egress-drop"));
  }
  return { family, table: "filter", chains: [CHAIN_EGRESS], rules };
}

/** Orders a payload's rules as the kernel holds them after iptables-restore (`-I` goes to the top). */
export function effectiveOrder(rules: readonly PlannedRule[]): Map<string, PlannedRule[]> {
  const chains = new Map<string, PlannedRule[]>();
  for (const r of rules) {
    const list = chains.get(r.chain) ?? [];
    if (r.position === "insert") list.unshift(r);
    else list.push(r);
    chains.set(r.chain, list);
  }
  return chains;
}

// nft: one inet table, sets for every list; chain names mirror OSM's.
export const NFT_CHAIN = {
  prerouting: "prerouting",
  output: "output",
  inbound: "inbound",
  inRedirect: "in_redirect",
  outbound: "outbound",
  outRedirect: "out_redirect",
  egress: "egress",
} as const;

export const NFT_SET = {
  inboundPorts: "in_ex_ports",
  outboundPorts: "out_ex_ports",
  interfaces: "ex_ifaces",
} as const;

/** The `nameserver` addresses of a resolv.conf (zone-scoped ones, `fe80::1%eth0`, cannot be matched: skipped). */
export function parseResolvConf(text: string): IpAddress[] {
  const out: IpAddress[] = [];
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== "nameserver" || value === undefined || value.includes("%")) continue;
    const r = tryParseIp(value);
    if (r.ok) out.push(r.value);
  }
  return out;
}

/** The nft sets holding the pod's DNS resolvers (filled by the init script from /etc/resolv.conf). */
export function resolverSetName(family: IpFamily): string {
  return `dns${family}`;
}

/** Name of an address set: exclusion/inclusion × family × hosts (hash) / prefixes (interval). */
export function addressSetName(list: "ex" | "in", family: IpFamily, kind: "hosts" | "prefixes"): string {
  return `out_${list}${family}_${kind === "hosts" ? "hosts" : "nets"}`;
}

function addressSets(
  list: "ex" | "in",
  entries: { v4: readonly CidrEntry[]; v6: readonly CidrEntry[] },
): AddressSet[] {
  const sets: AddressSet[] = [];
  for (const family of [4, 6] as const) {
    const all = family === 4 ? entries.v4 : entries.v6;
    const full = family === 4 ? 32 : 128;
    for (const kind of ["hosts", "prefixes"] as const) {
      sets.push({
        name: addressSetName(list, family, kind),
        family,
        kind,
        entries: all
          .filter((e) => (kind === "hosts") === (e.cidr.prefixLength === full))
          .map((e) => ({ cidr: e.cidr, provenance: e.provenance })),
      });
    }
  }
  return sets;
}

/** The nft egress filter chain (egress disabled): the same rules as the iptables one, with sets. */
function nftEgressChain(
  exSets: readonly AddressSet[],
  inSets: readonly AddressSet[],
  inclusionMode: boolean,
): NftChain {
  const chain = NFT_CHAIN.egress;
  const ifaceProv = GLOBAL("spec.traffic.networkInterfaceExclusionList");
  const rules: PlannedRule[] = [
    ...egressHead(chain, "inet"),
    filterRule("inet", chain, { outInterfaceSet: NFT_SET.interfaces }, RETURN, "egress-skip-interfaces", [
      ifaceProv,
    ]),
    ...exSets.map((s) =>
      filterRule(
        s.family,
        chain,
        { destinationSet: s.name },
        RETURN,
        `egress-exclude-${s.name}`,
        s.entries.map((e) => e.provenance),
      ),
    ),
    filterRule(4, chain, DNS(4), RETURN, "egress-dns-v4"),
    filterRule(6, chain, DNS(6), RETURN, "egress-dns-v6"),
    ...egressIcmpv6(chain),
  ];
  if (inclusionMode) {
    for (const s of inSets) {
      rules.push(
        filterRule(
          s.family,
          chain,
          { destinationSet: s.name },
          DROP,
          `egress-drop-${s.name}`,
          s.entries.map((e) => e.provenance),
        ),
      );
    }
  } else {
    rules.push(filterRule("inet", chain, {}, DROP, "egress-drop"));
  }
  // Filter priority (0): after the nat hooks, as iptables' filter table runs after nat's OUTPUT.
  return { name: chain, hook: { type: "filter", hook: "output", priority: 0 }, rules };
}

function resolverSets(resolvers: readonly IpAddress[]): AddressSet[] {
  return ([4, 6] as const).map((family) => ({
    name: resolverSetName(family),
    family,
    kind: "hosts" as const,
    entries: resolvers
      .filter((r) => r.family === family)
      .map((r) => ({
        cidr: parseCidr(`${r.toString()}/${family === 4 ? 32 : 128}`),
        provenance: RESOLV_CONF,
      })),
  }));
}

const RESOLV_CONF: Provenance = { source: "resolv.conf" };

function buildNftPlan(
  policy: EffectiveTrafficPolicy,
  inclusionMode: boolean,
  resolvers: readonly IpAddress[],
): NftPlan {
  const canon = policy.canonical;
  const c = NFT_CHAIN;
  const exSets = addressSets("ex", canon.outboundIPRangeExclusions);
  const inSets = addressSets("in", canon.outboundIPRangeInclusions);
  const provOfSet = (s: AddressSet) => s.entries.map((e) => e.provenance);
  const ifaceProv = GLOBAL("spec.traffic.networkInterfaceExclusionList");
  const loop4 = parseCidr(LOOPBACK[4]);
  const loop6 = parseCidr(LOOPBACK[6]);

  const prerouting = [rule("inet", c.prerouting, "append", TCP, jump(c.inbound), "prerouting-to-inbound")];
  const inbound: PlannedRule[] = [
    rule(
      "inet",
      c.inbound,
      "append",
      { inInterfaceSet: NFT_SET.interfaces },
      RETURN,
      "inbound-skip-interfaces",
      [ifaceProv],
    ),
    rule(
      "inet",
      c.inbound,
      "append",
      { ...TCP, destinationPortSet: NFT_SET.inboundPorts },
      RETURN,
      "inbound-skip-ports",
      canon.inboundPortExclusions.map((p) => p.provenance),
    ),
    ...INBOUND_STATIC_SKIP_PORTS.map((port) =>
      rule(
        "inet",
        c.inbound,
        "append",
        { ...TCP, destinationPort: port },
        RETURN,
        `inbound-skip-port-${port}`,
      ),
    ),
    rule("inet", c.inbound, "append", TCP, jump(c.inRedirect), "inbound-to-redirect"),
  ];
  const inRedirect = [
    rule(
      "inet",
      c.inRedirect,
      "append",
      TCP,
      { kind: "redirect", port: ENVOY_INBOUND_LISTENER_PORT },
      "inbound-redirect",
    ),
  ];
  const output: PlannedRule[] = [];
  if (policy.localProxyMode === "PodIP") {
    output.push(
      rule(
        4,
        c.output,
        "append",
        {
          ...TCP,
          outInterface: "lo",
          destination: { text: LOOPBACK[4], cidr: loop4 },
          uidOwner: { uid: ENVOY_UID },
        },
        { kind: "dnat", to: POD_IP_PLACEHOLDER },
        "output-podip-dnat",
        [GLOBAL("spec.sidecar.localProxyMode")],
      ),
    );
  }
  output.push(rule("inet", c.output, "append", TCP, jump(c.outbound), "output-to-outbound"));
  const outbound: PlannedRule[] = [];
  for (const [family, loop] of [
    [4, loop4],
    [6, loop6],
  ] as const) {
    outbound.push(
      rule(
        family,
        c.outbound,
        "append",
        {
          outInterface: "lo",
          destination: { text: LOOPBACK[family], cidr: loop, negate: true },
          uidOwner: { uid: ENVOY_UID },
        },
        jump(c.inRedirect),
        `outbound-sidecar-to-self-v${family}`,
      ),
    );
  }
  outbound.push(
    rule(
      "inet",
      c.outbound,
      "append",
      { outInterface: "lo", uidOwner: { uid: ENVOY_UID, negate: true } },
      RETURN,
      "outbound-app-loopback",
    ),
    rule("inet", c.outbound, "append", { uidOwner: { uid: ENVOY_UID } }, RETURN, "outbound-sidecar-uid"),
    rule(
      4,
      c.outbound,
      "append",
      { destination: { text: LOOPBACK[4], cidr: loop4 } },
      RETURN,
      "outbound-loopback-v4",
    ),
    rule(
      6,
      c.outbound,
      "append",
      { destination: { text: LOOPBACK[6], cidr: loop6 } },
      RETURN,
      "outbound-loopback-v6",
    ),
    rule(
      "inet",
      c.outbound,
      "append",
      { outInterfaceSet: NFT_SET.interfaces },
      RETURN,
      "outbound-skip-interfaces",
      [ifaceProv],
    ),
  );
  for (const s of exSets) {
    outbound.push(
      rule(
        s.family,
        c.outbound,
        "append",
        { destinationSet: s.name },
        RETURN,
        `outbound-exclude-${s.name}`,
        provOfSet(s),
      ),
    );
  }
  outbound.push(
    rule(
      "inet",
      c.outbound,
      "append",
      { ...TCP, destinationPortSet: NFT_SET.outboundPorts },
      RETURN,
      "outbound-skip-ports",
      canon.outboundPortExclusions.map((p) => p.provenance),
    ),
  );
  if (inclusionMode) {
    for (const s of inSets) {
      outbound.push(
        rule(
          s.family,
          c.outbound,
          "append",
          { destinationSet: s.name },
          jump(c.outRedirect),
          `outbound-include-${s.name}`,
          provOfSet(s),
        ),
      );
    }
    outbound.push(rule("inet", c.outbound, "append", {}, RETURN, "outbound-not-included"));
  } else {
    outbound.push(rule("inet", c.outbound, "append", {}, jump(c.outRedirect), "outbound-to-redirect"));
  }
  const outRedirect = [
    rule(
      "inet",
      c.outRedirect,
      "append",
      TCP,
      { kind: "redirect", port: ENVOY_OUTBOUND_LISTENER_PORT },
      "outbound-redirect",
    ),
  ];
  // dstnat priority (-100), as iptables' nat table, so the two behave the same when both are present.
  const chains: NftChain[] = [
    { name: c.prerouting, hook: { type: "nat", hook: "prerouting", priority: -100 }, rules: prerouting },
    { name: c.output, hook: { type: "nat", hook: "output", priority: -100 }, rules: output },
    { name: c.inbound, rules: inbound },
    { name: c.inRedirect, rules: inRedirect },
    { name: c.outbound, rules: outbound },
    { name: c.outRedirect, rules: outRedirect },
    ...(policy.enableEgress ? [] : [nftEgressChain(exSets, inSets, inclusionMode)]),
  ];
  return {
    table: NFT_TABLE,
    addressSets: [...exSets, ...inSets, ...(policy.enableEgress ? [] : resolverSets(resolvers))],
    portSets: [
      {
        name: NFT_SET.inboundPorts,
        entries: canon.inboundPortExclusions.map((p) => ({ port: p.port, provenance: p.provenance })),
      },
      {
        name: NFT_SET.outboundPorts,
        entries: canon.outboundPortExclusions.map((p) => ({ port: p.port, provenance: p.provenance })),
      },
    ],
    interfaceSet: { name: NFT_SET.interfaces, entries: [...canon.networkInterfaceExclusions] },
    chains,
  };
}

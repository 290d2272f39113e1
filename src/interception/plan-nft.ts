/**
 * The nft plan: one `inet` table with the same semantics as OSM's iptables rules, but a set for every list
 * (list size does not matter; one atomic transaction); chain names mirror OSM's. Pure.
 */
import type { CidrEntry, EffectiveTrafficPolicy, Provenance } from "../config/policy-types.ts";
import { ENVOY_INBOUND_LISTENER_PORT, ENVOY_OUTBOUND_LISTENER_PORT, ENVOY_UID } from "../constants.ts";
import { parseCidr } from "../net/index.ts";
import type { IpAddress, IpFamily } from "../net/types.ts";
import {
  DNS,
  DROP,
  egressHead,
  egressIcmpv6,
  filterRule,
  GLOBAL,
  INBOUND_STATIC_SKIP_PORTS,
  jump,
  LOOPBACK,
  POD_IP_PLACEHOLDER,
  RETURN,
  rule,
  TCP,
} from "./plan-rules.ts";
import type { AddressSet, NftChain, NftPlan, PlannedRule, RuleTarget } from "./types.ts";

export const NFT_TABLE = "osm_proxy";

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
  // One rule per address set, named after it and carrying its entries' provenance.
  const setRule = (s: AddressSet, target: RuleTarget, id: string): PlannedRule =>
    filterRule(
      s.family,
      chain,
      { destinationSet: s.name },
      target,
      `${id}-${s.name}`,
      s.entries.map((e) => e.provenance),
    );
  const rules: PlannedRule[] = [
    ...egressHead(chain, "inet"),
    filterRule("inet", chain, { outInterfaceSet: NFT_SET.interfaces }, RETURN, "egress-skip-interfaces", [
      ifaceProv,
    ]),
    ...exSets.map((s) => setRule(s, RETURN, "egress-exclude")),
    filterRule(4, chain, DNS(4), RETURN, "egress-dns-v4"),
    filterRule(6, chain, DNS(6), RETURN, "egress-dns-v6"),
    ...egressIcmpv6(chain),
  ];
  if (inclusionMode) {
    for (const s of inSets) rules.push(setRule(s, DROP, "egress-drop"));
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

export function buildNftPlan(
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

/**
 * The iptables plan: OSM v1.2.4 `pkg/injector/iptables.go: generateIptablesCommands` rule by rule and in
 * emission order (docs/osm-behaviour.md §1.3), from the merged lists exactly as given, so the renderer can
 * reproduce OSM's text byte for byte; plus the egress filter chain (egress disabled). Pure.
 */
import type { EffectiveTrafficPolicy, GivenCidr } from "../config/policy-types.ts";
import {
  CHAIN_IN_REDIRECT,
  CHAIN_INBOUND,
  CHAIN_OUT_REDIRECT,
  CHAIN_OUTBOUND,
  ENVOY_ADMIN_PORT,
  ENVOY_INBOUND_LISTENER_PORT,
  ENVOY_OUTBOUND_LISTENER_PORT,
  ENVOY_UID,
  MULTIPORT_MAX_PORTS,
} from "../constants.ts";
import { parseCidr } from "../net/index.ts";
import type { IpFamily } from "../net/types.ts";
import {
  CHAIN_EGRESS,
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
import type { IptablesPayload, PlannedRule, RuleTarget } from "./types.ts";

export const OSM_CHAINS: readonly string[] = [
  CHAIN_INBOUND,
  CHAIN_IN_REDIRECT,
  CHAIN_OUTBOUND,
  CHAIN_OUT_REDIRECT,
];

/** Splits ports into multiport-sized chunks (iptables accepts at most 15 per match). */
export function chunkPorts<T>(ports: readonly T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < ports.length; i += MULTIPORT_MAX_PORTS) {
    chunks.push(ports.slice(i, i + MULTIPORT_MAX_PORTS));
  }
  return chunks;
}

/** What the iptables payloads are built from: the policy and its as-given CIDR lists. */
export interface IptablesInput {
  readonly policy: EffectiveTrafficPolicy;
  readonly exclusions: readonly GivenCidr[];
  readonly inclusions: readonly GivenCidr[];
  readonly inclusionMode: boolean;
}

/** OSM's rules for one family, in emission order (docs/osm-behaviour.md §1.3 A–I). */
export function buildIptablesPayload(ctx: IptablesInput, family: IpFamily): IptablesPayload {
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
 * iptables: `-A OUTPUT -j OSM_PROXY_EGRESS`, and in it everything non-TCP that is not excluded is dropped;
 * in inclusion mode only what the inclusions cover (elsewhere TCP goes out directly too).
 */
export function buildEgressPayload(ctx: IptablesInput, family: IpFamily): IptablesPayload {
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

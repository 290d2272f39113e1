/**
 * nftables rendering of the plan: one `inet` table holding IPv4 and IPv6, every list a named set (host
 * entries in hash sets, prefixes in interval sets, ports and interfaces in hash sets), every rule with
 * `comment "osm/<slug>"`. Pure.
 *
 * The ruleset file replaces our table atomically: `table X` (create if missing) + `delete table X` + the
 * full table, in one `nft -f` transaction (nft(8) "ATOMIC RULE REPLACEMENT"), so nothing is half-applied.
 */
import type { Cidr } from "../net/types.ts";
import { resolverSetName } from "./plan-nft.ts";
import type { AddressSet, InterceptionPlan, NftPlan, PlannedRule, RuleMatch, RuleTarget } from "./types.ts";

export const COMMENT_PREFIX = "osm/";

/** A prefix as nft prints it: a full-length prefix is a bare address. */
export function nftCidrText(cidr: Cidr): string {
  const full = cidr.family === 4 ? 32 : 128;
  const text = cidr.toString();
  return cidr.prefixLength === full ? text.slice(0, text.lastIndexOf("/")) : text;
}

function addressKeyword(family: number | "inet"): string {
  return family === 6 ? "ip6" : "ip";
}

function matchTokens(r: PlannedRule, setFamily: (name: string) => number): string[] {
  const m: RuleMatch = r.match;
  const t: string[] = [];
  if (m.inInterface) t.push("iifname", JSON.stringify(m.inInterface));
  if (m.inInterfaceSet) t.push("iifname", `@${m.inInterfaceSet}`);
  if (m.outInterface) t.push("oifname", JSON.stringify(m.outInterface));
  if (m.outInterfaceSet) t.push("oifname", `@${m.outInterfaceSet}`);
  if (m.destination) {
    t.push(addressKeyword(m.destination.cidr.family), "daddr");
    if (m.destination.negate) t.push("!=");
    t.push(nftCidrText(m.destination.cidr));
  }
  if (m.destinationSet) t.push(addressKeyword(setFamily(m.destinationSet)), "daddr", `@${m.destinationSet}`);
  if (m.resolvers !== undefined)
    t.push(addressKeyword(m.resolvers), "daddr", `@${resolverSetName(m.resolvers)}`);
  const hasPort = m.destinationPort !== undefined || m.destinationPorts || m.destinationPortSet;
  const l4 = m.protocol ?? "tcp";
  if (m.protocol !== undefined && !hasPort && m.icmpv6Type === undefined)
    t.push("meta", "l4proto", m.protocol);
  if (m.destinationPort !== undefined) t.push(l4, "dport", String(m.destinationPort));
  if (m.destinationPorts) t.push(l4, "dport", `{ ${m.destinationPorts.join(", ")} }`);
  if (m.destinationPortSet) t.push(l4, "dport", `@${m.destinationPortSet}`);
  if (m.icmpv6Type !== undefined) t.push("icmpv6", "type", icmpv6TypeName(m.icmpv6Type));
  if (m.ctState) t.push("ct", "state", [...m.ctState].sort().join(","));
  if (m.uidOwner) {
    t.push("meta", "skuid");
    if (m.uidOwner.negate) t.push("!=");
    t.push(String(m.uidOwner.uid));
  }
  return t;
}

function targetTokens(t: RuleTarget, family: number | "inet"): string[] {
  switch (t.kind) {
    case "jump":
      return ["jump", t.chain];
    case "return":
      return ["return"];
    case "accept":
      return ["accept"];
    case "drop":
      return ["drop"];
    case "redirect":
      return ["redirect", "to", `:${t.port}`];
    case "dnat":
      return ["dnat", family === 6 ? "ip6" : "ip", "to", t.to];
  }
}

/** The names nft lists ICMPv6 types by (the egress filter's). */
const ICMPV6_TYPE_NAMES: Readonly<Record<number, string>> = {
  133: "nd-router-solicit",
  135: "nd-neighbor-solicit",
  136: "nd-neighbor-advert",
  143: "mld2-listener-report",
};

export function icmpv6TypeName(type: number): string {
  return ICMPV6_TYPE_NAMES[type] ?? String(type);
}

/** One rule as nft lists it. */
export function renderNftRule(r: PlannedRule, plan: NftPlan): string {
  const setFamily = (name: string) => plan.addressSets.find((s) => s.name === name)?.family ?? 4;
  return [
    ...matchTokens(r, setFamily),
    ...targetTokens(r.target, r.family),
    "comment",
    JSON.stringify(`${COMMENT_PREFIX}${r.slug}`),
  ].join(" ");
}

function elementsLine(items: readonly string[]): string[] {
  return items.length === 0 ? [] : [`\t\telements = { ${items.join(", ")} }`];
}

/**
 * A declared size makes the kernel use its fixed-size hash instead of the resizing rhashtable: loading 50k
 * hosts takes ~40% less time (bench/README.md). Headroom of 2× (at least 65536) keeps live additions possible.
 */
export function hashSetSize(entries: number): number {
  let size = 65536;
  while (size < entries * 2) size *= 2;
  return size;
}

function addressSetLines(s: AddressSet): string[] {
  return [
    `\tset ${s.name} {`,
    `\t\ttype ${s.family === 4 ? "ipv4_addr" : "ipv6_addr"}`,
    ...(s.kind === "prefixes" ? ["\t\tflags interval"] : [`\t\tsize ${hashSetSize(s.entries.length)}`]),
    ...elementsLine(s.entries.map((e) => nftCidrText(e.cidr))),
    "\t}",
  ];
}

/** nft prints standard priority names (dstnat = -100 for prerouting, filter = 0); nat output keeps the number. */
function nftPriority(hook: { type: string; hook: string; priority: number }): string {
  if (hook.type === "filter" && hook.priority === 0) return "filter";
  return hook.hook === "prerouting" && hook.priority === -100 ? "dstnat" : String(hook.priority);
}

/** The table body (`table inet NAME { ... }`), without the replace preamble. */
export function renderNftTable(plan: NftPlan): string {
  const lines: string[] = [`table inet ${plan.table} {`];
  for (const s of plan.addressSets) lines.push(...addressSetLines(s));
  for (const s of plan.portSets) {
    lines.push(
      `\tset ${s.name} {`,
      "\t\ttype inet_service",
      ...elementsLine(s.entries.map((e) => String(e.port))),
      "\t}",
    );
  }
  lines.push(
    `\tset ${plan.interfaceSet.name} {`,
    "\t\ttype ifname",
    ...elementsLine(plan.interfaceSet.entries.map((i) => JSON.stringify(i))),
    "\t}",
  );
  for (const chain of plan.chains) {
    lines.push(`\tchain ${chain.name} {`);
    if (chain.hook) {
      lines.push(
        `\t\ttype ${chain.hook.type} hook ${chain.hook.hook} priority ${nftPriority(chain.hook)}; policy accept;`,
      );
    }
    for (const r of chain.rules) lines.push(`\t\t${renderNftRule(r, plan)}`);
    lines.push("\t}");
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

export interface RenderNftOptions {
  /** Pod IP for PodIP mode; without it the text keeps `$POD_IP` for the init container's shell. */
  readonly podIp?: string;
}

/** The `nft -f` input that atomically replaces our table (and only ours). */
export function renderNft(plan: InterceptionPlan, options: RenderNftOptions = {}): string {
  const name = plan.nft.table;
  let table = renderNftTable(plan.nft);
  if (options.podIp !== undefined) table = table.replaceAll("$POD_IP", options.podIp);
  return `table inet ${name}\ndelete table inet ${name}\n${table}`;
}

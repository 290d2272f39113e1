/**
 * The same nft ruleset as render-nft.ts, in libnftables' JSON form (libnftables-json(5)), which is what apply
 * sends (`nft -j -f -`): nft loads 50k set elements from JSON ~25% faster than from text (bench/README.md).
 * The text form stays what `render` prints and what the init script pipes; verify compares the kernel's
 * listing with the text form, so the two renderings are checked against each other by every netns test.
 * Pure.
 */
import type { Cidr } from "../net/types.ts";
import { resolverSetName } from "./plan-nft.ts";
import { POD_IP_PLACEHOLDER } from "./plan-rules.ts";
import { COMMENT_PREFIX, hashSetSize, icmpv6TypeName } from "./render-nft.ts";
import type { InterceptionPlan, NftPlan, PlannedRule, RuleTarget } from "./types.ts";

type Json = Record<string, unknown>;

function element(cidr: Cidr): unknown {
  const full = cidr.family === 4 ? 32 : 128;
  const text = cidr.toString();
  const addr = text.slice(0, text.lastIndexOf("/"));
  return cidr.prefixLength === full ? addr : { prefix: { addr, len: cidr.prefixLength } };
}

const match = (left: unknown, right: unknown, op = "=="): Json => ({ match: { op, left, right } });
const meta = (key: string) => ({ meta: { key } });
const payload = (protocol: string, field: string) => ({ payload: { protocol, field } });

function expressions(r: PlannedRule, plan: NftPlan, podIp: string | undefined): unknown[] {
  const m = r.match;
  const e: unknown[] = [];
  if (m.inInterface) e.push(match(meta("iifname"), m.inInterface));
  if (m.inInterfaceSet) e.push(match(meta("iifname"), `@${m.inInterfaceSet}`));
  if (m.outInterface) e.push(match(meta("oifname"), m.outInterface));
  if (m.outInterfaceSet) e.push(match(meta("oifname"), `@${m.outInterfaceSet}`));
  if (m.destination) {
    const proto = m.destination.cidr.family === 6 ? "ip6" : "ip";
    e.push(match(payload(proto, "daddr"), element(m.destination.cidr), m.destination.negate ? "!=" : "=="));
  }
  if (m.destinationSet) {
    const family = plan.addressSets.find((s) => s.name === m.destinationSet)?.family ?? 4;
    e.push(match(payload(family === 6 ? "ip6" : "ip", "daddr"), `@${m.destinationSet}`));
  }
  if (m.resolvers !== undefined) {
    e.push(match(payload(m.resolvers === 6 ? "ip6" : "ip", "daddr"), `@${resolverSetName(m.resolvers)}`));
  }
  const hasPort = m.destinationPort !== undefined || m.destinationPorts || m.destinationPortSet;
  const l4 = m.protocol ?? "tcp";
  if (m.protocol !== undefined && !hasPort && m.icmpv6Type === undefined) {
    e.push(match(meta("l4proto"), m.protocol));
  }
  if (m.destinationPort !== undefined) e.push(match(payload(l4, "dport"), m.destinationPort));
  if (m.destinationPorts) e.push(match(payload(l4, "dport"), { set: [...m.destinationPorts] }));
  if (m.destinationPortSet) e.push(match(payload(l4, "dport"), `@${m.destinationPortSet}`));
  if (m.icmpv6Type !== undefined) e.push(match(payload("icmpv6", "type"), icmpv6TypeName(m.icmpv6Type)));
  if (m.ctState) e.push(match({ ct: { key: "state" } }, [...m.ctState].sort(), "in"));
  if (m.uidOwner) e.push(match(meta("skuid"), m.uidOwner.uid, m.uidOwner.negate ? "!=" : "=="));
  e.push(target(r.target, podIp));
  return e;
}

function target(t: RuleTarget, podIp: string | undefined): unknown {
  switch (t.kind) {
    case "jump":
      return { jump: { target: t.chain } };
    case "return":
      return { return: null };
    case "accept":
      return { accept: null };
    case "drop":
      return { drop: null };
    case "redirect":
      return { redirect: { port: t.port } };
    case "dnat":
      return { dnat: { family: "ip", addr: t.to === POD_IP_PLACEHOLDER ? podIp : t.to } };
  }
}

/** The JSON batch that atomically replaces our table. PodIP mode needs `podIp` (JSON has no variables). */
export function renderNftJson(plan: InterceptionPlan, podIp?: string): string {
  const p = plan.nft;
  const table = { family: "inet", name: p.table };
  const base = { family: "inet", table: p.table };
  const cmds: unknown[] = [{ add: { table } }, { delete: { table } }, { add: { table } }];
  for (const s of p.addressSets) {
    const set: Json = { ...base, name: s.name, type: s.family === 4 ? "ipv4_addr" : "ipv6_addr" };
    if (s.kind === "prefixes") set["flags"] = ["interval"];
    else set["size"] = hashSetSize(s.entries.length);
    if (s.entries.length > 0) set["elem"] = s.entries.map((e) => element(e.cidr));
    cmds.push({ add: { set } });
  }
  for (const s of p.portSets) {
    const set: Json = { ...base, name: s.name, type: "inet_service" };
    if (s.entries.length > 0) set["elem"] = s.entries.map((e) => e.port);
    cmds.push({ add: { set } });
  }
  const ifaces: Json = { ...base, name: p.interfaceSet.name, type: "ifname" };
  if (p.interfaceSet.entries.length > 0) ifaces["elem"] = [...p.interfaceSet.entries];
  cmds.push({ add: { set: ifaces } });
  for (const c of p.chains) {
    const chain: Json = { ...base, name: c.name };
    if (c.hook)
      Object.assign(chain, { type: c.hook.type, hook: c.hook.hook, prio: c.hook.priority, policy: "accept" });
    cmds.push({ add: { chain } });
  }
  for (const c of p.chains) {
    for (const r of c.rules) {
      cmds.push({
        add: {
          rule: {
            ...base,
            chain: c.name,
            expr: expressions(r, p, podIp),
            comment: `${COMMENT_PREFIX}${r.slug}`,
          },
        },
      });
    }
  }
  return JSON.stringify({ nftables: cmds });
}

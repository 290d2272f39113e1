/**
 * Explain, pure: walks the plan's rules for one connection (TCP, UDP or ICMP) the way netfilter's nat and
 * filter hooks do, and says where it goes (direct, outbound sidecar, inbound sidecar, dropped by the egress
 * filter), which rule decided, and where that rule's entry came from (the MeshConfig field or the pod
 * annotation).
 */
import type { Provenance } from "../config/policy-types.ts";
import { ENVOY_INBOUND_LISTENER_PORT, ENVOY_OUTBOUND_LISTENER_PORT } from "../constants.ts";
import { cidrContains } from "../net/index.ts";
import type { IpAddress } from "../net/types.ts";
import { effectiveOrder } from "./plan-iptables.ts";
import { renderOsmRule } from "./render-iptables.ts";
import { renderNftRule } from "./render-nft.ts";
import type { Backend, InterceptionPlan, PlannedRule } from "./types.ts";

export type Verdict = "direct" | "outbound-sidecar" | "inbound-sidecar" | "dnat-pod-ip" | "dropped";

export type ExplainProtocol = "tcp" | "udp" | "icmp";

export interface ExplainQuery {
  readonly destination: IpAddress;
  /** Destination port (TCP, UDP; ignored for ICMP). */
  readonly port: number;
  /** tcp (default), udp or icmp (ICMPv6 for an IPv6 destination): a new connection/flow, not a reply. */
  readonly protocol?: ExplainProtocol;
  /** outbound (from a process in the pod; default) or inbound (arriving on an interface). */
  readonly direction?: "outbound" | "inbound";
  /** The sending process's uid (outbound); default 0, an app. */
  readonly uid?: number;
  /** Outbound interface; default `lo` for loopback destinations, else `eth0`. */
  readonly outInterface?: string;
  /** Inbound interface; default `eth0`. */
  readonly inInterface?: string;
}

export interface Explanation {
  readonly verdict: Verdict;
  /** The redirect port for sidecar verdicts. */
  readonly port?: number;
  readonly backend: Backend;
  /** The rule that decided, as rendered for the backend; undefined when no rule matched (default accept). */
  readonly decidingRule?: { readonly chain: string; readonly slug: string; readonly text: string };
  /** Where the deciding rule's matching entry came from; empty for static rules. */
  readonly provenance: readonly Provenance[];
  /** The list entry that matched (a prefix or a port), when the deciding rule matched one. */
  readonly matchedEntry?: string;
  /** Every matched rule, in order, as `chain: text`. */
  readonly trace: readonly string[];
}

/**
 * The deciding rule as `osm explain` and `osm explain pod/…` print it: the rule's text, or the one wording for
 * a packet no rule matched (the chains' policy is accept, so it is not intercepted).
 */
export function describeDecidingRule(e: Explanation): string {
  return e.decidingRule?.text ?? "none matched (the default: not intercepted)";
}

interface Packet {
  readonly family: 4 | 6;
  readonly protocol: "tcp" | "udp" | "icmp" | "ipv6-icmp";
  readonly ip: IpAddress;
  readonly port: number | undefined;
  readonly uid: number | undefined;
  readonly oif: string | undefined;
  readonly iif: string | undefined;
}

function isLoopback(ip: IpAddress): boolean {
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}

type Outcome = { kind: "continue" } | { kind: "terminal"; verdict: Verdict; port?: number };

interface Walk {
  readonly outcome: Outcome;
  readonly deciding: { rule: PlannedRule; hit: Hit } | undefined;
}

/** Walks one hook's chains from `start` the way netfilter does (jump, return, terminal targets). */
function walkChains(
  plan: InterceptionPlan,
  chains: ReadonlyMap<string, readonly PlannedRule[]>,
  start: string,
  pkt: Packet,
  trace: string[],
  render: (r: PlannedRule) => string,
): Walk {
  let deciding: { rule: PlannedRule; hit: Hit } | undefined;
  const walk = (chain: string, depth: number): Outcome => {
    if (depth > 16) return { kind: "continue" };
    for (const r of chains.get(chain) ?? []) {
      const hit = matchRule(plan, r, pkt);
      if (!hit) continue;
      trace.push(`${chain}: ${render(r)}`);
      const t = r.target;
      if (t.kind === "jump") {
        const out = walk(t.chain, depth + 1);
        if (out.kind === "terminal") return out;
        continue;
      }
      deciding = { rule: r, hit };
      if (t.kind === "return") return { kind: "continue" };
      if (t.kind === "accept") return { kind: "terminal", verdict: "direct" };
      if (t.kind === "drop") return { kind: "terminal", verdict: "dropped" };
      if (t.kind === "dnat") return { kind: "terminal", verdict: "dnat-pod-ip" };
      return {
        kind: "terminal",
        verdict:
          t.port === ENVOY_OUTBOUND_LISTENER_PORT
            ? "outbound-sidecar"
            : t.port === ENVOY_INBOUND_LISTENER_PORT
              ? "inbound-sidecar"
              : "direct",
        port: t.port,
      };
    }
    return { kind: "continue" };
  };
  return { outcome: walk(start, 0), deciding };
}

/** Explains one connection against the plan, as the given backend would program it. */
export function explain(
  plan: InterceptionPlan,
  query: ExplainQuery,
  backend: Backend = "iptables",
): Explanation {
  const direction = query.direction ?? "outbound";
  const protocol = query.protocol ?? "tcp";
  const family = query.destination.family;
  const pkt: Packet = {
    family,
    protocol: protocol === "icmp" && family === 6 ? "ipv6-icmp" : protocol,
    ip: query.destination,
    port: protocol === "icmp" ? undefined : query.port,
    uid: direction === "outbound" ? (query.uid ?? 0) : undefined,
    oif:
      direction === "outbound"
        ? (query.outInterface ?? (isLoopback(query.destination) ? "lo" : "eth0"))
        : undefined,
    iif: direction === "inbound" ? (query.inInterface ?? "eth0") : undefined,
  };
  const render = (r: PlannedRule) => (backend === "iptables" ? renderOsmRule(r) : renderNftRule(r, plan.nft));
  const trace: string[] = [];
  const result = (walk: Walk): Explanation => {
    const { outcome: out, deciding: d } = walk;
    return {
      verdict: out.kind === "terminal" ? out.verdict : "direct",
      ...(out.kind === "terminal" && out.port !== undefined ? { port: out.port } : {}),
      backend,
      ...(d ? { decidingRule: { chain: d.rule.chain, slug: d.rule.slug, text: render(d.rule) } } : {}),
      provenance: d ? d.hit.provenance : [],
      ...(d?.hit.entry !== undefined ? { matchedEntry: d.hit.entry } : {}),
      trace,
    };
  };
  // The nat hooks first (they redirect TCP to the sidecar), then the egress filter (egress disabled), as the
  // kernel runs them: a packet the filter drops never leaves, whatever nat decided.
  let nat: Walk = { outcome: { kind: "continue" }, deciding: undefined };
  if (protocol === "tcp") {
    let chains: Map<string, PlannedRule[]>;
    let start: string;
    if (backend === "iptables") {
      const payload = family === 4 ? plan.iptables.v4 : plan.iptables.v6;
      chains = payload ? effectiveOrder(payload.rules) : new Map();
      start = direction === "outbound" ? "OUTPUT" : "PREROUTING";
    } else {
      chains = new Map(
        plan.nft.chains.filter((c) => c.hook?.type !== "filter").map((c) => [c.name, [...c.rules]]),
      );
      start = direction === "outbound" ? "output" : "prerouting";
    }
    nat = walkChains(plan, chains, start, pkt, trace, render);
  }
  if (direction === "outbound" && plan.egressFilter) {
    const chains =
      backend === "iptables"
        ? effectiveOrder((family === 4 ? plan.egressFilter.v4 : plan.egressFilter.v6).rules)
        : new Map(
            plan.nft.chains.filter((c) => c.hook?.type === "filter").map((c) => [c.name, [...c.rules]]),
          );
    const filter = walkChains(plan, chains, backend === "iptables" ? "OUTPUT" : "egress", pkt, trace, render);
    if (filter.outcome.kind === "terminal" || protocol !== "tcp") return result(filter);
  }
  return result(nat);
}

interface Hit {
  readonly provenance: readonly Provenance[];
  readonly entry?: string;
}

/** Whether the rule matches; when it does, the provenance of what matched (possibly empty) and the entry. */
function matchRule(plan: InterceptionPlan, r: PlannedRule, p: Packet): Hit | undefined {
  const m = r.match;
  if (r.family !== "inet" && r.family !== p.family) return undefined;
  if (m.inInterface !== undefined && m.inInterface !== p.iif) return undefined;
  if (m.outInterface !== undefined && m.outInterface !== p.oif) return undefined;
  if (
    m.inInterfaceSet !== undefined &&
    (p.iif === undefined || !plan.nft.interfaceSet.entries.includes(p.iif))
  ) {
    return undefined;
  }
  if (
    m.outInterfaceSet !== undefined &&
    (p.oif === undefined || !plan.nft.interfaceSet.entries.includes(p.oif))
  ) {
    return undefined;
  }
  if (m.destination) {
    if (m.destination.cidr.family !== p.family) return undefined;
    if (cidrContains(m.destination.cidr, p.ip) === Boolean(m.destination.negate)) return undefined;
  }
  let provenance: readonly Provenance[] = r.provenance;
  let entry: string | undefined;
  if (m.destination && r.provenance.length > 0) entry = m.destination.text;
  if (m.destinationSet !== undefined) {
    const set = plan.nft.addressSets.find((s) => s.name === m.destinationSet);
    if (!set || set.family !== p.family) return undefined;
    const hit = set.entries.find((e) => cidrContains(e.cidr, p.ip));
    if (!hit) return undefined;
    provenance = [hit.provenance];
    entry = hit.cidr.toString();
  }
  if (m.protocol !== undefined && m.protocol !== p.protocol) return undefined;
  if (m.ctState !== undefined || m.icmpv6Type !== undefined) return undefined; // a new flow, not ND
  if (m.resolvers !== undefined) {
    const resolver = plan.resolvers.find((a) => a.family === p.family && a.value === p.ip.value);
    if (m.resolvers !== p.family || !resolver) return undefined;
    provenance = [{ source: "resolv.conf" }];
    entry = resolver.toString();
  }
  if (m.destinationPort !== undefined && m.destinationPort !== p.port) return undefined;
  if (m.destinationPorts) {
    const i = p.port === undefined ? -1 : m.destinationPorts.indexOf(p.port);
    if (i < 0) return undefined;
    const prov = r.provenance[i];
    provenance = prov ? [prov] : [];
    entry = `port ${p.port}`;
  }
  if (m.destinationPortSet !== undefined) {
    const set = plan.nft.portSets.find((s) => s.name === m.destinationPortSet);
    const hit = set?.entries.find((e) => e.port === p.port);
    if (!hit) return undefined;
    provenance = [hit.provenance];
    entry = `port ${p.port}`;
  }
  if (m.uidOwner) {
    if (p.uid === undefined) return undefined;
    if ((p.uid === m.uidOwner.uid) === Boolean(m.uidOwner.negate)) return undefined;
  }
  return entry === undefined ? { provenance } : { provenance, entry };
}

/**
 * iptables renderings of the plan. Pure.
 *
 * - OSM form: what OSM v1.2.4 `generateIptablesCommands` writes (docs/osm-behaviour.md §1.2–1.3), byte for byte for IPv4 OSM
 *   inputs: `--match multiport`, `--to-port`, `-I` vs `-A`, literal `$POD_IP`. No rule comments, because
 *   OSM's bytes have none; our rules are identified by the OSM_PROXY_* chains and the jumps into them.
 * - Save form: the same rules as `iptables-save` prints them back in effective order, which is what verify
 *   compares against.
 */

import type { IpAddress } from "../net/types.ts";
import { effectiveOrder } from "./plan-iptables.ts";
import type { InterceptionPlan, IptablesPayload, PlannedRule, RuleMatch, RuleTarget } from "./types.ts";

function targetTokens(t: RuleTarget, form: "osm" | "save"): string[] {
  switch (t.kind) {
    case "jump":
      return ["-j", t.chain];
    case "return":
      return ["-j", "RETURN"];
    case "accept":
      return ["-j", "ACCEPT"];
    case "drop":
      return ["-j", "DROP"];
    case "redirect":
      return ["-j", "REDIRECT", form === "osm" ? "--to-port" : "--to-ports", String(t.port)];
    case "dnat":
      return ["-j", "DNAT", "--to-destination", t.to];
  }
}

function destinationTokens(m: RuleMatch): string[] {
  if (!m.destination) return [];
  return m.destination.negate ? ["!", "-d", m.destination.text] : ["-d", m.destination.text];
}

function ownerTokens(m: RuleMatch): string[] {
  if (!m.uidOwner) return [];
  const uid = String(m.uidOwner.uid);
  return m.uidOwner.negate ? ["-m", "owner", "!", "--uid-owner", uid] : ["-m", "owner", "--uid-owner", uid];
}

/** The egress filter's own matches (OSM has none): conntrack state, ICMPv6 type. */
function filterTokens(m: RuleMatch): string[] {
  const t: string[] = [];
  if (m.ctState) t.push("-m", "conntrack", "--ctstate", m.ctState.map((s) => s.toUpperCase()).join(","));
  if (m.icmpv6Type !== undefined) t.push("-m", "icmp6", "--icmpv6-type", String(m.icmpv6Type));
  return t;
}

/** One rule as OSM writes it: `-A|-I CHAIN -p -i -o -d --dport --match multiport -m owner -j`. */
export function renderOsmRule(r: PlannedRule): string {
  const m = r.match;
  const tokens: string[] = [r.position === "insert" ? "-I" : "-A", r.chain];
  if (m.protocol) tokens.push("-p", m.protocol);
  if (m.inInterface) tokens.push("-i", m.inInterface);
  if (m.outInterface) tokens.push("-o", m.outInterface);
  tokens.push(...destinationTokens(m));
  if (m.resolvers !== undefined) tokens.push("-d", "$a");
  if (m.destinationPort !== undefined) tokens.push("--dport", String(m.destinationPort));
  if (m.destinationPorts) tokens.push("--match", "multiport", "--dports", m.destinationPorts.join(","));
  tokens.push(...filterTokens(m), ...ownerTokens(m), ...targetTokens(r.target, "osm"));
  return tokens.join(" ");
}

/**
 * The restore lines of one rule. A rule for the pod's DNS resolvers becomes one line per resolver: given
 * here, or (`"shell"`) read from /etc/resolv.conf by the init script's shell when it runs.
 */
export function restoreLines(r: PlannedRule, resolvers: readonly IpAddress[] | "shell"): string[] {
  const text = renderOsmRule(r);
  const family = r.match.resolvers;
  if (family === undefined) return [text];
  if (resolvers === "shell") {
    return [`$(for a in $(${RESOLVERS_FUNCTION} ${family}); do echo "${text}"; done)`];
  }
  return resolvers.filter((a) => a.family === family).map((a) => text.replace("$a", a.toString()));
}

/** The shell function the init script defines to read the pod's resolvers of one family (4 or 6). */
export const RESOLVERS_FUNCTION = "osm_resolvers";
export const RESOLVERS_FUNCTION_DEFINITION = `${RESOLVERS_FUNCTION}() { [ -r /etc/resolv.conf ] && awk -v f="$1" '$1 == "nameserver" && $2 !~ /%/ && ((f == 6) == ($2 ~ /:/)) { print $2 }' /etc/resolv.conf; }\n`;

/** Prints a /32 (/128) destination as iptables-save does: masked, with the length. */
function saveDestination(m: RuleMatch): string[] {
  if (!m.destination) return [];
  const text = m.destination.cidr.toString();
  return m.destination.negate ? ["!", "-d", text] : ["-d", text];
}

/** One rule as `iptables-save` prints it (canonical option order, implicit `-m tcp`/`-m udp`). */
export function renderSaveRule(
  r: PlannedRule,
  substitutions: Readonly<Record<string, string>> = {},
  resolver?: IpAddress,
): string {
  const m = r.match;
  const tokens: string[] = ["-A", r.chain, ...saveDestination(m)];
  if (resolver) tokens.push("-d", `${resolver.toString()}/${resolver.family === 4 ? 32 : 128}`);
  if (m.inInterface) tokens.push("-i", m.inInterface);
  if (m.outInterface) tokens.push("-o", m.outInterface);
  if (m.protocol) tokens.push("-p", m.protocol);
  if (m.destinationPort !== undefined) {
    tokens.push("-m", m.protocol ?? "tcp", "--dport", String(m.destinationPort));
  }
  if (m.destinationPorts) tokens.push("-m", "multiport", "--dports", m.destinationPorts.join(","));
  tokens.push(...filterTokens(m), ...ownerTokens(m));
  const target = targetTokens(r.target, "save").map((t) => substitutions[t] ?? t);
  tokens.push(...target);
  return tokens.join(" ");
}

const PAYLOAD_TITLE: Record<IptablesPayload["table"], string> = {
  nat: "OSM sidecar interception rules",
  filter: "osm-ts egress filter (non-TCP)",
};

/** The iptables-restore input for one family (from `# OSM ...` to `COMMIT\n`), OSM's layout. */
export function renderRestorePayload(
  payload: IptablesPayload,
  resolvers: readonly IpAddress[] | "shell" = "shell",
): string {
  const lines = [
    `# ${PAYLOAD_TITLE[payload.table]}${payload.family === 4 ? "" : " (IPv6)"}`,
    `*${payload.table}`,
    ...payload.chains.map((c) => `:${c} - [0:0]`),
    ...payload.rules.flatMap((r) => restoreLines(r, resolvers)),
    "COMMIT",
  ];
  return `${lines.join("\n")}\n`;
}

export function heredoc(command: string, body: string): string {
  return `${command} --noflush <<EOF\n${body}EOF\n`;
}

/**
 * The shell script for the init container (`/bin/sh -c <script>`). For IPv4-only OSM inputs it is OSM's
 * text byte for byte; with IPv6 entries an ip6tables-restore heredoc follows, and `set -e` makes the first
 * failure stop the script.
 */
export function renderIptables(plan: InterceptionPlan): string {
  const v4 = heredoc("iptables-restore", renderRestorePayload(plan.iptables.v4));
  if (!plan.iptables.v6 && !plan.egressFilter) return v4;
  const v6 = plan.iptables.v6 ? heredoc("ip6tables-restore", renderRestorePayload(plan.iptables.v6)) : "";
  return `set -e\n${v4}${v6}${renderEgressFilter(plan)}`;
}

/** The egress filter's heredocs (egress disabled), with the resolver function they use; else "". */
export function renderEgressFilter(plan: InterceptionPlan): string {
  if (!plan.egressFilter) return "";
  return (
    RESOLVERS_FUNCTION_DEFINITION +
    heredoc("iptables-restore", renderRestorePayload(plan.egressFilter.v4)) +
    heredoc("ip6tables-restore", renderRestorePayload(plan.egressFilter.v6))
  );
}

/** The payload's rules in the order the kernel holds them, per chain, as `iptables-save` prints them. */
export function renderSaveRules(
  payload: IptablesPayload,
  substitutions: Readonly<Record<string, string>> = {},
  resolvers: readonly IpAddress[] = [],
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [chain, rules] of effectiveOrder(payload.rules)) {
    out.set(
      chain,
      rules.flatMap((r) =>
        r.match.resolvers === undefined
          ? [renderSaveRule(r, substitutions)]
          : resolvers
              .filter((a) => a.family === r.match.resolvers)
              .map((a) => renderSaveRule(r, substitutions, a)),
      ),
    );
  }
  return out;
}

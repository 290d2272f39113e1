/**
 * iptables renderings of the plan. Pure.
 *
 * - OSM form: what OSM v1.2.4 `generateIptablesCommands` writes (docs/osm-behaviour.md §1.2–1.3), byte for byte for IPv4 OSM
 *   inputs: `--match multiport`, `--to-port`, `-I` vs `-A`, literal `$POD_IP`. No rule comments, because
 *   OSM's bytes have none; our rules are identified by the OSM_PROXY_* chains and the jumps into them.
 * - Save form: the same rules as `iptables-save` prints them back in effective order, which is what verify
 *   compares against.
 */

import { effectiveOrder } from "./plan.ts";
import type { InterceptionPlan, IptablesPayload, PlannedRule, RuleMatch, RuleTarget } from "./types.ts";

function targetTokens(t: RuleTarget, form: "osm" | "save"): string[] {
  switch (t.kind) {
    case "jump":
      return ["-j", t.chain];
    case "return":
      return ["-j", "RETURN"];
    case "accept":
      return ["-j", "ACCEPT"];
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

/** One rule as OSM writes it: `-A|-I CHAIN -p -i -o -d --dport --match multiport -m owner -j`. */
export function renderOsmRule(r: PlannedRule): string {
  const m = r.match;
  const tokens: string[] = [r.position === "insert" ? "-I" : "-A", r.chain];
  if (m.protocol) tokens.push("-p", m.protocol);
  if (m.inInterface) tokens.push("-i", m.inInterface);
  if (m.outInterface) tokens.push("-o", m.outInterface);
  tokens.push(...destinationTokens(m));
  if (m.destinationPort !== undefined) tokens.push("--dport", String(m.destinationPort));
  if (m.destinationPorts) tokens.push("--match", "multiport", "--dports", m.destinationPorts.join(","));
  tokens.push(...ownerTokens(m), ...targetTokens(r.target, "osm"));
  return tokens.join(" ");
}

/** Prints a /32 (/128) destination as iptables-save does: masked, with the length. */
function saveDestination(m: RuleMatch): string[] {
  if (!m.destination) return [];
  const text = m.destination.cidr.toString();
  return m.destination.negate ? ["!", "-d", text] : ["-d", text];
}

/** One rule as `iptables-save` prints it (canonical option order, implicit `-m tcp`). */
export function renderSaveRule(r: PlannedRule, substitutions: Readonly<Record<string, string>> = {}): string {
  const m = r.match;
  const tokens: string[] = ["-A", r.chain, ...saveDestination(m)];
  if (m.inInterface) tokens.push("-i", m.inInterface);
  if (m.outInterface) tokens.push("-o", m.outInterface);
  if (m.protocol) tokens.push("-p", m.protocol);
  if (m.destinationPort !== undefined) tokens.push("-m", "tcp", "--dport", String(m.destinationPort));
  if (m.destinationPorts) tokens.push("-m", "multiport", "--dports", m.destinationPorts.join(","));
  tokens.push(...ownerTokens(m));
  const target = targetTokens(r.target, "save").map((t) => substitutions[t] ?? t);
  tokens.push(...target);
  return tokens.join(" ");
}

/** The iptables-restore input for one family (from `# OSM ...` to `COMMIT\n`), OSM's layout. */
export function renderRestorePayload(payload: IptablesPayload): string {
  const lines = [
    payload.family === 4 ? "# OSM sidecar interception rules" : "# OSM sidecar interception rules (IPv6)",
    "*nat",
    ...payload.chains.map((c) => `:${c} - [0:0]`),
    ...payload.rules.map(renderOsmRule),
    "COMMIT",
  ];
  return `${lines.join("\n")}\n`;
}

function heredoc(command: string, body: string): string {
  return `${command} --noflush <<EOF\n${body}EOF\n`;
}

/**
 * The shell script for the init container (`/bin/sh -c <script>`). For IPv4-only OSM inputs it is OSM's
 * text byte for byte; with IPv6 entries an ip6tables-restore heredoc follows, and `set -e` makes the first
 * failure stop the script.
 */
export function renderIptables(plan: InterceptionPlan): string {
  const v4 = heredoc("iptables-restore", renderRestorePayload(plan.iptables.v4));
  if (!plan.iptables.v6) return v4;
  return `set -e\n${v4}${heredoc("ip6tables-restore", renderRestorePayload(plan.iptables.v6))}`;
}

/** The payload's rules in the order the kernel holds them, per chain, as `iptables-save` prints them. */
export function renderSaveRules(
  payload: IptablesPayload,
  substitutions: Readonly<Record<string, string>> = {},
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [chain, rules] of effectiveOrder(payload.rules)) {
    out.set(
      chain,
      rules.map((r) => renderSaveRule(r, substitutions)),
    );
  }
  return out;
}

/**
 * The script the `osm-init` container runs (`/bin/sh -c <script>`), rendered into the PodSpec by the injector.
 * Pure.
 */
import type { EffectiveTrafficPolicy } from "../config/policy-types.ts";
import { buildPlan } from "./plan.ts";
import { NFT_TABLE, resolverSetName } from "./plan-nft.ts";
import {
  heredoc,
  RESOLVERS_FUNCTION,
  RESOLVERS_FUNCTION_DEFINITION,
  renderRestorePayload,
} from "./render-iptables.ts";
import { renderNft } from "./render-nft.ts";
import type { InterceptionPlan } from "./types.ts";

export interface InitScriptOptions {
  /**
   * `iptables`: OSM v1.2.4's IPv4 script byte for byte (for IPv4 OSM inputs), then the IPv6 counterpart.
   * `nftables` / `auto`: a script that uses nft when it works in the pod (one atomic `nft -f`), and falls back
   * to the iptables script otherwise.
   */
  readonly backend: "iptables" | "nftables" | "auto";
}

/** True in a network namespace with IPv6 (the pod has at least `::1`): then IPv6 must be intercepted too. */
const HAS_IPV6 = "[ -e /proc/net/if_inet6 ]";

/** An ip6tables-restore that stops the script with a clear error: IPv6 that cannot be covered fails closed. */
function ip6tablesRestore(body: string): string {
  const why = "osm-init: ip6tables-restore failed: this pod has IPv6, whose traffic would bypass the sidecar";
  return heredoc("ip6tables-restore", body).replace(
    "ip6tables-restore --noflush <<EOF\n",
    `ip6tables-restore --noflush <<EOF || { echo "${why}" >&2; exit 1; }\n`,
  );
}

/**
 * The iptables script: `set -e`, OSM's IPv4 heredoc as OSM writes it, the egress filter's (egress disabled),
 * then, when the pod has IPv6, the ip6tables counterpart of both: always, even when the policy has no IPv6
 * entry, so IPv6 never bypasses the sidecar.
 */
function renderInitIptables(plan: InterceptionPlan): string {
  const filter = plan.egressFilter;
  const v6 = plan.iptables.v6;
  let script = `set -e\n${heredoc("iptables-restore", renderRestorePayload(plan.iptables.v4))}`;
  if (filter) {
    script += RESOLVERS_FUNCTION_DEFINITION + heredoc("iptables-restore", renderRestorePayload(filter.v4));
  }
  if (v6) {
    script += `if ${HAS_IPV6}; then\n${ip6tablesRestore(renderRestorePayload(v6))}`;
    if (filter) script += ip6tablesRestore(renderRestorePayload(filter.v6));
    script += "fi\n";
  }
  return script;
}

/** nft: the resolvers, read at run time, become elements of the resolver sets in the same transaction. */
function nftResolverElements(): string {
  return ([4, 6] as const)
    .map(
      (f) =>
        `$(for a in $(${RESOLVERS_FUNCTION} ${f}); do echo "add element inet ${NFT_TABLE} ${resolverSetName(f)} { $a }"; done)\n`,
    )
    .join("");
}

/** The init container's shell script. `$POD_IP` is left for the shell to expand (OSM does the same). */
export function renderInitScript(policy: EffectiveTrafficPolicy, options: InitScriptOptions): string {
  const plan = buildPlan(policy, { ipv6: true });
  const iptables = renderInitIptables(plan);
  if (options.backend === "iptables") return iptables;
  const resolvers = plan.egressFilter ? RESOLVERS_FUNCTION_DEFINITION : "";
  const elements = plan.egressFilter ? nftResolverElements() : "";
  return `if nft list tables >/dev/null 2>&1; then\n${resolvers}nft -f - <<EOF\n${renderNft(plan)}${elements}EOF\nelse\n${iptables}fi\n`;
}

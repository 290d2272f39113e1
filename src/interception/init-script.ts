/**
 * The script the `osm-init` container runs (`/bin/sh -c <script>`), rendered into the PodSpec by the injector.
 * Pure.
 */
import type { EffectiveTrafficPolicy } from "../config/policy-types.ts";
import { buildPlan } from "./plan.ts";
import { renderIptables } from "./render-iptables.ts";
import { renderNft } from "./render-nft.ts";

export interface InitScriptOptions {
  /**
   * `iptables`: OSM v1.2.4's script byte for byte (for IPv4 OSM inputs). `nftables` / `auto`: a script that
   * uses nft when it works in the pod (one atomic `nft -f`), and falls back to the iptables script otherwise.
   */
  readonly backend: "iptables" | "nftables" | "auto";
}

/** The init container's shell script. `$POD_IP` is left for the shell to expand (OSM does the same). */
export function renderInitScript(policy: EffectiveTrafficPolicy, options: InitScriptOptions): string {
  const plan = buildPlan(policy);
  const iptables = renderIptables(plan);
  if (options.backend === "iptables") return iptables;
  return `if nft list tables >/dev/null 2>&1; then\nnft -f - <<EOF\n${renderNft(plan)}EOF\nelse\n${iptables}fi\n`;
}

/**
 * Effective traffic policy → interception plan (the rule IR), pure: the iptables payloads
 * (`plan-iptables.ts`, OSM's rules byte for byte) and the nft table (`plan-nft.ts`) from the same typed
 * policy, on the shared building blocks of `plan-rules.ts`.
 */
import type { EffectiveTrafficPolicy } from "../config/policy-types.ts";
import { tryParseIp } from "../net/index.ts";
import type { IpAddress } from "../net/types.ts";
import { buildEgressPayload, buildIptablesPayload } from "./plan-iptables.ts";
import { buildNftPlan } from "./plan-nft.ts";
import type { InterceptionPlan } from "./types.ts";

export interface BuildPlanOptions {
  /** Emit the ip6tables payload even when the policy has no IPv6 entry (nft always covers both). */
  readonly ipv6?: boolean;
  /** The pod's DNS resolvers, when known here (the init script reads /etc/resolv.conf at run time instead). */
  readonly resolvers?: readonly IpAddress[];
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

/**
 * Inbound access control (SMI TrafficTargets, with permissive mode off), pure: is a connection from this
 * source address to this port allowed, and by which TrafficTarget. The controller resolved each
 * TrafficTarget's service accounts to the addresses of their meshed pods (src/controller/access-policy.ts);
 * without mTLS the source address is the only identity a connection carries. Whether a port's requests are
 * routed by HTTPRouteGroup matches is decided here too; the routes themselves are inbound-routes.ts (loaded
 * on the first such connection: they bring the RE2 engine).
 */
import type { SidecarConfig, SidecarInboundAccess } from "../config/sidecar-api.ts";
import { tryParseIp } from "../net/ip.ts";

interface CompiledRule {
  readonly trafficTarget: string;
  /** undefined: every port. */
  readonly ports: ReadonlySet<number> | undefined;
  /** source address (canonical) → `<namespace>/<pod>`. */
  readonly sources: ReadonlyMap<string, string>;
}

/** The rules of one config, compiled for lookups; undefined when the config is permissive. */
export type InboundAccess =
  | {
      readonly rules: readonly CompiledRule[];
      /** The HTTP ports whose requests HTTPRouteGroup routes decide (empty when no rule has routes). */
      readonly routedPorts: ReadonlySet<number>;
      /** The config's section, for inbound-routes.ts. */
      readonly spec: SidecarInboundAccess;
    }
  | undefined;

export type AccessVerdict =
  | { readonly allowed: true; readonly trafficTarget?: string; readonly sourcePod?: string }
  | { readonly allowed: false };

export function compileInboundAccess(config: SidecarConfig): InboundAccess {
  const spec = config.inboundAccess;
  if (spec === undefined) return undefined;
  // OSM builds HTTP routes only from HTTPRouteGroup rules; with none, the ports stay decided per connection.
  const routed = spec.rules.some((rule) => rule.httpMatches !== undefined);
  return {
    rules: spec.rules.map((rule) => ({
      trafficTarget: rule.trafficTarget,
      ports: rule.ports === undefined ? undefined : new Set(rule.ports),
      sources: new Map(rule.sources.map((s) => [s.ip, s.pod])),
    })),
    routedPorts: new Set(routed ? (spec.httpPorts ?? []) : []),
    spec,
  };
}

/** Node prints a v4 peer on a dual-stack socket as `::ffff:a.b.c.d`, and v6 in its own spelling. */
export function canonicalPeer(address: string): string {
  const text = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
  const parsed = tryParseIp(text);
  return parsed.ok ? parsed.value.toString() : text;
}

/** The first rule (in TrafficTarget name order, as the controller sent them) allowing `peer` to `port`. */
export function decideInboundAccess(access: InboundAccess, peer: string, port: number): AccessVerdict {
  if (access === undefined) return { allowed: true };
  const source = canonicalPeer(peer);
  for (const rule of access.rules) {
    if (rule.ports !== undefined && !rule.ports.has(port)) continue;
    const pod = rule.sources.get(source);
    if (pod !== undefined) return { allowed: true, trafficTarget: rule.trafficTarget, sourcePod: pod };
  }
  return { allowed: false };
}

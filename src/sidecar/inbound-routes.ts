/**
 * HTTPRouteGroup routes at the destination, pure: what OSM's inbound HTTP route config does with a request
 * (pkg/catalog/inbound_traffic_policies.go builds one route per HTTPRouteGroup match of the TrafficTargets
 * naming this destination, the same match from several TrafficTargets merged into one route whose allowed
 * sources are all of theirs; pkg/envoy/generator/rds: each route carries an RBAC policy). Envoy takes the
 * first route whose match holds: the request goes to the app when its source is one the route allows, else
 * Envoy's RBAC filter answers 403 `RBAC: access denied`; no route holds: 404 (no route).
 */
import type { SidecarInboundAccess } from "../config/sidecar-api.ts";
import type { SidecarHttpMatch } from "../egress/types.ts";
import {
  type CompiledHttpMatch,
  compileHttpMatches,
  type HttpRequestFacts,
  httpMatchHolds,
} from "../smi/http-match.ts";
import { canonicalPeer } from "./access.ts";

export interface InboundRoute {
  /** `<namespace>/<HTTPRouteGroup>#<match>` of the first match that made this route. */
  readonly name: string;
  readonly match: CompiledHttpMatch;
  /** Allowed source address (canonical) → the first TrafficTarget (in name order) that allows it here. */
  readonly sources: ReadonlyMap<string, string>;
}

/** Envoy's RBAC filter's answer to a request its policy denies. */
export const RBAC_DENIED_BODY = "RBAC: access denied";

export type RequestVerdict =
  | { readonly allowed: true; readonly trafficTarget: string; readonly route: string }
  | { readonly allowed: false; readonly status: 403; readonly route: string }
  | { readonly allowed: false; readonly status: 404 };

/** Two matches are one route when they match the same requests as written (OSM's MergeRules compares them so). */
function routeKey(match: {
  pathRegex?: string;
  methods?: string[];
  headers?: Record<string, string>[];
}): string {
  const methods = match.methods === undefined || match.methods.length === 0 ? ["*"] : match.methods;
  return JSON.stringify([match.pathRegex || ".*", methods, match.headers ?? []]);
}

/** The routes of an inbound access section, in rule order (TrafficTarget names), merged. */
export function compileInboundRoutes(spec: SidecarInboundAccess): InboundRoute[] {
  const routes = new Map<string, { first: SidecarHttpMatch; sources: Map<string, string> }>();
  const order: string[] = [];
  for (const rule of spec.rules) {
    for (const match of rule.httpMatches ?? []) {
      const key = routeKey(match);
      let route = routes.get(key);
      if (route === undefined) {
        route = { first: match, sources: new Map() };
        routes.set(key, route);
        order.push(key);
      }
      for (const source of rule.sources) {
        if (!route.sources.has(source.ip)) route.sources.set(source.ip, rule.trafficTarget);
      }
    }
  }
  return order.map((key) => {
    const { first, sources } = routes.get(key)!;
    return { name: `${first.routeGroup}#${first.name}`, match: compileHttpMatches([first])[0]!, sources };
  });
}

/** OSM's answer to one request from `peer`: the first route whose match holds decides. */
export function decideInboundRequest(
  routes: readonly InboundRoute[],
  peer: string,
  request: HttpRequestFacts,
): RequestVerdict {
  const route = routes.find((r) => httpMatchHolds(r.match, request));
  if (route === undefined) return { allowed: false, status: 404 };
  const trafficTarget = route.sources.get(canonicalPeer(peer));
  if (trafficTarget === undefined) return { allowed: false, status: 403, route: route.name };
  return { allowed: true, trafficTarget, route: route.name };
}

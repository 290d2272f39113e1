/**
 * The http Egress path's per-request decision, pure: among the rules that admit a request's Host
 * (`rulesForHost`), the first that allows the request itself: one without HTTPRouteGroup matches allows any
 * request, one with matches only those one of them holds for; none: 404, as OSM's Envoy answers a path
 * outside its routes. The sidecar (src/sidecar/egress-http.ts) and `osm explain pod/… --path` share it.
 * Apart from decide.ts because it brings the RE2 engine, which a sidecar loads on its first http Egress
 * connection only.
 */
import {
  type CompiledHttpMatch,
  compileHttpMatches,
  type HttpRequestFacts,
  httpMatchHolds,
} from "../smi/http-match.ts";
import type { PortRule } from "./decide.ts";
import type { SidecarHttpMatch } from "./types.ts";

export type HttpRequestDecision =
  /** `match`: the HTTPRouteGroup match that holds; absent when the Egress names none (any request). */
  | { readonly kind: "allow"; readonly egress: string; readonly match?: SidecarHttpMatch }
  /** The Host is allowed (by `egress`, the first such rule), the request is not: answered 404. */
  | { readonly kind: "not-found"; readonly egress: string };

/** Compiled once per rule object (a new config brings new rule objects). */
const compiled = new WeakMap<PortRule, CompiledHttpMatch[]>();

function matchesOf(rule: PortRule): CompiledHttpMatch[] | undefined {
  const matches = rule.rule.httpMatches;
  if (matches === undefined) return undefined;
  let list = compiled.get(rule);
  if (list === undefined) {
    list = compileHttpMatches(matches);
    compiled.set(rule, list);
  }
  return list;
}

/** Decides one request; `rules` are those admitting its Host (non-empty). */
export function decideHttpRequest(
  rules: readonly PortRule[],
  request: HttpRequestFacts,
): HttpRequestDecision {
  for (const rule of rules) {
    const matches = matchesOf(rule);
    if (matches === undefined) return { kind: "allow", egress: rule.egress };
    const index = matches.findIndex((match) => httpMatchHolds(match, request));
    if (index >= 0) return { kind: "allow", egress: rule.egress, match: rule.rule.httpMatches![index]! };
  }
  return { kind: "not-found", egress: rules[0]!.egress };
}

/** `egress-http-route/get: GET,POST /get.*`: a match as `osm explain` names it. */
export function describeHttpMatch(match: SidecarHttpMatch): string {
  const conditions = [
    ...(match.methods?.length ? [match.methods.join(",")] : []),
    ...(match.pathRegex ? [match.pathRegex] : []),
    ...(match.headers ?? []).flatMap((h) => Object.entries(h).map(([name, value]) => `${name}: ${value}`)),
  ];
  const routeGroup = match.routeGroup.slice(match.routeGroup.indexOf("/") + 1);
  return `${routeGroup}/${match.name}: ${conditions.join(" ") || "any request"}`;
}

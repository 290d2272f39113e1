/**
 * Who may talk to whom under SMI access control, as OSM computes it (pkg/catalog/traffictarget.go,
 * outbound_traffic_policies.go ListOutboundServicesForIdentity), as pure functions over valid TrafficTargets
 * and TCPRoutes. Identities are service accounts, written `<namespace>/<name>`.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { SidecarHttpMatch } from "../egress/types.ts";
import type { HttpRouteGroup } from "./http-route-group.ts";
import type { IdentitySubject, TCPRoute, TrafficTarget, TrafficTargetRule } from "./schema.ts";
import { HTTP_ROUTE_GROUP_KIND, TCP_ROUTE_KIND } from "./schema.ts";

/** A service account as `<namespace>/<name>`. */
export type Identity = string;

/** A pod's identity: its service account (`default` when the spec names none, as the API server defaults). */
export function podIdentity(pod: V1Pod): Identity {
  const namespace = pod.metadata?.namespace ?? "default";
  return `${namespace}/${pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount ?? "default"}`;
}

export function subjectIdentity(subject: IdentitySubject): Identity {
  return `${subject.namespace}/${subject.name}`;
}

/** `<namespace>/<name>` of a TrafficTarget (or any object). */
export function objectName(object: { metadata: { name?: string; namespace?: string } }): string {
  return `${object.metadata.namespace ?? ""}/${object.metadata.name ?? ""}`;
}

/** Sorted by name, so "the TrafficTarget that allowed it" is the same answer everywhere. */
function byName(targets: readonly TrafficTarget[]): TrafficTarget[] {
  return [...targets].sort((a, b) => objectName(a).localeCompare(objectName(b)));
}

/**
 * The TrafficTargets that let `source` connect to `destination`: the destination is that service account
 * and a source is this one (OSM's DoesTargetRefDstPod/DoesTargetRefSrcPod), in name order.
 */
export function allowingTrafficTargets(
  targets: readonly TrafficTarget[],
  source: Identity,
  destination: Identity,
): TrafficTarget[] {
  return byName(targets).filter(
    (t) =>
      subjectIdentity(t.spec.destination) === destination &&
      t.spec.sources.some((s) => subjectIdentity(s) === source),
  );
}

/**
 * The destinations `source` may connect to, each with the first TrafficTarget (by name) that allows it:
 * OSM's ListOutboundServicesForIdentity before it maps identities to services.
 */
export function outboundIdentities(
  targets: readonly TrafficTarget[],
  source: Identity,
): Map<Identity, string> {
  const out = new Map<Identity, string>();
  for (const target of byName(targets)) {
    if (!target.spec.sources.some((s) => subjectIdentity(s) === source)) continue;
    const destination = subjectIdentity(target.spec.destination);
    if (!out.has(destination)) out.set(destination, objectName(target));
  }
  return out;
}

/** One TrafficTarget as the destination applies it to inbound connections. */
export interface InboundGrant {
  readonly trafficTarget: string;
  readonly sources: readonly Identity[];
  /** The ports its TCPRoutes list; undefined: any port (no TCPRoute rule, as OSM's network RBAC). */
  readonly ports: readonly number[] | undefined;
  /**
   * The HTTP routes of its HTTPRouteGroup rules (OSM's routesFromRules), each match tagged with its group;
   * undefined when it has no HTTPRouteGroup rule. A group that does not exist adds no route.
   */
  readonly httpMatches: readonly SidecarHttpMatch[] | undefined;
}

/** The matches an HTTPRouteGroup rule selects: those it names (none named: all of the group's). */
function ruleMatches(
  rule: TrafficTargetRule,
  namespace: string,
  groups: ReadonlyMap<string, HttpRouteGroup>,
): SidecarHttpMatch[] {
  const routeGroup = `${namespace}/${rule.name}`;
  const group = groups.get(routeGroup);
  if (group === undefined) return [];
  const wanted = rule.matches === undefined ? undefined : new Set(rule.matches);
  return group.spec.matches
    .filter((match) => wanted === undefined || wanted.has(match.name))
    .map((match) => ({ ...match, routeGroup }));
}

/**
 * The grants for connections into `destination` (OSM's ListInboundTrafficTargetsWithRoutes): a TrafficTarget
 * naming a TCPRoute that does not exist in its namespace grants nothing (OSM logs it and skips the target).
 */
export function inboundGrants(
  targets: readonly TrafficTarget[],
  routes: readonly TCPRoute[],
  httpRouteGroups: readonly HttpRouteGroup[],
  destination: Identity,
): InboundGrant[] {
  const routeByName = new Map(routes.map((r) => [objectName(r), r]));
  const groupByName = new Map(httpRouteGroups.map((g) => [objectName(g), g]));
  const grants: InboundGrant[] = [];
  for (const target of byName(targets)) {
    if (subjectIdentity(target.spec.destination) !== destination) continue;
    const tcpRules = target.spec.rules.filter((r) => r.kind === TCP_ROUTE_KIND);
    const ports = new Set<number>();
    let complete = true;
    for (const rule of tcpRules) {
      const route = routeByName.get(`${target.metadata.namespace ?? ""}/${rule.name}`);
      if (route === undefined) complete = false;
      else for (const port of route.spec.matches.ports) ports.add(port);
    }
    if (!complete) continue;
    const httpRules = target.spec.rules.filter((r) => r.kind === HTTP_ROUTE_GROUP_KIND);
    grants.push({
      trafficTarget: objectName(target),
      sources: [...new Set(target.spec.sources.map(subjectIdentity))],
      ports: tcpRules.length === 0 ? undefined : [...ports].sort((a, b) => a - b),
      httpMatches:
        httpRules.length === 0
          ? undefined
          : httpRules.flatMap((r) => ruleMatches(r, target.metadata.namespace ?? "", groupByName)),
    });
  }
  return grants;
}

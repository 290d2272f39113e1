/**
 * Which Egress rules apply to one sidecar: the controller's half of the Egress policy, pure. OSM's
 * `pkg/catalog/egress.go`: an Egress applies to a pod when one of its `sources` is the pod's service account;
 * nothing applies while MeshConfig `enableEgress` is true (egress is then open anyway); an HTTPRouteGroup
 * match is looked up in the Egress's own namespace, and one that does not exist allows no request (OSM
 * builds no route for it), reported.
 */
import { parseCidr } from "../net/index.ts";
import type { HttpRouteGroup } from "../smi/http-route-group.ts";
import { HTTP_ROUTE_GROUP_KIND } from "../smi/schema.ts";
import type { Egress } from "./schema.ts";
import type { SidecarEgressPolicy, SidecarEgressRule } from "./types.ts";

/** A pod's identity as Egress sources name it. */
export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

function nameOf(object: {
  metadata?: { name?: string | undefined; namespace?: string | undefined };
}): string {
  return `${object.metadata?.namespace ?? "default"}/${object.metadata?.name ?? ""}`;
}

/** One Egress as the sidecar applies it (sorted, canonical text, route groups resolved). */
function ruleOf(egress: Egress, groups: ReadonlyMap<string, HttpRouteGroup>): SidecarEgressRule {
  const namespace = egress.metadata?.namespace ?? "default";
  const refs = (egress.spec.matches ?? []).filter((m) => m.kind === HTTP_ROUTE_GROUP_KIND);
  const missing: string[] = [];
  const httpMatches = refs.flatMap((ref) => {
    const group = groups.get(`${namespace}/${ref.name}`);
    if (group === undefined) missing.push(`${namespace}/${ref.name}`);
    return (group?.spec.matches ?? []).map((match) => ({ ...match, routeGroup: `${namespace}/${ref.name}` }));
  });
  return {
    egress: nameOf(egress),
    hosts: [...new Set((egress.spec.hosts ?? []).map((h) => h.toLowerCase()))].sort(),
    ipAddresses: (egress.spec.ipAddresses ?? []).map((range) => parseCidr(range).toString()),
    ports: egress.spec.ports.map((p) => ({ number: p.number, protocol: p.protocol })),
    ...(refs.length > 0 ? { httpMatches } : {}),
    ...(missing.length > 0 ? { missingRouteGroups: missing } : {}),
  };
}

/**
 * The Egress section of a sidecar's config: undefined while egress is enabled (Egress policies are ignored
 * then, OSM's rule); otherwise the rules naming the pod's service account, sorted by Egress name, so equal
 * inputs give equal documents.
 */
export function egressPolicyFor(
  serviceAccount: ServiceAccountRef,
  input: {
    readonly enableEgress: boolean;
    readonly egresses: readonly Egress[];
    readonly httpRouteGroups: readonly HttpRouteGroup[];
  },
): SidecarEgressPolicy | undefined {
  if (input.enableEgress) return undefined;
  const groups = new Map(input.httpRouteGroups.map((g) => [nameOf(g), g]));
  const rules = input.egresses
    .filter((egress) =>
      egress.spec.sources.some(
        (s) => s.name === serviceAccount.name && s.namespace === serviceAccount.namespace,
      ),
    )
    .map((egress) => ruleOf(egress, groups))
    .sort((a, b) => a.egress.localeCompare(b.egress));
  return { serviceAccount: `${serviceAccount.namespace}/${serviceAccount.name}`, rules };
}

/**
 * Discovery documents, aggregated (apidiscovery.k8s.io/v2: two requests, /api and /apis) and legacy
 * (APIVersions, APIGroupList, APIGroup, APIResourceList). kubectl 1.32 asks for aggregated and needs the
 * exact content type on the reply (docs/kubectl-api.md §0.2).
 */
import { apiVersionOf, type ResourceRegistry, type ResourceType, VERBS } from "./resources.ts";

export const AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
export const AGGREGATED_V2BETA1_CONTENT_TYPE =
  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/** Which aggregated discovery version the Accept header asks for, if any. */
export function wantsAggregated(accept: string | undefined): "v2" | "v2beta1" | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(",")) {
    const p = part.replace(/\s+/g, "");
    if (p.includes("g=apidiscovery.k8s.io") && p.includes("as=APIGroupDiscoveryList")) {
      if (p.includes("v=v2beta1")) return "v2beta1";
      if (p.includes("v=v2")) return "v2";
    }
  }
  return undefined;
}

function kindRef(t: ResourceType) {
  return { group: t.group, version: t.version, kind: t.kind };
}

const CONNECT_OPTIONS: Readonly<Record<string, string>> = {
  exec: "PodExecOptions",
  portforward: "PodPortForwardOptions",
  proxy: "PodProxyOptions",
};

function subresourceKind(t: ResourceType, sub: string) {
  if (sub === "scale") return { group: "autoscaling", version: "v1", kind: "Scale" };
  const options = CONNECT_OPTIONS[sub];
  if (options) return { group: "", version: "v1", kind: options };
  if (sub === "log") return { group: "", version: "v1", kind: "Pod" };
  if (sub === "token") return { group: "authentication.k8s.io", version: "v1", kind: "TokenRequest" };
  return kindRef(t);
}

function subresourceVerbs(sub: string): string[] {
  if (sub === "exec" || sub === "portforward") return ["create", "get"];
  if (sub === "token") return ["create"];
  if (sub === "log") return ["get"];
  if (sub === "proxy") return ["create", "delete", "get", "patch", "update"];
  if (sub === "finalize") return ["update"];
  return ["get", "patch", "update"];
}

function aggregatedResource(t: ResourceType) {
  return {
    resource: t.resource,
    responseKind: kindRef(t),
    scope: t.namespaced ? "Namespaced" : "Cluster",
    singularResource: t.singular,
    shortNames: [...t.shortNames],
    categories: [...t.categories],
    verbs: [...(t.verbs ?? VERBS)],
    subresources: t.subresources.map((s) => ({
      subresource: s,
      responseKind: subresourceKind(t, s),
      verbs: subresourceVerbs(s),
    })),
  };
}

/** The APIGroupDiscoveryList for `/api` (core) or `/apis` (every named group). */
export function buildAggregated(registry: ResourceRegistry, core: boolean, version: "v2" | "v2beta1") {
  const items = registry
    .groupVersions()
    .filter((g) => (g.group === "") === core)
    .map((g) => ({
      metadata: core ? {} : { name: g.group },
      versions: g.versions.map((v) => ({
        version: v,
        freshness: "Current",
        resources: registry
          .all()
          .filter((t) => t.group === g.group && t.version === v)
          .map(aggregatedResource),
      })),
    }));
  return { kind: "APIGroupDiscoveryList", apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items };
}

export function buildApiVersions(serverAddress: string) {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(name: string, versions: string[]) {
  const gvs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: gvs, preferredVersion: gvs[0] };
}

export function buildApiGroupList(registry: ResourceRegistry) {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: registry
      .groupVersions()
      .filter((g) => g.group !== "")
      .map((g) => apiGroup(g.group, g.versions)),
  };
}

export function buildApiGroup(registry: ResourceRegistry, group: string) {
  const g = registry.groupVersions().find((x) => x.group === group);
  return g ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g.group, g.versions) } : undefined;
}

export function buildResourceList(registry: ResourceRegistry, group: string, version: string) {
  const types = registry.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    resources.push({
      name: t.resource,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: [...(t.verbs ?? VERBS)],
      shortNames: [...t.shortNames],
      categories: [...t.categories],
    });
    for (const s of t.subresources) {
      const k = subresourceKind(t, s);
      resources.push({
        name: `${t.resource}/${s}`,
        singularName: "",
        namespaced: t.namespaced,
        group: k.group,
        version: k.version,
        kind: k.kind,
        verbs: subresourceVerbs(s),
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: apiVersionOf({ group, version }),
    resources,
  };
}

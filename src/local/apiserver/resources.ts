/**
 * The resource types the server knows: built-in kinds plus one entry per CRD version. Discovery, OpenAPI,
 * routing and storage keys are all derived from this one registry.
 */

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** Plural, e.g. `deployments`. */
  readonly resource: string;
  readonly kind: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  /** Subresources served, e.g. `status`, `scale`, `exec`, `log`, `proxy`. */
  readonly subresources: readonly string[];
  /** Verbs served when not all of `VERBS` (the reviews: create only, nothing stored). */
  readonly verbs?: readonly string[];
  /** Present for custom resources: the CRD's name and this version's schema and printer columns. */
  readonly crd?: {
    readonly name: string;
    readonly schema: Record<string, unknown> | undefined;
    readonly printerColumns: readonly { name: string; type: string; jsonPath: string; priority?: number }[];
    readonly storageVersion: string;
    readonly served: boolean;
  };
}

export const VERBS = [
  "create",
  "delete",
  "deletecollection",
  "get",
  "list",
  "patch",
  "update",
  "watch",
] as const;

/** `group/resource` (core: `/resource`): the storage key of a kind, the same for all its versions. */
export function groupResource(type: Pick<ResourceType, "group" | "resource">): string {
  return `${type.group}/${type.resource}`;
}

export function apiVersionOf(type: Pick<ResourceType, "group" | "version">): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

function builtin(
  group: string,
  version: string,
  resource: string,
  kind: string,
  namespaced: boolean,
  shortNames: string[] = [],
  subresources: string[] = [],
  categories: string[] = [],
): ResourceType {
  return {
    group,
    version,
    resource,
    kind,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    categories,
    subresources,
  };
}

/** A create-only review resource: answered from the request, never stored (`access-review.ts`). */
function review(group: string, resource: string, kind: string): ResourceType {
  return { ...builtin(group, "v1", resource, kind, false), verbs: ["create"] };
}

export const BUILTIN_TYPES: readonly ResourceType[] = [
  builtin("", "v1", "namespaces", "Namespace", false, ["ns"], ["status", "finalize"]),
  builtin("", "v1", "pods", "Pod", true, ["po"], ["status", "exec", "log", "portforward", "proxy"], ["all"]),
  builtin("", "v1", "services", "Service", true, ["svc"], ["status", "proxy"], ["all"]),
  builtin("", "v1", "endpoints", "Endpoints", true, ["ep"]),
  builtin("", "v1", "nodes", "Node", false, ["no"], ["status"]),
  builtin("", "v1", "serviceaccounts", "ServiceAccount", true, ["sa"], ["token"]),
  builtin("", "v1", "configmaps", "ConfigMap", true, ["cm"]),
  builtin("", "v1", "secrets", "Secret", true),
  builtin("", "v1", "events", "Event", true, ["ev"]),
  builtin("apps", "v1", "deployments", "Deployment", true, ["deploy"], ["status", "scale"], ["all"]),
  builtin("apps", "v1", "replicasets", "ReplicaSet", true, ["rs"], ["status", "scale"], ["all"]),
  // RBAC objects are stored, served and enforced (rbac.ts) as on a cluster.
  builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false),
  builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false),
  builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
  builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true),
  builtin(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    false,
    ["crd", "crds"],
    ["status"],
    ["api-extensions"],
  ),
  builtin(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    false,
    [],
    [],
    ["api-extensions"],
  ),
  builtin(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    false,
    [],
    [],
    ["api-extensions"],
  ),
  review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
  review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
  review("authentication.k8s.io", "tokenreviews", "TokenReview"),
];

/** Kinds with a status subresource: the main endpoint ignores status writes, `/status` ignores the rest. */
export function hasStatus(type: ResourceType): boolean {
  return type.subresources.includes("status");
}

/** The registry: built-ins plus the served versions of every established CRD. */
export class ResourceRegistry {
  private custom: ResourceType[] = [];

  all(): readonly ResourceType[] {
    return [...BUILTIN_TYPES, ...this.custom.filter((t) => t.crd?.served !== false)];
  }

  setCustom(types: ResourceType[]): void {
    this.custom = types;
  }

  find(group: string, version: string, resource: string): ResourceType | undefined {
    return this.all().find((t) => t.group === group && t.version === version && t.resource === resource);
  }

  /** All versions of one group/resource (for CRDs with several versions). */
  versionsOf(group: string, resource: string): ResourceType[] {
    return this.all().filter((t) => t.group === group && t.resource === resource);
  }

  /** Group versions in discovery order: core first, then groups by name. */
  groupVersions(): { group: string; versions: string[] }[] {
    const groups = new Map<string, string[]>();
    for (const t of this.all()) {
      const versions = groups.get(t.group) ?? [];
      if (!versions.includes(t.version)) versions.push(t.version);
      groups.set(t.group, versions);
    }
    return [...groups.entries()].map(([group, versions]) => ({ group, versions: sortVersions(versions) }));
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first (v1 > v1beta2 > v1alpha2 > v1alpha1). */
export function sortVersions(versions: string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    const stability = m[2] === undefined ? 3 : m[2] === "beta" ? 2 : 1;
    return [stability, Number(m[1]), Number(m[3] ?? 0)];
  };
  return [...versions].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return (rb[i] ?? 0) - (ra[i] ?? 0);
    return a < b ? -1 : 1;
  });
}

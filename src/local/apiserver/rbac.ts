/**
 * RBAC authorization as kube-apiserver's RBAC authorizer decides it, over the stored ClusterRoles, Roles,
 * ClusterRoleBindings and RoleBindings: a request is allowed when some binding that names the user, one of its
 * groups or its service account grants a rule matching the verb, API group, resource(/subresource), name
 * (`resourceNames`) or non-resource path. `system:masters` is allowed everything without looking (as kube's
 * privileged-group authorizer). Pure: the caller passes the objects.
 */
import type { Obj } from "./json.ts";

export interface UserInfo {
  readonly name: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface Attributes {
  readonly user: UserInfo;
  readonly verb: string;
  /** A resource request (`/api/...`, `/apis/...` on a resource), else a non-resource path. */
  readonly resourceRequest: boolean;
  readonly path: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
}

export interface RbacObjects {
  readonly clusterRoles: readonly Obj[];
  readonly roles: readonly Obj[];
  readonly clusterRoleBindings: readonly Obj[];
  readonly roleBindings: readonly Obj[];
}

export interface Decision {
  readonly allowed: boolean;
  readonly reason: string;
}

export const MASTERS_GROUP = "system:masters";

const has = (list: unknown, value: string) => Array.isArray(list) && list.includes(value);
const hasOrStar = (list: unknown, value: string) => has(list, value) || has(list, "*");

function subjectMatches(subject: Obj, user: UserInfo, bindingNamespace: string): boolean {
  switch (subject?.kind) {
    case "User":
      return subject.name === user.name;
    case "Group":
      return user.groups.includes(subject.name);
    case "ServiceAccount": {
      const ns = subject.namespace || bindingNamespace;
      return user.name === `system:serviceaccount:${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

function resourceMatches(rule: Obj, a: Attributes): boolean {
  const resources = rule.resources;
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  if (has(resources, "*") || has(resources, combined)) return true;
  if (a.subresource) return has(resources, `*/${a.subresource}`);
  return false;
}

/** Does one PolicyRule allow the request? */
export function ruleAllows(rule: Obj, a: Attributes): boolean {
  if (!hasOrStar(rule?.verbs, a.verb)) return false;
  if (!a.resourceRequest) {
    const urls: unknown[] = Array.isArray(rule.nonResourceURLs) ? rule.nonResourceURLs : [];
    return urls.some(
      (u) =>
        typeof u === "string" && (u === a.path || (u.endsWith("*") && a.path.startsWith(u.slice(0, -1)))),
    );
  }
  if (!hasOrStar(rule.apiGroups, a.apiGroup) || !resourceMatches(rule, a)) return false;
  const names = rule.resourceNames;
  return !Array.isArray(names) || names.length === 0 || names.includes(a.name);
}

function describeSubject(user: UserInfo, binding: Obj, namespace: string): string {
  const s = (binding.subjects as Obj[]).find((x) => subjectMatches(x, user, namespace));
  return s?.kind === "ServiceAccount"
    ? `ServiceAccount "${s.name}/${s.namespace || namespace}"`
    : `${s?.kind} "${s?.name}"`;
}

/** The RBAC decision, with kube's reason text for an allow (`RBAC: allowed by ...`). */
export function authorize(objects: RbacObjects, a: Attributes): Decision {
  if (a.user.groups.includes(MASTERS_GROUP)) return { allowed: true, reason: "" };
  const clusterRole = (name: string) => objects.clusterRoles.find((r) => r.metadata?.name === name);
  const role = (ns: string, name: string) =>
    objects.roles.find((r) => r.metadata?.namespace === ns && r.metadata?.name === name);
  const bound = (b: Obj, ns: string) =>
    Array.isArray(b.subjects) && b.subjects.some((s: Obj) => subjectMatches(s, a.user, ns));
  for (const b of objects.clusterRoleBindings) {
    if (b.roleRef?.kind !== "ClusterRole" || !bound(b, "")) continue;
    const rules: Obj[] = clusterRole(b.roleRef.name)?.rules ?? [];
    if (rules.some((r) => ruleAllows(r, a)))
      return {
        allowed: true,
        reason: `RBAC: allowed by ClusterRoleBinding "${b.metadata?.name}" of ClusterRole "${b.roleRef.name}" to ${describeSubject(a.user, b, "")}`,
      };
  }
  if (a.namespace) {
    for (const b of objects.roleBindings) {
      const ns = b.metadata?.namespace ?? "";
      if (ns !== a.namespace || !bound(b, ns)) continue;
      const target = b.roleRef?.kind === "Role" ? role(ns, b.roleRef.name) : clusterRole(b.roleRef?.name);
      const rules: Obj[] = target?.rules ?? [];
      if (rules.some((r) => ruleAllows(r, a)))
        return {
          allowed: true,
          reason: `RBAC: allowed by RoleBinding "${b.metadata?.name}/${ns}" of ${b.roleRef.kind} "${b.roleRef.name}" to ${describeSubject(a.user, b, ns)}`,
        };
    }
  }
  return { allowed: false, reason: "" };
}

/** kube-apiserver's 403 text: `User "u" cannot list resource "pods" in API group "" in the namespace "x"`. */
export function forbiddenMessage(a: Attributes): string {
  if (!a.resourceRequest) return `User "${a.user.name}" cannot ${a.verb} path "${a.path}"`;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  return `User "${a.user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.apiGroup}" ${where}`;
}

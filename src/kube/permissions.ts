/**
 * A control-plane component checks, before it starts, that its service account may do everything its RBAC
 * rules (the ones `osm install` grants, `rbacRules`) say it needs, by asking the API server
 * (SelfSubjectAccessReview, what `kubectl auth can-i` asks). A missing permission then stops it with one clear
 * error naming the verb and resource and the rule's reason, instead of informers retrying 403s with stack
 * traces while the component half works.
 */
import { AuthorizationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { PolicyRule } from "./manifests.ts";

export interface Permission {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  /** Set for a Role's rules; undefined means cluster scope. */
  readonly namespace?: string;
  readonly name?: string;
  readonly why: string;
}

/** Every (verb, group, resource[, name]) a set of rules grants, scoped to `namespace` for a Role. Pure. */
export function permissionsOf(rules: readonly PolicyRule[], namespace?: string): Permission[] {
  return rules.flatMap((rule) =>
    rule.verbs.flatMap((verb) =>
      rule.apiGroups.flatMap((group) =>
        rule.resources.map((resource) => ({
          verb,
          group,
          resource,
          ...(namespace !== undefined ? { namespace } : {}),
          ...(rule.resourceNames?.[0] !== undefined ? { name: rule.resourceNames[0] } : {}),
          why: rule.why,
        })),
      ),
    ),
  );
}

/** `cannot list resource "endpoints" in API group "" at the cluster scope`, kube-apiserver's own phrasing. */
export function describePermission(p: Permission): string {
  const name = p.name !== undefined ? ` named "${p.name}"` : "";
  const scope = p.namespace !== undefined ? `in the namespace "${p.namespace}"` : "at the cluster scope";
  return `cannot ${p.verb} resource "${p.resource}"${name} in API group "${p.group}" ${scope}`;
}

/**
 * The permissions the caller lacks; undefined when the server cannot say (it serves no authorization API,
 * e.g. an API server without RBAC), in which case the component starts and finds out as it goes.
 */
export async function missingPermissions(
  kc: KubeConfig,
  wanted: readonly Permission[],
): Promise<Permission[] | undefined> {
  const api = kc.makeApiClient(AuthorizationV1Api);
  const missing: Permission[] = [];
  for (const p of wanted) {
    try {
      const review = await api.createSelfSubjectAccessReview({
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SelfSubjectAccessReview",
          spec: {
            resourceAttributes: {
              verb: p.verb,
              group: p.group,
              resource: p.resource,
              ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
              ...(p.name !== undefined ? { name: p.name } : {}),
            },
          },
        },
      });
      if (review.status?.allowed !== true) missing.push(p);
    } catch (error) {
      const code = apiErrorCode(error);
      if (code === 404 || code === 405) return undefined;
      throw error;
    }
  }
  return missing;
}

/** Throws a MeshError listing what `component` may not do, with the roles that grant it. */
export async function assertPermissions(options: {
  kc: KubeConfig;
  component: string;
  serviceAccount: string;
  wanted: readonly Permission[];
  grantedBy: string;
}): Promise<void> {
  const missing = await missingPermissions(options.kc, options.wanted);
  if (!missing || missing.length === 0) return;
  const first = missing[0] as Permission;
  throw new MeshError(
    ErrorCode.Forbidden,
    `${options.component} lacks RBAC permissions it needs:\n${missing
      .map((p) => `  ${describePermission(p)}: needed for ${p.why}`)
      .join("\n")}`,
    {
      hint: `grant them as ${options.grantedBy} does (osm install creates it); check with: kubectl auth can-i ${first.verb} ${first.resource}${first.group ? `.${first.group}` : ""}${first.name ? `/${first.name}` : ""}${first.namespace ? ` -n ${first.namespace}` : ""} --as=${options.serviceAccount}`,
    },
  );
}

/**
 * The self reviews, answered from the request and never stored: SelfSubjectAccessReview (`kubectl auth
 * can-i`: may the requester do this?) and SelfSubjectReview (`kubectl auth whoami`).
 */
import type { Authorizer } from "./authz.ts";
import type { Obj } from "./json.ts";
import type { UserInfo } from "./rbac.ts";
import { badRequest } from "./status.ts";

export function selfSubjectAccessReview(authorizer: Authorizer, user: UserInfo, body: unknown): Obj {
  const spec = (body as Obj)?.spec;
  const resource = spec?.resourceAttributes;
  const nonResource = spec?.nonResourceAttributes;
  if (!resource === !nonResource)
    throw badRequest(
      'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified',
    );
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  const decision = authorizer.decide(
    resource
      ? {
          user,
          verb: str(resource.verb),
          resourceRequest: true,
          path: "",
          apiGroup: str(resource.group),
          resource: str(resource.resource),
          subresource: str(resource.subresource),
          namespace: str(resource.namespace),
          name: str(resource.name),
        }
      : {
          user,
          verb: str(nonResource.verb),
          resourceRequest: false,
          path: str(nonResource.path),
          apiGroup: "",
          resource: "",
          subresource: "",
          namespace: "",
          name: "",
        },
  );
  return {
    kind: "SelfSubjectAccessReview",
    apiVersion: "authorization.k8s.io/v1",
    metadata: { creationTimestamp: null },
    spec,
    status: { allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) },
  };
}

export function selfSubjectReview(user: UserInfo): Obj {
  return {
    kind: "SelfSubjectReview",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { creationTimestamp: null },
    status: {
      userInfo: {
        username: user.name,
        groups: user.groups,
        ...(user.uid ? { uid: user.uid } : {}),
        ...(user.extra ? { extra: user.extra } : {}),
      },
    },
  };
}

/**
 * Authorization of each request: its attributes as kube-apiserver's RequestInfoFactory derives them (verb
 * from method and path: list/watch/get, create, update, patch, delete/deletecollection; `create` for exec and
 * attach, as on 1.30+), the RBAC decision over the stored objects (`rbac.ts`), kube-apiserver's 403, and
 * impersonation (`Impersonate-User`/`-Group`/`-Uid`, allowed by the `impersonate` verb on users, groups,
 * serviceaccounts and uids).
 */
import type { IncomingMessage } from "node:http";
import type { Api } from "./api.ts";
import { AUTHENTICATED, parseServiceAccountUser, serviceAccountUser } from "./authn.ts";
import type { Obj } from "./json.ts";
import {
  type Attributes,
  authorize,
  type Decision,
  forbiddenMessage,
  type RbacObjects,
  type UserInfo,
} from "./rbac.ts";
import type { ResourceRequest } from "./router.ts";
import { ApiError, qualifiedResource } from "./status.ts";

const RBAC = "rbac.authorization.k8s.io";

/** The request's verb, as kube-apiserver names it for authorization. */
export function requestVerb(method: string, url: URL, r: ResourceRequest | undefined): string {
  if (!r) return method.toLowerCase();
  if (r.subresource === "exec" || r.subresource === "attach" || r.subresource === "portforward")
    return "create";
  const watch = url.searchParams.get("watch");
  switch (method) {
    case "GET":
    case "HEAD":
      if (watch === "true" || watch === "1") return "watch";
      return r.name === undefined ? "list" : "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return r.name === undefined ? "deletecollection" : "delete";
    default:
      return method.toLowerCase();
  }
}

export function requestAttributes(
  user: UserInfo,
  method: string,
  url: URL,
  r: ResourceRequest | undefined,
): Attributes {
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const verb = requestVerb(method, url, r);
  if (!r)
    return {
      user,
      verb,
      resourceRequest: false,
      path,
      apiGroup: "",
      resource: "",
      subresource: "",
      namespace: "",
      name: "",
    };
  // `/api/v1/namespaces/{name}` is the namespace itself: its name is also its namespace (as kube-apiserver).
  const namespace = r.resource === "namespaces" && r.group === "" && r.name ? r.name : (r.namespace ?? "");
  return {
    user,
    verb,
    resourceRequest: true,
    path,
    apiGroup: r.group,
    resource: r.resource,
    subresource: r.subresource,
    namespace,
    name: r.name ?? "",
  };
}

export function forbidden(a: Attributes, reason = ""): ApiError {
  const message = forbiddenMessage(a) + (reason ? `: ${reason}` : "");
  const subject = a.resourceRequest ? qualifiedResource(a.apiGroup, a.resource) : "";
  const text = !subject
    ? `forbidden: ${message}`
    : a.name
      ? `${subject} "${a.name}" is forbidden: ${message}`
      : `${subject} is forbidden: ${message}`;
  return new ApiError(403, "Forbidden", text, {
    name: a.name || undefined,
    group: a.apiGroup,
    kind: a.resource,
  });
}

export class Authorizer {
  private readonly api: Api;

  constructor(api: Api) {
    this.api = api;
  }

  private objects(): RbacObjects {
    const list = (resource: string) => this.api.store.list(`${RBAC}/${resource}`) as Obj[];
    return {
      clusterRoles: list("clusterroles"),
      roles: list("roles"),
      clusterRoleBindings: list("clusterrolebindings"),
      roleBindings: list("rolebindings"),
    };
  }

  decide(a: Attributes): Decision {
    return authorize(this.objects(), a);
  }

  /** Throws kube-apiserver's 403 unless RBAC allows the request. */
  check(a: Attributes): void {
    const d = this.decide(a);
    if (!d.allowed) throw forbidden(a, d.reason);
  }

  /**
   * The user a request acts as: the authenticated one, or, with `Impersonate-*` headers, the impersonated one
   * once the requester may impersonate each part of it.
   */
  impersonate(user: UserInfo, req: IncomingMessage): UserInfo {
    const header = (name: string) => {
      const v = req.headers[name];
      return v === undefined ? [] : [v].flat().flatMap((x) => x.split(",").map((s) => s.trim()));
    };
    const [name] = header("impersonate-user");
    const groups = header("impersonate-group");
    const [uid] = header("impersonate-uid");
    if (name === undefined) {
      if (groups.length > 0 || uid !== undefined)
        throw new ApiError(
          400,
          "BadRequest",
          "requested impersonation of groups or uid without impersonating a user",
        );
      return user;
    }
    const check = (resource: string, objectName: string, namespace = "", apiGroup = "") =>
      this.check({
        user,
        verb: "impersonate",
        resourceRequest: true,
        path: "",
        apiGroup,
        resource,
        subresource: "",
        namespace,
        name: objectName,
      });
    const sa = parseServiceAccountUser(name);
    if (sa) check("serviceaccounts", sa[1], sa[0]);
    else check("users", name);
    for (const g of groups) check("groups", g);
    if (uid !== undefined) check("uids", uid, "", "authentication.k8s.io");
    const base = sa ? serviceAccountUser(sa[0], sa[1]).groups : [];
    const all = [...new Set([...base, ...groups, ...(name === "system:anonymous" ? [] : [AUTHENTICATED])])];
    return { name, groups: all, ...(uid ? { uid } : {}) };
  }
}

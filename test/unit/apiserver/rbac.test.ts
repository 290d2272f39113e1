import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forbidden, requestAttributes } from "../../../src/local/apiserver/authz.ts";
import { type Attributes, authorize, type RbacObjects } from "../../../src/local/apiserver/rbac.ts";
import { parseResourcePath } from "../../../src/local/apiserver/router.ts";

const sa = {
  name: "system:serviceaccount:osm-system:osm-injector",
  groups: ["system:serviceaccounts", "system:authenticated"],
};

const objects: RbacObjects = {
  clusterRoles: [
    {
      metadata: { name: "webhooks" },
      rules: [
        {
          apiGroups: ["admissionregistration.k8s.io"],
          resources: ["mutatingwebhookconfigurations"],
          resourceNames: ["osm-webhook-osm"],
          verbs: ["get", "update"],
        },
        { apiGroups: [""], resources: ["*/status"], verbs: ["get"] },
      ],
    },
    {
      metadata: { name: "discovery" },
      rules: [{ nonResourceURLs: ["/apis/*", "/version"], verbs: ["get"] }],
    },
  ],
  roles: [
    {
      metadata: { name: "cm", namespace: "osm-system" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["*"] }],
    },
  ],
  clusterRoleBindings: [
    {
      metadata: { name: "webhooks" },
      roleRef: { kind: "ClusterRole", name: "webhooks" },
      subjects: [{ kind: "ServiceAccount", name: "osm-injector", namespace: "osm-system" }],
    },
    {
      metadata: { name: "discovery" },
      roleRef: { kind: "ClusterRole", name: "discovery" },
      subjects: [{ kind: "Group", name: "system:authenticated" }],
    },
  ],
  // A ServiceAccount subject without a namespace means the binding's own.
  roleBindings: [
    {
      metadata: { name: "cm", namespace: "osm-system" },
      roleRef: { kind: "Role", name: "cm" },
      subjects: [{ kind: "ServiceAccount", name: "osm-injector" }],
    },
  ],
};

function attrs(method: string, path: string, user = sa): Attributes {
  const url = new URL(`https://x${path}`);
  return requestAttributes(user, method, url, parseResourcePath(url.pathname));
}

describe("RBAC decisions", () => {
  it("resourceNames, subresources, namespaces, non-resource paths", () => {
    const allowed = (m: string, p: string) => authorize(objects, attrs(m, p)).allowed;
    assert.equal(
      allowed("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/osm-webhook-osm"),
      true,
    );
    assert.equal(
      allowed("PUT", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other"),
      false,
    );
    assert.equal(
      allowed("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"),
      false,
      "list is not limited to names",
    );
    assert.equal(allowed("GET", "/api/v1/namespaces/x/pods/p/status"), true);
    assert.equal(allowed("GET", "/api/v1/namespaces/x/pods/p"), false);
    assert.equal(allowed("DELETE", "/api/v1/namespaces/osm-system/configmaps"), true);
    assert.equal(allowed("GET", "/api/v1/namespaces/default/configmaps"), false);
    assert.equal(allowed("GET", "/apis/apps"), true);
    assert.equal(allowed("GET", "/apis"), false);
    assert.equal(allowed("POST", "/version"), false);
  });

  it("system:masters is allowed without a binding; everyone else needs one", () => {
    const admin = { name: "kubernetes-admin", groups: ["system:masters"] };
    assert.equal(authorize(objects, attrs("POST", "/api/v1/namespaces/x/pods", admin)).allowed, true);
    const decision = authorize(objects, attrs("GET", "/api/v1/namespaces/osm-system/configmaps"));
    assert.equal(
      decision.reason,
      'RBAC: allowed by RoleBinding "cm/osm-system" of Role "cm" to ServiceAccount "osm-injector/osm-system"',
    );
  });

  it("403 text as kube-apiserver's", () => {
    const create = forbidden(attrs("POST", "/api/v1/namespaces/curl/pods"));
    assert.equal(create.code, 403);
    assert.equal(
      create.message,
      'pods is forbidden: User "system:serviceaccount:osm-system:osm-injector" cannot create resource "pods" in API group "" in the namespace "curl"',
    );
    assert.equal(
      forbidden(attrs("GET", "/apis/apps/v1/deployments")).message,
      'deployments.apps is forbidden: User "system:serviceaccount:osm-system:osm-injector" cannot list resource "deployments" in API group "apps" at the cluster scope',
    );
    assert.equal(
      forbidden(attrs("POST", "/api/v1/namespaces/a/pods/p/exec")).message,
      'pods "p" is forbidden: User "system:serviceaccount:osm-system:osm-injector" cannot create resource "pods/exec" in API group "" in the namespace "a"',
    );
    assert.equal(
      forbidden(attrs("GET", "/metrics")).message,
      'forbidden: User "system:serviceaccount:osm-system:osm-injector" cannot get path "/metrics"',
    );
  });
});

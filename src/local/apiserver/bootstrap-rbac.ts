/**
 * The bootstrap ClusterRoles and ClusterRoleBindings kube-apiserver creates at startup (labelled
 * `kubernetes.io/bootstrapping: rbac-defaults`) that clients and manifests rely on: `cluster-admin` for
 * `system:masters`, `system:discovery`, `system:basic-user` (self access and subject reviews) and
 * `system:public-info-viewer` for every authenticated user, the `view`/`edit`/`admin` roles for binding, and
 * `system:node` bound to `system:nodes` (kube-apiserver's Node authorizer grants the node agent this much; here
 * it is a plain role). The `view`/`edit`/`admin` rules cover the resources this server serves; they are
 * written out, not aggregated.
 */
import type { Obj } from "./json.ts";

const READ = ["get", "list", "watch"];
const WRITE = ["create", "delete", "deletecollection", "patch", "update"];
const ALL = [...READ, ...WRITE];

const rule = (apiGroups: string[], resources: string[], verbs: string[]): Obj => ({
  apiGroups,
  resources,
  verbs,
});

const VIEW = [
  rule(
    [""],
    [
      "pods",
      "pods/log",
      "pods/status",
      "services",
      "services/status",
      "endpoints",
      "configmaps",
      "serviceaccounts",
      "events",
      "namespaces",
      "namespaces/status",
    ],
    READ,
  ),
  rule(
    ["apps"],
    [
      "deployments",
      "deployments/status",
      "deployments/scale",
      "replicasets",
      "replicasets/status",
      "replicasets/scale",
    ],
    READ,
  ),
];
const EDIT = [
  rule(
    [""],
    [
      "pods",
      "pods/exec",
      "pods/attach",
      "pods/proxy",
      "services",
      "services/proxy",
      "endpoints",
      "configmaps",
      "secrets",
      "serviceaccounts",
      "events",
    ],
    ALL,
  ),
  rule([""], ["serviceaccounts/token"], ["create"]),
  rule(["apps"], ["deployments", "deployments/scale", "replicasets", "replicasets/scale"], ALL),
  ...VIEW,
];
const ADMIN = [rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ALL), ...EDIT];

const CLUSTER_ROLES: Record<string, Obj[]> = {
  "cluster-admin": [rule(["*"], ["*"], ["*"]), { nonResourceURLs: ["*"], verbs: ["*"] }],
  admin: ADMIN,
  edit: EDIT,
  view: VIEW,
  "system:discovery": [
    {
      nonResourceURLs: [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
      ],
      verbs: ["get"],
    },
  ],
  "system:public-info-viewer": [
    { nonResourceURLs: ["/healthz", "/livez", "/readyz", "/version", "/version/"], verbs: ["get"] },
  ],
  "system:basic-user": [
    rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
    rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
  ],
  // Delegated authentication and authorization, as kube-apiserver's bootstrap role of the same name.
  "system:auth-delegator": [
    rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
    rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
  ],
  "system:node": [
    rule([""], ["pods"], ["get", "list", "watch", "delete"]),
    rule([""], ["pods/status"], ["get", "patch", "update"]),
    rule([""], ["events"], ["create", "patch", "update"]),
    rule([""], ["configmaps", "secrets", "services", "endpoints", "namespaces", "serviceaccounts"], READ),
    rule([""], ["serviceaccounts/token"], ["create"]),
    rule([""], ["nodes", "nodes/status"], ["get", "list", "watch", "patch", "update"]),
  ],
};

const group = (name: string) => ({ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name });

const CLUSTER_ROLE_BINDINGS: Record<string, { role: string; subjects: Obj[] }> = {
  "cluster-admin": { role: "cluster-admin", subjects: [group("system:masters")] },
  "system:discovery": { role: "system:discovery", subjects: [group("system:authenticated")] },
  "system:basic-user": { role: "system:basic-user", subjects: [group("system:authenticated")] },
  "system:public-info-viewer": {
    role: "system:public-info-viewer",
    subjects: [group("system:authenticated"), group("system:unauthenticated")],
  },
  "system:node": { role: "system:node", subjects: [group("system:nodes")] },
};

const META = {
  labels: { "kubernetes.io/bootstrapping": "rbac-defaults" },
  annotations: { "rbac.authorization.kubernetes.io/autoupdate": "true" },
};

export function bootstrapClusterRoles(): Obj[] {
  return Object.entries(CLUSTER_ROLES).map(([name, rules]) => ({ metadata: { name, ...META }, rules }));
}

export function bootstrapClusterRoleBindings(): Obj[] {
  return Object.entries(CLUSTER_ROLE_BINDINGS).map(([name, b]) => ({
    metadata: { name, ...META },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: b.role },
    subjects: b.subjects,
  }));
}

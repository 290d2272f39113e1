/**
 * Unknown-field detection for built-in kinds, as a typed Go server decodes them: with
 * `fieldValidation=Strict` (what `kubectl apply`/`create` send) an unknown field is a 400
 * `strict decoding error: unknown field "spec.replica"`; with Warn (the default) a `Warning:`; unknown fields
 * are dropped either way. Only the structs listed here are checked (Kubernetes 1.32 field sets): object
 * tops, ObjectMeta, Deployment/ReplicaSet specs, pod templates, PodSpec, Container, ports, env, ServiceSpec;
 * anything below them (probes, affinity, volumes...) passes as written.
 */
import type { Obj } from "./json.ts";

const set = (...names: string[]) => new Set(names);

const OBJECT_META = set(
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
);
const TOP_DEFAULT = set("apiVersion", "kind", "metadata", "spec", "status");
const TOP: Record<string, Set<string>> = {
  ConfigMap: set("apiVersion", "kind", "metadata", "data", "binaryData", "immutable"),
  Secret: set("apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"),
  ServiceAccount: set(
    "apiVersion",
    "kind",
    "metadata",
    "secrets",
    "imagePullSecrets",
    "automountServiceAccountToken",
  ),
  Endpoints: set("apiVersion", "kind", "metadata", "subsets"),
  ClusterRole: set("apiVersion", "kind", "metadata", "rules", "aggregationRule"),
  Role: set("apiVersion", "kind", "metadata", "rules"),
  ClusterRoleBinding: set("apiVersion", "kind", "metadata", "subjects", "roleRef"),
  RoleBinding: set("apiVersion", "kind", "metadata", "subjects", "roleRef"),
  MutatingWebhookConfiguration: set("apiVersion", "kind", "metadata", "webhooks"),
  ValidatingWebhookConfiguration: set("apiVersion", "kind", "metadata", "webhooks"),
  Event: set(
    "apiVersion",
    "kind",
    "metadata",
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
  ),
};
const DEPLOYMENT_SPEC = set(
  "replicas",
  "selector",
  "template",
  "strategy",
  "minReadySeconds",
  "revisionHistoryLimit",
  "paused",
  "progressDeadlineSeconds",
);
const REPLICASET_SPEC = set("replicas", "minReadySeconds", "selector", "template");
const POD_TEMPLATE = set("metadata", "spec");
const POD_SPEC = set(
  "volumes",
  "initContainers",
  "containers",
  "ephemeralContainers",
  "restartPolicy",
  "terminationGracePeriodSeconds",
  "activeDeadlineSeconds",
  "dnsPolicy",
  "nodeSelector",
  "serviceAccountName",
  "serviceAccount",
  "automountServiceAccountToken",
  "nodeName",
  "hostNetwork",
  "hostPID",
  "hostIPC",
  "shareProcessNamespace",
  "securityContext",
  "imagePullSecrets",
  "hostname",
  "subdomain",
  "affinity",
  "schedulerName",
  "tolerations",
  "hostAliases",
  "priorityClassName",
  "priority",
  "dnsConfig",
  "readinessGates",
  "runtimeClassName",
  "enableServiceLinks",
  "preemptionPolicy",
  "overhead",
  "topologySpreadConstraints",
  "setHostnameAsFQDN",
  "os",
  "hostUsers",
  "schedulingGates",
  "resourceClaims",
  "resources",
);
const CONTAINER = set(
  "name",
  "image",
  "command",
  "args",
  "workingDir",
  "ports",
  "envFrom",
  "env",
  "resources",
  "resizePolicy",
  "restartPolicy",
  "volumeMounts",
  "volumeDevices",
  "livenessProbe",
  "readinessProbe",
  "startupProbe",
  "lifecycle",
  "terminationMessagePath",
  "terminationMessagePolicy",
  "imagePullPolicy",
  "securityContext",
  "stdin",
  "stdinOnce",
  "tty",
);
const CONTAINER_PORT = set("name", "hostPort", "containerPort", "protocol", "hostIP");
const ENV_VAR = set("name", "value", "valueFrom");
const SERVICE_SPEC = set(
  "ports",
  "selector",
  "clusterIP",
  "clusterIPs",
  "type",
  "externalIPs",
  "sessionAffinity",
  "loadBalancerIP",
  "loadBalancerSourceRanges",
  "externalName",
  "externalTrafficPolicy",
  "healthCheckNodePort",
  "publishNotReadyAddresses",
  "sessionAffinityConfig",
  "ipFamilies",
  "ipFamilyPolicy",
  "allocateLoadBalancerNodePorts",
  "loadBalancerClass",
  "internalTrafficPolicy",
  "trafficDistribution",
);
const SERVICE_PORT = set("name", "protocol", "appProtocol", "port", "targetPort", "nodePort");

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Removes fields not in `allowed` from `o`, recording their paths. */
function prune(o: unknown, allowed: Set<string>, path: string, unknown: string[]): void {
  if (!isObj(o)) return;
  for (const key of Object.keys(o)) {
    if (allowed.has(key)) continue;
    unknown.push(path ? `${path}.${key}` : key);
    delete o[key];
  }
}

function pruneList(
  list: unknown,
  allowed: Set<string>,
  path: string,
  unknown: string[],
  each?: (item: Obj, p: string) => void,
): void {
  if (!Array.isArray(list)) return;
  list.forEach((item, i) => {
    prune(item, allowed, `${path}[${i}]`, unknown);
    if (each && isObj(item)) each(item, `${path}[${i}]`);
  });
}

function prunePodSpec(spec: unknown, path: string, unknown: string[]): void {
  if (!isObj(spec)) return;
  prune(spec, POD_SPEC, path, unknown);
  for (const field of ["initContainers", "containers"]) {
    pruneList(spec[field], CONTAINER, `${path}.${field}`, unknown, (c, p) => {
      pruneList(c.ports, CONTAINER_PORT, `${p}.ports`, unknown);
      pruneList(c.env, ENV_VAR, `${p}.env`, unknown);
    });
  }
}

function prunePodTemplate(template: unknown, path: string, unknown: string[]): void {
  if (!isObj(template)) return;
  prune(template, POD_TEMPLATE, path, unknown);
  prune(template.metadata, OBJECT_META, `${path}.metadata`, unknown);
  prunePodSpec(template.spec, `${path}.spec`, unknown);
}

/**
 * Drops the unknown fields of a built-in object of `kind` in place and returns their paths
 * (`spec.template.spec.containers[0].comand`). Kinds not listed return nothing.
 */
export function pruneUnknownBuiltinFields(kind: string, o: Obj): string[] {
  const unknown: string[] = [];
  prune(o, TOP[kind] ?? TOP_DEFAULT, "", unknown);
  prune(o.metadata, OBJECT_META, "metadata", unknown);
  switch (kind) {
    case "Deployment":
    case "ReplicaSet":
      prune(o.spec, kind === "Deployment" ? DEPLOYMENT_SPEC : REPLICASET_SPEC, "spec", unknown);
      prunePodTemplate(o.spec?.template, "spec.template", unknown);
      break;
    case "Pod":
      prunePodSpec(o.spec, "spec", unknown);
      break;
    case "Service":
      prune(o.spec, SERVICE_SPEC, "spec", unknown);
      pruneList(o.spec?.ports, SERVICE_PORT, "spec.ports", unknown);
      break;
  }
  return unknown;
}

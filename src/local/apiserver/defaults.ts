/**
 * Defaulting and light validation of built-in kinds, applied on create and update before admission's
 * validating phase. Only what clients of this server read back is defaulted (pod phase, node name,
 * Deployment strategy, Service ports and ClusterIP); the rest is stored as sent.
 */
import type { KubeObject } from "../store/store.ts";
import type { Obj } from "./json.ts";
import type { ResourceType } from "./resources.ts";
import type { StatusCause } from "./status.ts";

/** The one node of this single-node runtime: the node agent runs pods with this `spec.nodeName`. */
export const NODE_NAME = "osm-local";

export function nowIso(now = Date.now()): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

function defaultPodSpec(spec: Obj): void {
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.serviceAccountName ??= spec.serviceAccount ?? "default";
  spec.securityContext ??= {};
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])] as Obj[]) {
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.imagePullPolicy ??=
      typeof c.image === "string" && (c.image.endsWith(":latest") || !c.image.includes(":"))
        ? "Always"
        : "IfNotPresent";
    c.resources ??= {};
    for (const p of (c.ports ?? []) as Obj[]) p.protocol ??= "TCP";
  }
}

/** Defaults an object being created (or, with `old`, updated). `allocateClusterIP` picks a free Service IP. */
export function applyDefaults(
  type: ResourceType,
  obj: KubeObject,
  old: KubeObject | undefined,
  allocateClusterIP: () => string,
): void {
  if (type.crd) return;
  const o = obj as Obj;
  switch (type.kind) {
    case "Namespace":
      o.spec ??= {};
      o.spec.finalizers ??= ["kubernetes"];
      o.status ??= { phase: "Active" };
      o.metadata.labels = { ...(o.metadata.labels ?? {}), "kubernetes.io/metadata.name": o.metadata.name };
      break;
    case "Pod":
      o.spec ??= {};
      defaultPodSpec(o.spec);
      if (!old) {
        o.spec.nodeName ??= NODE_NAME;
        o.status = {
          phase: "Pending",
          qosClass: "BestEffort",
          conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: nowIso() }],
        };
      }
      break;
    case "Deployment":
    case "ReplicaSet":
      o.spec ??= {};
      o.spec.replicas ??= 1;
      o.spec.template ??= {};
      o.spec.template.spec ??= {};
      defaultPodSpec(o.spec.template.spec);
      if (type.kind === "Deployment") {
        o.spec.revisionHistoryLimit ??= 10;
        o.spec.progressDeadlineSeconds ??= 600;
        o.spec.strategy ??= { type: "RollingUpdate" };
        if (o.spec.strategy.type === "RollingUpdate") {
          o.spec.strategy.rollingUpdate ??= {};
          o.spec.strategy.rollingUpdate.maxSurge ??= "25%";
          o.spec.strategy.rollingUpdate.maxUnavailable ??= "25%";
        }
      }
      o.status ??= {};
      break;
    case "Service": {
      o.spec ??= {};
      o.spec.type ??= "ClusterIP";
      o.spec.sessionAffinity ??= "None";
      for (const p of (o.spec.ports ?? []) as Obj[]) {
        p.protocol ??= "TCP";
        p.targetPort ??= p.port;
      }
      if (old && (old as Obj).spec?.clusterIP && !o.spec.clusterIP) {
        o.spec.clusterIP = (old as Obj).spec.clusterIP;
        o.spec.clusterIPs = (old as Obj).spec.clusterIPs;
      }
      if (o.spec.type !== "ExternalName" && !o.spec.clusterIP) o.spec.clusterIP = allocateClusterIP();
      if (o.spec.clusterIP && !o.spec.clusterIPs) o.spec.clusterIPs = [o.spec.clusterIP];
      o.spec.ipFamilies ??= ["IPv4"];
      o.spec.ipFamilyPolicy ??= "SingleStack";
      o.spec.internalTrafficPolicy ??= "Cluster";
      o.status ??= { loadBalancer: {} };
      break;
    }
    case "Secret":
      o.type ??= "Opaque";
      if (o.stringData) {
        o.data ??= {};
        for (const [k, v] of Object.entries(o.stringData as Record<string, string>))
          o.data[k] = Buffer.from(v).toString("base64");
        delete o.stringData;
      }
      break;
    case "Event":
      o.type ??= "Normal";
      break;
  }
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Field errors for a built-in object (beyond the name, which `validateName` checks for every kind). */
export function validateBuiltin(type: ResourceType, obj: KubeObject): StatusCause[] {
  const o = obj as Obj;
  const causes: StatusCause[] = [];
  const required = (field: string, ok: boolean) => {
    if (!ok) causes.push({ reason: "FieldValueRequired", field, message: "Required value" });
  };
  if (type.kind === "Pod") {
    required("spec.containers", Array.isArray(o.spec?.containers) && o.spec.containers.length > 0);
    for (const [i, c] of ((o.spec?.containers ?? []) as Obj[]).entries()) {
      required(`spec.containers[${i}].name`, typeof c.name === "string" && c.name !== "");
    }
  }
  if (type.kind === "Deployment" || type.kind === "ReplicaSet") {
    required("spec.selector", typeof o.spec?.selector === "object" && o.spec.selector !== null);
    required(
      "spec.template.spec.containers",
      Array.isArray(o.spec?.template?.spec?.containers) && o.spec.template.spec.containers.length > 0,
    );
    const labels = o.spec?.template?.metadata?.labels ?? {};
    for (const [k, v] of Object.entries((o.spec?.selector?.matchLabels ?? {}) as Record<string, string>)) {
      if (labels[k] !== v) {
        causes.push({
          reason: "FieldValueInvalid",
          field: "spec.template.metadata.labels",
          message: `Invalid value: ${JSON.stringify(labels)}: \`selector\` does not match template \`labels\``,
        });
        break;
      }
    }
    if (typeof o.spec?.replicas === "number" && o.spec.replicas < 0) {
      causes.push({
        reason: "FieldValueInvalid",
        field: "spec.replicas",
        message: `Invalid value: ${o.spec.replicas}: must be greater than or equal to 0`,
      });
    }
  }
  if (type.kind === "Service") {
    (o.spec?.ports ?? []).forEach((p: Obj, i: number) => {
      if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
        causes.push({
          reason: "FieldValueInvalid",
          field: `spec.ports[${i}].port`,
          message: `Invalid value: ${JSON.stringify(p.port)}: must be between 1 and 65535, inclusive`,
        });
      }
    });
  }
  if (type.kind === "CustomResourceDefinition") {
    const spec = o.spec ?? {};
    required("spec.group", typeof spec.group === "string" && spec.group !== "");
    required("spec.names.plural", typeof spec.names?.plural === "string");
    required("spec.names.kind", typeof spec.names?.kind === "string");
    required("spec.versions", Array.isArray(spec.versions) && spec.versions.length > 0);
    if (spec.names?.plural && spec.group && o.metadata.name !== `${spec.names.plural}.${spec.group}`) {
      causes.push({
        reason: "FieldValueInvalid",
        field: "metadata.name",
        message: `Invalid value: "${o.metadata.name}": must be spec.names.plural+"."+spec.group`,
      });
    }
    const storage = (spec.versions ?? []).filter((v: Obj) => v.storage);
    if (Array.isArray(spec.versions) && storage.length !== 1) {
      causes.push({
        reason: "FieldValueInvalid",
        field: "spec.versions",
        message: `Invalid value: ${JSON.stringify(spec.versions.map((v: Obj) => v.name))}: must have exactly one version marked as storage version`,
      });
    }
  }
  return causes;
}

/** Checks a name: DNS-1123 label for namespaces and services, a path segment for RBAC, subdomain otherwise. */
const RBAC_KINDS = new Set(["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);

export function validateName(type: ResourceType, name: string): StatusCause | undefined {
  // RBAC names are path segments (`system:node`), as kube-apiserver's ValidatePathSegmentName.
  if (RBAC_KINDS.has(type.kind) && type.group === "rbac.authorization.k8s.io") {
    const bad =
      name === "." || name === ".."
        ? `may not be '${name}'`
        : /[/%]/.test(name)
          ? `may not contain '${name.includes("/") ? "/" : "%"}'`
          : undefined;
    return bad
      ? { reason: "FieldValueInvalid", field: "metadata.name", message: `Invalid value: "${name}": ${bad}` }
      : undefined;
  }
  const label = type.kind === "Namespace" || type.kind === "Service";
  const re = label ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
  if (name.length <= (label ? 63 : 253) && re.test(name)) return undefined;
  // kube-apiserver's wording (apimachinery's validation.IsDNS1123Label/Subdomain, with RegexError's examples).
  const message = label
    ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return {
    reason: "FieldValueInvalid",
    field: "metadata.name",
    message: `Invalid value: "${name}": ${message}`,
  };
}

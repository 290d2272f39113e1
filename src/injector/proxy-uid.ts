/**
 * The proxy uid (1500) is the sidecar's alone: the interception rules let everything sent as that uid out
 * untouched (`--uid-owner 1500`, `meta skuid 1500`), so an app that runs as it, or can switch to it, bypasses
 * the sidecar. Pure: what a PodSpec allows, the denial for a pod that asks for the uid outright, the paths
 * that remain (root or CAP_SETUID), and the strict mode that closes them.
 */
import type { V1Container, V1Namespace, V1Pod } from "@kubernetes/client-node";
import { parseEnabledAnnotation } from "../config/index.ts";
import {
  ANNOTATION_EGRESS_STRICT,
  ENVOY_UID,
  INIT_CONTAINER_NAME,
  SIDECAR_CONTAINER_NAME,
} from "../constants.ts";
import { effectiveCapabilities } from "./capabilities.ts";
import type { JsonPatchOperation } from "./types.ts";

/** Capabilities strict mode removes from every app container: with them root switches to any uid. */
export const STRICT_DROPPED_CAPABILITIES: readonly string[] = ["SETUID", "SETGID"];
/** Capabilities an app container may not add in strict mode: they reach the proxy uid or the rules. */
const STRICT_FORBIDDEN_ADDS: readonly string[] = ["ALL", "SETUID", "SETGID", "NET_ADMIN", "SYS_ADMIN"];
interface AppContainer {
  readonly field: "containers" | "initContainers";
  readonly index: number;
  readonly container: V1Container;
}

/** The pod's own containers and init containers (not the sidecar or osm-init once injected). */
function appContainers(pod: V1Pod): AppContainer[] {
  const out: AppContainer[] = [];
  for (const field of ["initContainers", "containers"] as const) {
    const ours = field === "containers" ? SIDECAR_CONTAINER_NAME : INIT_CONTAINER_NAME;
    (pod.spec?.[field] ?? []).forEach((container, index) => {
      if (container.name !== ours) out.push({ field, index, container });
    });
  }
  return out;
}

const capabilityNames = (names: readonly string[] | undefined): string[] =>
  (names ?? []).map((c) => c.toUpperCase().replace(/^CAP_/, ""));

/** Whether the container's bounding set holds the capability (the runtime's defaults + add − drop). */
function keepsCapability(c: V1Container, cap: string): boolean {
  const caps = effectiveCapabilities(c);
  return caps === "all" || caps.includes(cap);
}

/** Where the container's uid is set, or undefined when it runs as its image's user. */
function runAsUser(pod: V1Pod, a: AppContainer): { uid: number; field: string } | undefined {
  const own = a.container.securityContext?.runAsUser;
  if (own !== undefined) return { uid: own, field: `spec.${a.field}[${a.index}].securityContext.runAsUser` };
  const podUid = pod.spec?.securityContext?.runAsUser;
  return podUid === undefined ? undefined : { uid: podUid, field: "spec.securityContext.runAsUser" };
}

/** The denial for a pod whose app or init container would run as the proxy uid, else undefined. */
export function proxyUidDenial(pod: V1Pod): { message: string; hint: string } | undefined {
  for (const a of appContainers(pod)) {
    const user = runAsUser(pod, a);
    if (user?.uid !== ENVOY_UID) continue;
    const kind = a.field === "containers" ? "container" : "init container";
    return {
      message: `${kind} ${JSON.stringify(a.container.name)} would run as uid ${ENVOY_UID} (${user.field}), the sidecar's uid: its traffic would bypass the sidecar`,
      hint: `run it as another uid (uid ${ENVOY_UID} is reserved for the sidecar, whose traffic the interception rules let out), or annotate the pod with openservicemesh.io/sidecar-injection: disabled`,
    };
  }
  return undefined;
}

/**
 * Every remaining way an app container can send as the proxy uid, one sentence each; empty when none.
 * A container without runAsUser counts as root (the image's user is not known here; it is root on the
 * embedded engine and in most images).
 */
export function proxyUidPaths(pod: V1Pod): string[] {
  const out: string[] = [];
  for (const a of appContainers(pod)) {
    const c = a.container;
    const name = `${a.field === "containers" ? "container" : "init container"} ${JSON.stringify(c.name)}`;
    if (c.securityContext?.privileged) {
      out.push(`${name} is privileged: it can switch to uid ${ENVOY_UID} and rewrite the interception rules`);
      continue;
    }
    if (keepsCapability(c, "NET_ADMIN")) {
      out.push(`${name} has CAP_NET_ADMIN: it can rewrite the interception rules`);
    }
    if (!keepsCapability(c, "SETUID")) continue;
    const uid = runAsUser(pod, a)?.uid;
    if (uid === undefined || uid === 0) {
      const who =
        uid === undefined
          ? "runs as its image's user (root unless the image says otherwise)"
          : "runs as root";
      out.push(
        `${name} ${who} with CAP_SETUID: it can switch to uid ${ENVOY_UID} (e.g. setpriv --reuid ${ENVOY_UID})`,
      );
    } else if (c.securityContext?.allowPrivilegeEscalation !== false) {
      out.push(
        `${name} runs as uid ${uid} but keeps CAP_SETUID in its bounding set and allowPrivilegeEscalation is not false: a setuid-root program can switch it to uid ${ENVOY_UID}`,
      );
    }
  }
  return out;
}

/** Strict egress for this pod: the pod's annotation, else the namespace's, else the injector's default. */
export function egressStrict(pod: V1Pod, namespace: V1Namespace, fallback: boolean): boolean {
  for (const annotations of [pod.metadata?.annotations, namespace.metadata?.annotations]) {
    const value = annotations?.[ANNOTATION_EGRESS_STRICT];
    if (value !== undefined) return parseEnabledAnnotation(ANNOTATION_EGRESS_STRICT, value) === "enabled";
  }
  return fallback;
}

/** Strict mode's denial: an app container that is privileged or adds a capability it forbids. */
export function strictDenial(pod: V1Pod): { message: string; hint: string } | undefined {
  for (const a of appContainers(pod)) {
    const sc = a.container.securityContext;
    const added = capabilityNames(sc?.capabilities?.add).filter((c) => STRICT_FORBIDDEN_ADDS.includes(c));
    const what = sc?.privileged
      ? "is privileged"
      : added.length > 0
        ? `adds capabilities ${added.join(", ")}`
        : undefined;
    if (what === undefined) continue;
    return {
      message: `container ${JSON.stringify(a.container.name)} ${what}, which strict egress (${ANNOTATION_EGRESS_STRICT}) does not allow: it could reach uid ${ENVOY_UID} or the interception rules`,
      hint: `remove it from spec.${a.field}[${a.index}].securityContext, or set ${ANNOTATION_EGRESS_STRICT}: disabled on the pod`,
    };
  }
  return undefined;
}

/** Patch ops that drop CAP_SETUID and CAP_SETGID from every app container that keeps them. */
export function strictCapabilityPatch(pod: V1Pod): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  for (const a of appContainers(pod)) {
    const sc = a.container.securityContext;
    const dropped = capabilityNames(sc?.capabilities?.drop);
    if (dropped.includes("ALL")) continue;
    const missing = STRICT_DROPPED_CAPABILITIES.filter((c) => !dropped.includes(c));
    if (missing.length === 0) continue;
    const base = `/spec/${a.field}/${a.index}/securityContext`;
    if (!sc) ops.push({ op: "add", path: base, value: { capabilities: { drop: missing } } });
    else if (!sc.capabilities)
      ops.push({ op: "add", path: `${base}/capabilities`, value: { drop: missing } });
    else if (!sc.capabilities.drop)
      ops.push({ op: "add", path: `${base}/capabilities/drop`, value: missing });
    else for (const c of missing) ops.push({ op: "add", path: `${base}/capabilities/drop/-`, value: c });
  }
  return ops;
}

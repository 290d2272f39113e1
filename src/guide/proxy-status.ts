/**
 * `osm proxy status`: for each meshed pod, is its interception policy (recorded by the injector at
 * admission) the one the current MeshConfig and annotations would give it, what differs, and the command
 * that restarts it. Reads the MeshConfig, namespaces and pods through the Kubernetes API only, so it works
 * on any cluster and does not need the controller to be running.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Namespace,
  type V1Pod,
} from "@kubernetes/client-node";
import {
  buildEffectivePolicy,
  evaluateStaleness,
  type MeshConfig,
  recordPolicy,
  validateMeshConfig,
} from "../config/index.ts";
import {
  ANNOTATION_INTERCEPTION_LIVE_FAILED,
  ANNOTATION_INTERCEPTION_UPDATED_LIVE,
  MESH_CONFIG_GROUP,
  MESH_CONFIG_NAME,
} from "../constants.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { proxyUidPaths } from "../injector/index.ts";
import { proxyUidLines } from "./explain-pod.ts";
import { restartCommand } from "./restart-command.ts";
import { formatTabwriter } from "./tabwriter.ts";

export interface PodPolicyStatus {
  readonly namespace: string;
  readonly pod: string;
  readonly state: "current" | "stale" | "error";
  /** For stale pods: `+203.0.113.10/32`, ...; for errors: the reason. */
  readonly details: readonly string[];
  /** For stale pods: the command that recreates the pod. */
  readonly restart?: string;
  /** With egress disabled: how the pod's containers can still send as the proxy uid (see injector). */
  readonly proxyUidPaths?: readonly string[];
  /** Live interception updates: when the node agent last changed the pod's rules in place. */
  readonly updatedLiveAt?: string;
  /** Live interception updates: why the last attempt failed (the pod keeps its previous rules). */
  readonly liveFailure?: string;
}

/** A pod that is on its way out (or done) no longer matters: its replacement is what counts. */
function isLive(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return pod.metadata?.deletionTimestamp === undefined && phase !== "Succeeded" && phase !== "Failed";
}

/**
 * Pure: the status of every live pod that has a recorded policy, in the order given. Pods without a
 * recorded policy (no sidecar, or injected by something else) are left out.
 */
export function evaluatePods(
  pods: readonly V1Pod[],
  namespaceAnnotations: ReadonlyMap<string, Readonly<Record<string, string>>>,
  meshConfig: MeshConfig,
): PodPolicyStatus[] {
  const out: PodPolicyStatus[] = [];
  for (const pod of pods) {
    const annotations = pod.metadata?.annotations ?? {};
    if (!isLive(pod)) continue;
    const namespace = pod.metadata?.namespace ?? "";
    const verdict = evaluateStaleness(annotations, () =>
      recordPolicy(
        buildEffectivePolicy(meshConfig, {
          podAnnotations: annotations,
          namespaceAnnotations: namespaceAnnotations.get(namespace) ?? {},
        }),
      ),
    );
    if (verdict === undefined) continue;
    const name = pod.metadata?.name ?? "";
    const paths = meshConfig.spec.traffic.enableEgress ? [] : proxyUidPaths(pod);
    const uidPaths = paths.length > 0 ? { proxyUidPaths: paths } : {};
    const updatedLive = annotations[ANNOTATION_INTERCEPTION_UPDATED_LIVE];
    const failure = annotations[ANNOTATION_INTERCEPTION_LIVE_FAILED];
    if (verdict.state !== "stale") {
      const details = verdict.state === "error" ? [verdict.reason] : [];
      const live = verdict.state === "current" && updatedLive ? { updatedLiveAt: updatedLive } : {};
      out.push({ namespace, pod: name, state: verdict.state, details, ...uidPaths, ...live });
      continue;
    }
    const owner =
      pod.metadata?.ownerReferences?.find((ref) => ref.controller) ?? pod.metadata?.ownerReferences?.[0];
    out.push({
      namespace,
      pod: name,
      state: "stale",
      details: verdict.diff,
      restart: restartCommand(
        namespace,
        name,
        owner ? { kind: owner.kind, name: owner.name } : undefined,
        pod.metadata?.labels?.["pod-template-hash"],
      ),
      ...uidPaths,
      ...(failure ? { liveFailure: failure } : {}),
    });
  }
  return out;
}

/** The INTERCEPTION column: current, updated live at <time>, STALE, failed (<reason>) or ERROR. */
export function interceptionState(s: PodPolicyStatus): string {
  if (s.state === "current") return s.updatedLiveAt ? `updated live at ${s.updatedLiveAt}` : "current";
  if (s.state === "stale") return s.liveFailure ? `failed (${s.liveFailure})` : "STALE";
  return "ERROR";
}

/** The table and the advice under it, as `osm proxy status` prints them. */
export function formatProxyStatus(statuses: readonly PodPolicyStatus[], scope: string): string {
  if (statuses.length === 0) return `No meshed pods found ${scope}\n`;
  const rows = [["NAMESPACE", "POD", "INTERCEPTION", "DIFFERENCE"]];
  for (const s of statuses) {
    const state = interceptionState(s);
    rows.push([s.namespace, s.pod, state, s.state === "current" ? "-" : s.details.join(" ")]);
  }
  let text = formatTabwriter(rows);
  const stale = statuses.filter((s) => s.state === "stale");
  if (stale.length === 0) {
    text += `\nAll ${statuses.length} meshed pod(s) run the current interception policy.\n`;
  } else {
    text +=
      `\n${stale.length} pod(s) run an out-of-date interception policy. Interception is programmed when a pod ` +
      "starts, so restart them:\n";
    for (const command of new Set(stale.map((s) => s.restart ?? ""))) text += `  ${command}\n`;
  }
  for (const s of statuses.filter((x) => (x.proxyUidPaths ?? []).length > 0)) {
    text += `\n${s.namespace}/${s.pod}: ${proxyUidLines(s.proxyUidPaths ?? []).join("\n")}\n`;
  }
  for (const s of statuses.filter((x) => x.state === "error")) {
    text += `\n${s.namespace}/${s.pod}: cannot recompute its policy: ${s.details.join(" ")}\n`;
  }
  return text;
}

export interface ProxyStatusOptions {
  /** undefined: all namespaces. */
  readonly namespace: string | undefined;
  readonly osmNamespace: string;
}

/** Reads and validates the mesh's MeshConfig (defaults filled in) as the injector sees it. */
export async function readMeshConfig(kc: KubeConfig, osmNamespace: string): Promise<MeshConfig> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  let object: Record<string, unknown>;
  try {
    object = (await custom.getNamespacedCustomObject({
      group: MESH_CONFIG_GROUP,
      version: "v1alpha2",
      namespace: osmNamespace,
      plural: "meshconfigs",
      name: MESH_CONFIG_NAME,
    })) as Record<string, unknown>;
  } catch (error) {
    throw new MeshError(
      ErrorCode.NotFound,
      `Could not read MeshConfig ${osmNamespace}/${MESH_CONFIG_NAME}: ${apiErrorMessage(error)}`,
      { cause: error, hint: "is the mesh installed? (osm install)" },
    );
  }
  return meshConfigFromObject(object);
}

/** The MeshConfig an API server returned, validated (defaults filled in); throws ConfigError when invalid. */
export function meshConfigFromObject(object: Record<string, unknown>): MeshConfig {
  const metadata = (object["metadata"] ?? {}) as Record<string, unknown>;
  // The server adds status, uid, resourceVersion, ...: validate only what a user writes.
  return validateMeshConfig({
    apiVersion: object["apiVersion"],
    kind: object["kind"],
    metadata: { name: metadata["name"], namespace: metadata["namespace"] },
    spec: object["spec"] ?? {},
  });
}

/** Fetches pods, namespaces and the MeshConfig, then evaluates every meshed pod. */
export async function fetchProxyStatus(
  kc: KubeConfig,
  options: ProxyStatusOptions,
): Promise<PodPolicyStatus[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const meshConfig = await readMeshConfig(kc, options.osmNamespace);
  let pods: V1Pod[];
  let namespaces: V1Namespace[];
  try {
    pods =
      options.namespace === undefined
        ? (await core.listPodForAllNamespaces()).items
        : (await core.listNamespacedPod({ namespace: options.namespace })).items;
    namespaces =
      options.namespace === undefined
        ? (await core.listNamespace()).items
        : [await core.readNamespace({ name: options.namespace })];
  } catch (error) {
    throw new MeshError(ErrorCode.Unavailable, `Could not list pods: ${apiErrorMessage(error)}`, {
      cause: error,
    });
  }
  const annotations = new Map(
    namespaces.map((ns) => [ns.metadata?.name ?? "", ns.metadata?.annotations ?? {}]),
  );
  const statuses = evaluatePods(pods, annotations, meshConfig);
  return statuses.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
}

/**
 * One line for `osm mesh status` to print: `3 meshed pod(s), 1 with an out-of-date interception policy (see
 * osm proxy status -A)`, or `2 meshed pod(s), all current`.
 */
export function summarizeStaleness(statuses: readonly PodPolicyStatus[]): string {
  const stale = statuses.filter((s) => s.state === "stale").length;
  const errors = statuses.filter((s) => s.state === "error").length;
  if (stale === 0 && errors === 0) return `${statuses.length} meshed pod(s), all current`;
  const parts = [`${statuses.length} meshed pod(s)`];
  if (stale > 0) parts.push(`${stale} with an out-of-date interception policy`);
  if (errors > 0) parts.push(`${errors} whose policy cannot be recomputed`);
  return `${parts.join(", ")} (see osm proxy status -A)`;
}

/**
 * Pure: the dashboard's state (mesh overview and pods) from the objects the API server's watches hold. The
 * verdicts are the owners': `evaluatePods` and `interceptionState` of `osm proxy status`, the effective
 * policy's provenance and warnings (the MeshConfig validator's admission warnings).
 */
import type { V1Deployment, V1Namespace, V1Pod } from "@kubernetes/client-node";
import { buildEffectivePolicy, describeProvenance, type MeshConfig } from "../config/index.ts";
import type { GivenCidr, PortEntry } from "../config/policy-types.ts";
import { SIDECAR_CONTAINER_NAME } from "../constants.ts";
import { evaluatePods, interceptionState, meshConfigFromObject } from "../guide/proxy-status.ts";
import type { DashboardState, ListEntry, MeshOverview, PodRow } from "./wire.ts";

export interface ClusterView {
  readonly osmNamespace: string;
  /** The stored `osm-mesh-config` object, undefined when there is none. */
  readonly meshConfig: Record<string, unknown> | undefined;
  readonly pods: readonly V1Pod[];
  readonly namespaces: readonly V1Namespace[];
  /** The Deployments of the OSM namespace (the control plane). */
  readonly deployments: readonly V1Deployment[];
}

const cidrEntry = (item: GivenCidr, where: string): ListEntry => ({
  value: item.given,
  from: `${describeProvenance(item.provenance)}${item.provenance.source === "annotation" ? where : ""}`,
});
const portEntry = (item: PortEntry, where: string): ListEntry => ({
  value: String(item.port),
  from: `${describeProvenance(item.provenance)}${item.provenance.source === "annotation" ? where : ""}`,
});

/** Adds each entry once (the MeshConfig's entries come back in every pod's policy). */
function addUnique(list: ListEntry[], entries: readonly ListEntry[]): void {
  for (const e of entries) {
    if (!list.some((x) => x.value === e.value && x.from === e.from)) list.push(e);
  }
}

/** `osm-controller: 1/1 ready` for each Deployment of the control plane. */
function controlPlane(deployments: readonly V1Deployment[]): MeshOverview["controlPlane"] {
  return deployments
    .filter((d) => d.metadata?.deletionTimestamp === undefined)
    .map((d) => {
      const want = d.spec?.replicas ?? 1;
      const ready = d.status?.readyReplicas ?? 0;
      return { name: d.metadata?.name ?? "", ready: ready >= want, text: `${ready}/${want} ready` };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The `--backend` osm-init was given (`auto`: nft when the pod's node has it), `-` without osm-init. */
export function initBackend(pod: V1Pod): string {
  const init = pod.spec?.initContainers?.find((c) => c.name === "osm-init");
  if (!init) return "-";
  const words = [...(init.command ?? []), ...(init.args ?? [])];
  const flag = words.indexOf("--backend");
  if (flag >= 0) return words[flag + 1] ?? "-";
  const script = words.join(" ");
  if (script.includes("nft -f")) return script.includes("iptables-restore") ? "auto" : "nftables";
  return script.includes("iptables-restore") ? "iptables" : "-";
}

/** The value of the sidecar container's `flag` (command or args), if given. */
function sidecarFlag(pod: V1Pod, flag: string): string | undefined {
  const sidecar = pod.spec?.containers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
  const words = [...(sidecar?.command ?? []), ...(sidecar?.args ?? [])];
  const at = words.indexOf(flag);
  return at >= 0 ? words[at + 1] : undefined;
}

/** The sidecar's `--log-level`, as the injector set it from MeshConfig spec.sidecar.logLevel. */
export function sidecarLogLevel(pod: V1Pod): string {
  return sidecarFlag(pod, "--log-level") ?? "info";
}

/** Whether the sidecar writes its access log (the live stream's source): at any log level, unless turned off. */
export function sidecarWritesAccessLog(pod: V1Pod): boolean {
  return sidecarFlag(pod, "--access-log") !== "off";
}

function sidecarReady(pod: V1Pod): boolean {
  return (pod.status?.containerStatuses ?? []).some((c) => c.name === SIDECAR_CONTAINER_NAME && c.ready);
}

/** Builds what the page shows; `at` is the time to stamp it with. */
export function buildDashboardState(view: ClusterView, at: string): DashboardState {
  const meshConfigName = `${view.osmNamespace}/osm-mesh-config`;
  const controlPlaneRows = controlPlane(view.deployments);
  const empty = {
    meshConfig: meshConfigName,
    enableEgress: true,
    exclusions: [],
    inclusions: [],
    portExclusions: [],
    warnings: [],
    controlPlane: controlPlaneRows,
    meshedPods: 0,
    stalePods: 0,
    traffic: ((view.meshConfig?.["spec"] as Record<string, unknown> | undefined)?.["traffic"] ??
      {}) as Record<string, unknown>,
  };
  if (view.meshConfig === undefined) {
    return { overview: { ...empty, error: `MeshConfig ${meshConfigName} not found` }, pods: [], at };
  }
  let meshConfig: MeshConfig;
  try {
    meshConfig = meshConfigFromObject(view.meshConfig);
  } catch (error) {
    return { overview: { ...empty, error: (error as Error).message }, pods: [], at };
  }
  const nsAnnotations = new Map(
    view.namespaces.map((ns) => [ns.metadata?.name ?? "", ns.metadata?.annotations ?? {}]),
  );
  const statuses = evaluatePods(view.pods, nsAnnotations, meshConfig);
  const byName = new Map(view.pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p]));

  const global = buildEffectivePolicy(meshConfig, {});
  const exclusions: ListEntry[] = [];
  const inclusions: ListEntry[] = [];
  const portExclusions: ListEntry[] = [];
  addUnique(
    exclusions,
    global.asGiven.outboundIPRangeExclusionList.map((i) => cidrEntry(i, "")),
  );
  addUnique(
    inclusions,
    global.asGiven.outboundIPRangeInclusionList.map((i) => cidrEntry(i, "")),
  );
  addUnique(
    portExclusions,
    global.asGiven.outboundPortExclusionList.map((i) => portEntry(i, "")),
  );
  const pods: PodRow[] = [];
  for (const s of statuses) {
    const pod = byName.get(`${s.namespace}/${s.pod}`);
    if (!pod) continue;
    const policy = buildEffectivePolicy(meshConfig, {
      podAnnotations: pod.metadata?.annotations ?? {},
      namespaceAnnotations: nsAnnotations.get(s.namespace) ?? {},
    });
    const where = ` on ${s.namespace}/${s.pod}`;
    addUnique(
      exclusions,
      policy.asGiven.outboundIPRangeExclusionList.map((i) => cidrEntry(i, where)),
    );
    addUnique(
      inclusions,
      policy.asGiven.outboundIPRangeInclusionList.map((i) => cidrEntry(i, where)),
    );
    addUnique(
      portExclusions,
      policy.asGiven.outboundPortExclusionList.map((i) => portEntry(i, where)),
    );
    pods.push({
      namespace: s.namespace,
      pod: s.pod,
      sidecarReady: sidecarReady(pod),
      backend: initBackend(pod),
      interception: interceptionState(s),
      logsDecisions: sidecarWritesAccessLog(pod),
      logLevel: sidecarLogLevel(pod),
      state: s.state,
      difference: s.details,
      ...(s.restart ? { restart: s.restart } : {}),
    });
  }
  return {
    overview: {
      ...empty,
      enableEgress: meshConfig.spec.traffic.enableEgress,
      exclusions,
      inclusions,
      portExclusions,
      warnings: global.warnings.map((w) => `${w.code}: ${w.message}`),
      meshedPods: pods.length,
      stalePods: pods.filter((p) => p.state === "stale").length,
    },
    pods,
    at,
  };
}

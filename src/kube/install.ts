/**
 * `osm install` / `osm uninstall mesh`, minus argv: apply the control plane in dependency order through the
 * Kubernetes API, or remove it. The caller passes the client and a line writer (the CLI prints).
 */
import type { KubernetesObjectApi } from "@kubernetes/client-node";
import { meshConfigCrd } from "../config/index.ts";
import { apiErrorCode } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { smiCrds } from "../smi/crd.ts";
import { type ApplyEvent, applyOne, createIfAbsent, deleteOne, waitForCrdEstablished } from "./apply.ts";
import type { InstallValues } from "./install-values.ts";
import { renderManifestsYaml } from "./manifest-yaml.ts";
import {
  buildInstallManifests,
  buildNodeAgentManifests,
  buildPresetMeshConfig,
  type Manifest,
  toApiObject,
} from "./manifests.ts";

const WEBHOOK_KINDS = new Set(["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]);
/** Applied after the RBAC they run as and the MeshConfig they read. */
const WORKLOAD_KINDS = new Set(["Service", "Deployment", "DaemonSet"]);

/** The CRDs `osm install` applies: MeshConfig, then the SMI access APIs (OSM's osm-bootstrap installs both). */
export function crdManifests(): Manifest[] {
  return [meshConfigCrd(), ...smiCrds()] as unknown as Manifest[];
}

/** What `--dry-run` prints: CRD, control plane and the MeshConfig `osm install` would create if absent. */
export function renderInstallYaml(values: InstallValues, version: string): string {
  return renderManifestsYaml(
    [...crdManifests(), ...buildInstallManifests(values), buildPresetMeshConfig(values)],
    `osm-ts ${version}: mesh ${values.meshName} in namespace ${values.osmNamespace}`,
  );
}

export function describeEvent(e: ApplyEvent): string {
  const ref = `${e.kind.toLowerCase()}/${e.name}`;
  const line = e.namespace ? `${ref} (${e.namespace}) ${e.action}` : `${ref} ${e.action}`;
  return e.note ? `${line}: ${e.note}` : line;
}

/**
 * Objects of a group/version the server does not serve are skipped with a note rather than failing the
 * install (the embedded API server has no RBAC: it authorises by token alone). Undefined `served`: all.
 */
function unservedEvent(m: Manifest, served: ReadonlySet<string> | undefined): ApplyEvent | undefined {
  if (!served || served.has(m.apiVersion)) return undefined;
  return {
    kind: m.kind,
    name: m.metadata.name,
    namespace: m.metadata.namespace,
    action: "skipped",
    note: `${m.apiVersion} is not served by this API server`,
  };
}

/**
 * Order: CRD (and wait until served), namespace, RBAC, preset ConfigMap, the MeshConfig if absent (before
 * the validator webhook is registered, so install never waits on its own webhook), services, deployments,
 * then the webhook configurations.
 */
export async function installMesh(deps: {
  client: KubernetesObjectApi;
  values: InstallValues;
  out: (line: string) => void;
  /** Group/versions the server serves (discoverGroupVersions); objects of others are skipped. */
  served?: ReadonlySet<string>;
  crdTimeoutMs?: number;
  /** Resolves when the applied control plane is ready (OSM's install waits before it says "installed"). */
  waitReady?: () => Promise<void>;
}): Promise<void> {
  const { client, values, out } = deps;
  const manifests = buildInstallManifests(values).map(toApiObject);
  const daemonSet = manifests.find((m) => m.kind === "DaemonSet");
  if (daemonSet && (await lookup(client, daemonSet)) === "unserved") {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "osm.nodeAgent.enabled=true: this API server does not serve DaemonSets (apps/v1), so the osm-node DaemonSet cannot run",
      {
        hint: "on the embedded engine the node agent applies live interception updates itself: drop --set osm.nodeAgent.enabled=true",
      },
    );
  }
  const apply = async (m: Manifest) =>
    out(describeEvent(unservedEvent(m, deps.served) ?? (await applyOne(client, m))));
  const preset = buildPresetMeshConfig(values);
  for (const crd of crdManifests()) {
    out(describeEvent(await applyOne(client, crd)));
    if (!(await waitForCrdEstablished(client, crd.metadata.name, deps.crdTimeoutMs ?? 30_000))) {
      throw new MeshError(ErrorCode.Unavailable, `CRD ${crd.metadata.name} was not established in time`, {
        hint: `check the API server (kubectl get crd ${crd.metadata.name} -o yaml)`,
      });
    }
  }
  const early = manifests.filter((m) => !WEBHOOK_KINDS.has(m.kind) && !WORKLOAD_KINDS.has(m.kind));
  const late = manifests.filter((m) => WORKLOAD_KINDS.has(m.kind));
  const webhooks = manifests.filter((m) => WEBHOOK_KINDS.has(m.kind));
  for (const m of early) await apply(m);
  out(describeEvent(await createIfAbsent(client, preset)));
  for (const m of [...late, ...webhooks]) await apply(m);
  await deps.waitReady?.();
  out(`OSM installed successfully in namespace [${values.osmNamespace}] with mesh name [${values.meshName}]`);
}

/**
 * The osm-node DaemonSet and its RBAC, when installed: nothing is said about a DaemonSet that is not there
 * (the default install has none; the embedded API server does not serve the kind).
 */
/** Reading the object: there, absent (404), or of a kind the API server does not serve. */
async function lookup(client: KubernetesObjectApi, m: Manifest): Promise<"present" | "absent" | "unserved"> {
  return client.read(m).then(
    () => "present" as const,
    (error: unknown) => {
      if (apiErrorCode(error) === 404) return "absent" as const;
      if (/Unrecognized API version and kind/.test(String(error))) return "unserved" as const;
      throw error;
    },
  );
}

async function uninstallNodeAgent(
  client: KubernetesObjectApi,
  values: InstallValues,
  out: (line: string) => void,
): Promise<void> {
  const objects = buildNodeAgentManifests(values).map(toApiObject);
  const daemonSet = objects.find((m) => m.kind === "DaemonSet")!;
  const present = await client.read(daemonSet).then(
    () => true,
    (error: unknown) => {
      if (apiErrorCode(error) === 404 || /Unrecognized API version and kind/.test(String(error)))
        return false;
      throw error;
    },
  );
  if (!present) return;
  out(describeEvent(await deleteOne(client, daemonSet)));
  for (const m of objects.filter((o) => o !== daemonSet)) out(describeEvent(await deleteOne(client, m)));
}

/**
 * Removes the control plane. Webhook configurations go first: with failurePolicy Fail, a registered webhook
 * whose server is gone would block pod creation in every meshed namespace. The MeshConfig, the namespace and
 * the CRD stay unless asked (OSM's `--delete-namespace`, `--delete-cluster-wide-resources`).
 */
export async function uninstallMesh(deps: {
  client: KubernetesObjectApi;
  values: InstallValues;
  deleteNamespace: boolean;
  deleteClusterWideResources: boolean;
  out: (line: string) => void;
  served?: ReadonlySet<string>;
}): Promise<void> {
  const { client, values, out } = deps;
  // The osm-node DaemonSet and its identity whether or not this uninstall's values name it.
  const manifests = buildInstallManifests({ ...values, nodeAgent: false }).map(toApiObject);
  const namespaceObject = manifests.find((m) => m.kind === "Namespace");
  const ordered = [
    ...manifests.filter((m) => WEBHOOK_KINDS.has(m.kind)),
    ...manifests.filter((m) => m.kind === "Deployment"),
    ...manifests.filter(
      (m) => !WEBHOOK_KINDS.has(m.kind) && m.kind !== "Deployment" && m.kind !== "Namespace",
    ),
  ];
  for (const m of ordered) out(describeEvent(unservedEvent(m, deps.served) ?? (await deleteOne(client, m))));
  await uninstallNodeAgent(client, values, out);
  if (deps.deleteNamespace && namespaceObject) out(describeEvent(await deleteOne(client, namespaceObject)));
  if (deps.deleteClusterWideResources) {
    for (const crd of crdManifests()) out(describeEvent(await deleteOne(client, crd)));
  }
  out(`OSM [mesh name: ${values.meshName}] in namespace [${values.osmNamespace}] uninstalled`);
}

/**
 * `osm namespace add | remove | list | ignore`, as OSM v1.2's CLI (cmd/cli/namespace_*.go): the same API
 * calls (a strategic-merge patch of the namespace's label and annotation), the same checks in the same
 * order, and the same messages, verbatim. Works against any cluster the KubeConfig points at.
 */
import {
  AppsV1Api,
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import {
  ANNOTATION_METRICS,
  ANNOTATION_SIDECAR_INJECTION,
  LABEL_APP,
  LABEL_IGNORE,
  LABEL_MESH_NAME,
  LABEL_MONITORED_BY,
  OSM_CONTROLLER_NAME,
} from "../constants.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { formatTabwriter } from "./tabwriter.ts";

/** Where the commands print their result lines (stdout in the CLI). */
export type Out = (text: string) => void;

const strategicMerge = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

function fail(message: string, cause?: unknown): MeshError {
  return new MeshError(ErrorCode.Unavailable, message, cause === undefined ? {} : { cause });
}

/** OSM's meshExists: a mesh exists when some Deployment, in any namespace, is labelled `meshName=<name>`. */
export async function meshExists(kc: KubeConfig, meshName: string): Promise<boolean> {
  const apps = kc.makeApiClient(AppsV1Api);
  try {
    const list = await apps.listDeploymentForAllNamespaces({
      labelSelector: `${LABEL_MESH_NAME}=${meshName}`,
    });
    return list.items.length !== 0;
  } catch (error) {
    throw fail(`Cannot obtain information about the mesh [${meshName}]: [${apiErrorMessage(error)}]`, error);
  }
}

export interface NamespaceAddOptions {
  readonly namespaces: readonly string[];
  readonly meshName: string;
  readonly disableSidecarInjection: boolean;
}

/** `osm namespace add NS... [--mesh-name] [--disable-sidecar-injection]` (cmd/cli/namespace_add.go). */
export async function addNamespaces(kc: KubeConfig, options: NamespaceAddOptions, out: Out): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const mesh = options.meshName;
  for (const ns of options.namespaces) {
    if (!(await meshExists(kc, mesh))) {
      throw new MeshError(
        ErrorCode.NotFound,
        `mesh [${mesh}] does not exist, please specify another mesh using --mesh-name or create a new mesh`,
      );
    }
    // OSM ignores a failed list here (`list, _ :=`); so do we: an error counts as "no controller".
    const controllers = await apps
      .listNamespacedDeployment({ namespace: ns, labelSelector: `${LABEL_APP}=${OSM_CONTROLLER_NAME}` })
      .then((list) => list.items.length)
      .catch(() => 0);
    if (controllers !== 0) {
      out(
        `Namespace [${ns}] already has [${OSM_CONTROLLER_NAME}] installed and cannot be added to mesh [${mesh}]\n`,
      );
      continue;
    }
    let namespace: Awaited<ReturnType<CoreV1Api["readNamespace"]>>;
    try {
      namespace = await core.readNamespace({ name: ns });
    } catch (error) {
      throw fail(`Could not add namespace [${ns}] to mesh [${mesh}]: ${apiErrorMessage(error)}`, error);
    }
    const labels = namespace.metadata?.labels ?? {};
    if (labels[LABEL_MONITORED_BY] === mesh) {
      out(`Namespace [${ns}] has already been added to mesh [${mesh}]\n`);
      continue;
    }
    if (labels[LABEL_IGNORE] === "true") {
      throw new MeshError(ErrorCode.Conflict, "Cannot add ignored namespace");
    }
    const patch = {
      metadata: {
        labels: { [LABEL_MONITORED_BY]: mesh },
        annotations: {
          [ANNOTATION_SIDECAR_INJECTION]: options.disableSidecarInjection ? "disabled" : "enabled",
        },
      },
    };
    try {
      await core.patchNamespace({ name: ns, body: patch }, strategicMerge);
    } catch (error) {
      throw fail(`Could not add namespace [${ns}] to mesh [${mesh}]: ${apiErrorMessage(error)}`, error);
    }
    out(`Namespace [${ns}] successfully added to mesh [${mesh}]\n`);
  }
}

/** `osm namespace remove NS [--mesh-name]` (cmd/cli/namespace_remove.go; fields per docs/osm-behaviour.md §4). */
export async function removeNamespace(
  kc: KubeConfig,
  options: { readonly namespace: string; readonly meshName: string },
  out: Out,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace: ns, meshName: mesh } = options;
  let namespace: Awaited<ReturnType<CoreV1Api["readNamespace"]>>;
  try {
    namespace = await core.readNamespace({ name: ns });
  } catch (error) {
    throw fail(`Could not get namespace [${ns}]: ${apiErrorMessage(error)}`, error);
  }
  const labels = namespace.metadata?.labels ?? {};
  const current = labels[LABEL_MONITORED_BY];
  if (current === undefined) {
    out(`Namespace [${ns}] already does not belong to any mesh\n`);
    return;
  }
  if (current !== mesh) {
    throw new MeshError(
      ErrorCode.Conflict,
      `Namespace belongs to mesh [${current}], not mesh [${mesh}]. Please specify the correct mesh`,
    );
  }
  // A null in a strategic-merge patch deletes just that key; absent keys are no-ops.
  const patch = {
    metadata: {
      labels: { [LABEL_MONITORED_BY]: null, [LABEL_IGNORE]: null },
      annotations: { [ANNOTATION_SIDECAR_INJECTION]: null, [ANNOTATION_METRICS]: null },
    },
  };
  try {
    await core.patchNamespace({ name: ns, body: patch }, strategicMerge);
  } catch (error) {
    throw fail(`Could not remove namespace [${ns}] from mesh [${mesh}]: ${apiErrorMessage(error)}`, error);
  }
  out(`Namespace [${ns}] successfully removed from mesh [${mesh}]\n`);
}

/** `osm namespace list [--mesh-name]` (cmd/cli/namespace_list.go): a tabwriter table as OSM prints it. */
export async function listNamespaces(
  kc: KubeConfig,
  options: { readonly meshName: string },
  out: Out,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const mesh = options.meshName;
  const labelSelector = mesh === "" ? LABEL_MONITORED_BY : `${LABEL_MONITORED_BY}=${mesh}`;
  let items: Awaited<ReturnType<CoreV1Api["listNamespace"]>>["items"];
  try {
    items = (await core.listNamespace({ labelSelector })).items;
  } catch (error) {
    throw fail(`Could not list namespaces related to osm [${mesh}]: ${apiErrorMessage(error)}`, error);
  }
  if (items.length === 0) {
    out(mesh === "" ? "No namespaces in any mesh\n" : `No namespaces in mesh [${mesh}]\n`);
    return;
  }
  const rows = [["NAMESPACE", "MESH", "SIDECAR-INJECTION"]];
  for (const ns of items) {
    rows.push([
      ns.metadata?.name ?? "",
      ns.metadata?.labels?.[LABEL_MONITORED_BY] ?? "",
      ns.metadata?.annotations?.[ANNOTATION_SIDECAR_INJECTION] ?? "-",
    ]);
  }
  out(formatTabwriter(rows));
}

/** `osm namespace ignore NS...` (cmd/cli/namespace_ignore.go). */
export async function ignoreNamespaces(
  kc: KubeConfig,
  options: { readonly namespaces: readonly string[] },
  out: Out,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  for (const given of options.namespaces) {
    const ns = given.trim();
    try {
      await core.readNamespace({ name: ns });
    } catch (error) {
      throw fail(`Failed to retrieve namespace [${ns}]: ${apiErrorMessage(error)}`, error);
    }
    const patch = { metadata: { labels: { [LABEL_IGNORE]: "true" } } };
    try {
      await core.patchNamespace({ name: ns, body: patch }, strategicMerge);
    } catch (error) {
      throw fail(`Failed to configure namespace [${ns}] to be ignored: ${apiErrorMessage(error)}`, error);
    }
    out(`Successfully configured namespace [${ns}] to be ignored\n`);
  }
}

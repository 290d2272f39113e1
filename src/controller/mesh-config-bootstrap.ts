/**
 * Creates `osm-mesh-config` from the preset only when it does not exist, as osm-bootstrap does
 * (cmd/osm-bootstrap/osm-bootstrap.go: ensureMeshConfig), so values a user patched survive restarts and
 * upgrades. Never updates an existing object.
 */

import type { CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { defaultMeshConfig } from "../config/validate.ts";
import { MESH_CONFIG_GROUP, MESH_CONFIG_NAME } from "../constants.ts";
import { apiErrorCode } from "../edge/kube-client.ts";

export const MESH_CONFIG_VERSION = "v1alpha2";
export const MESH_CONFIG_PLURAL = "meshconfigs";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** The preset object to create in `namespace`, with the last-applied annotation osm-bootstrap adds. */
export function buildPresetMeshConfig(namespace: string): Record<string, unknown> {
  const preset = defaultMeshConfig();
  const object = {
    apiVersion: `${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}`,
    kind: "MeshConfig",
    metadata: { name: MESH_CONFIG_NAME, namespace },
    spec: preset.spec,
  };
  // kubectl apply later diffs against this, as with OSM's bootstrap-created object.
  return {
    ...object,
    metadata: { ...object.metadata, annotations: { [LAST_APPLIED]: JSON.stringify(object) } },
  };
}

export type EnsureResult = "created" | "exists";

/** Creates the MeshConfig unless it exists. Throws on other API errors (the caller retries). */
export async function ensureMeshConfig(
  api: CustomObjectsApi,
  namespace: string,
  logger: Logger,
): Promise<EnsureResult> {
  const ref = {
    group: MESH_CONFIG_GROUP,
    version: MESH_CONFIG_VERSION,
    namespace,
    plural: MESH_CONFIG_PLURAL,
  };
  try {
    await api.getNamespacedCustomObject({ ...ref, name: MESH_CONFIG_NAME });
    return "exists";
  } catch (error) {
    if (apiErrorCode(error) !== 404) throw error;
  }
  try {
    await api.createNamespacedCustomObject({ ...ref, body: buildPresetMeshConfig(namespace) });
    logger.info({ namespace, name: MESH_CONFIG_NAME }, "created MeshConfig from the preset");
    return "created";
  } catch (error) {
    // Someone (another controller, kubectl) created it between our get and create: theirs wins.
    if (apiErrorCode(error) === 409) return "exists";
    throw error;
  }
}

/** The webhook's reads from the Kubernetes API (client-node): the pod's namespace and the MeshConfig. */

import type { CoreV1Api, CustomObjectsApi, V1Namespace } from "@kubernetes/client-node";
import { MESH_CONFIG_GROUP, MESH_CONFIG_NAME } from "../constants.ts";
import { apiErrorCode } from "../edge/kube-client.ts";
import type { ClusterReader } from "./pod-webhook.ts";

function isNotFound(error: unknown): boolean {
  return apiErrorCode(error) === 404;
}

/** Rejects with the signal's reason when it aborts first (client-node calls take no AbortSignal). */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export function createClusterReader(deps: {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  osmNamespace: string;
}): ClusterReader {
  return {
    async getNamespace(name, signal) {
      try {
        return await raceSignal<V1Namespace>(deps.core.readNamespace({ name }), signal);
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async getMeshConfig(signal) {
      try {
        return await raceSignal<unknown>(
          deps.custom.getNamespacedCustomObject({
            group: MESH_CONFIG_GROUP,
            version: "v1alpha2",
            namespace: deps.osmNamespace,
            plural: "meshconfigs",
            name: MESH_CONFIG_NAME,
          }),
          signal,
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
  };
}

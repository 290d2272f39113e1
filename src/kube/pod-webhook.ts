/**
 * `/mutate-pod-creation`: OSM's pod injection webhook. Reads the pod's namespace and the MeshConfig at each
 * admission (always fresh: new pods see a MeshConfig change at once, as OSM's informer cache gives), mints the
 * per-pod random values, and hands everything to the pure injector.
 */
import { randomUUID } from "node:crypto";
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { type MeshConfig, validateMeshConfig } from "../config/index.ts";
import { MESH_CONFIG_NAME } from "../constants.ts";
import { ConfigError, isMeshError } from "../errors.ts";
import { decideInjection, type InjectionSeeds, type InjectorOptions, injectPod } from "../injector/index.ts";
import { type AdmissionDecision, denied } from "./admission.ts";
import type { AdmissionHandler } from "./webhook-server.ts";

/** What the webhook reads from the API (client-node in production, a map in tests). */
export interface ClusterReader {
  getNamespace(name: string, signal: AbortSignal): Promise<V1Namespace | undefined>;
  /** The raw `osm-mesh-config` object in the OSM namespace, or undefined when absent. */
  getMeshConfig(signal: AbortSignal): Promise<unknown | undefined>;
}

/** 32 random bytes: the sidecar's bearer token (only its sha256 is stored on the pod). */
export function mintSeeds(): InjectionSeeds {
  return { proxyUuid: randomUUID() };
}

/** Message plus our hint, the way the CLI prints ConfigIssue: `<OSM's text> (hint: ...)`. */
export function withHint(message: string, hint: string | undefined): string {
  return hint ? `${message} (hint: ${hint})` : message;
}

export function createPodInjectionHandler(deps: {
  reader: ClusterReader;
  options: InjectorOptions;
  logger: Logger;
  seeds?: () => InjectionSeeds;
}): AdmissionHandler {
  const seeds = deps.seeds ?? mintSeeds;
  const { options } = deps;
  // The last MeshConfig validated, by resourceVersion (every write changes it): a list of 100,000 exclusions
  // takes about a second to validate, and every admission reads the same object until it changes.
  let last: { readonly version: string; readonly meshConfig: MeshConfig } | undefined;
  const validated = (raw: unknown): MeshConfig => {
    const version = (raw as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
    if (typeof version === "string" && last?.version === version) return last.meshConfig;
    const meshConfig = validateMeshConfig(raw);
    last = typeof version === "string" ? { version, meshConfig } : undefined;
    return meshConfig;
  };
  return async (request, signal): Promise<AdmissionDecision> => {
    if (request.kind.kind !== "Pod" || request.operation !== "CREATE") return { allowed: true };
    const pod = request.object as V1Pod | undefined;
    if (!pod || typeof pod !== "object") return denied("request.object is not a Pod", 400, "BadRequest");
    const nsName = request.namespace ?? pod.metadata?.namespace;
    if (!nsName) return denied("the pod has no namespace", 400, "BadRequest");
    const namespace = await deps.reader.getNamespace(nsName, signal);
    if (!namespace) return denied(`namespace ${nsName} not found`, 404, "NotFound");

    // Decide first: a pod that gets no sidecar must not depend on the MeshConfig being readable.
    try {
      const decision = decideInjection(pod, namespace, options);
      if (!decision.inject) {
        deps.logger.debug({ uid: request.uid, reason: decision.reason }, "not injecting");
        return { allowed: true };
      }
    } catch (error) {
      if (isMeshError(error)) return denied(withHint(error.message, error.hint));
      throw error;
    }

    const raw = await deps.reader.getMeshConfig(signal);
    const ref = `${options.osmNamespace}/${MESH_CONFIG_NAME}`;
    if (raw === undefined) {
      return denied(
        withHint(`MeshConfig ${ref} not found`, "run osm install, or restore the MeshConfig from the preset"),
        500,
        "InternalError",
      );
    }
    let meshConfig: MeshConfig;
    try {
      meshConfig = validated(raw);
    } catch (error) {
      // OSM does not re-validate the global lists and lets osm-init crash-loop; we refuse the pod instead.
      if (error instanceof ConfigError) {
        return denied(
          withHint(
            `MeshConfig ${ref} is invalid: ${error.message}`,
            "fix the MeshConfig (kubectl edit meshconfig osm-mesh-config -n " + options.osmNamespace + ")",
          ),
          500,
          "InternalError",
        );
      }
      throw error;
    }
    const result = injectPod({ pod, namespace, meshConfig, options, seeds: seeds() });
    switch (result.kind) {
      case "skip":
        return { allowed: true };
      case "deny":
        return denied(withHint(result.message, result.hint));
      case "inject":
        return { allowed: true, patch: result.patch, warnings: result.warnings };
    }
  };
}

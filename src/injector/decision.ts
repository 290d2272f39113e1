/**
 * Whether a pod gets a sidecar: OSM's `mustInject` (pkg/injector/webhook.go), evaluated in the same order.
 * An invalid `openservicemesh.io/sidecar-injection` value on the pod or its namespace is an error (the pod is
 * denied), exactly as OSM's `isAnnotatedForInjection`.
 */
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import { parseSidecarInjection } from "../config/index.ts";
import { ANNOTATION_SIDECAR_INJECTION, LABEL_IGNORE, LABEL_MONITORED_BY } from "../constants.ts";
import type { SkipReason } from "./types.ts";

/** Namespaces OSM never injects into (pkg/injector/webhook.go: `kube-system`, `kube-public`). */
export const SYSTEM_NAMESPACES: readonly string[] = ["kube-system", "kube-public"];

export type InjectionDecision =
  | { readonly inject: true }
  | { readonly inject: false; readonly reason: SkipReason };

/**
 * OSM's decision. Throws MeshError (OSM's message) when a sidecar-injection annotation is invalid.
 * Order (docs/osm-behaviour.md §4): hostNetwork; system, OSM or unmonitored namespace; pod enabled; namespace enabled unless
 * the pod says disabled; otherwise no.
 */
export function decideInjection(
  pod: V1Pod,
  namespace: V1Namespace,
  options: { readonly meshName: string; readonly osmNamespace: string },
): InjectionDecision {
  // Issue #4359: rules written from a hostNetwork pod land in the node's own network namespace.
  if (pod.spec?.hostNetwork === true) return { inject: false, reason: "host-network" };
  const nsName = namespace.metadata?.name ?? "";
  if (SYSTEM_NAMESPACES.includes(nsName)) return { inject: false, reason: "system-namespace" };
  if (nsName === options.osmNamespace) return { inject: false, reason: "osm-namespace" };
  const labels = namespace.metadata?.labels ?? {};
  if (labels[LABEL_MONITORED_BY] !== options.meshName)
    return { inject: false, reason: "namespace-not-monitored" };
  // The webhook's namespaceSelector already excludes ignored namespaces; checked again so the pure decision
  // is right on its own.
  if (labels[LABEL_IGNORE] !== undefined) return { inject: false, reason: "namespace-ignored" };

  const podValue = pod.metadata?.annotations?.[ANNOTATION_SIDECAR_INJECTION];
  const podSetting = podValue === undefined ? undefined : parseSidecarInjection(podValue);
  if (podSetting === "enabled") return { inject: true };
  const nsValue = namespace.metadata?.annotations?.[ANNOTATION_SIDECAR_INJECTION];
  const nsSetting = nsValue === undefined ? undefined : parseSidecarInjection(nsValue);
  if (nsSetting === "enabled") {
    return podSetting === "disabled" ? { inject: false, reason: "pod-disabled" } : { inject: true };
  }
  return { inject: false, reason: "not-enabled" };
}

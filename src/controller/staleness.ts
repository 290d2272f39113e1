/**
 * Is a meshed pod running with the interception policy the current MeshConfig would give it? Interception
 * is programmed once, by osm-init at pod start (docs/osm-behaviour.md §5.2), so a MeshConfig change reaches a pod only when
 * it is recreated; until then the pod is "stale". Pure: the policy computation is passed in.
 */
import type { V1Namespace, V1Pod } from "@kubernetes/client-node";
import { ANNOTATION_INTERCEPTION_POLICY, ANNOTATION_INTERCEPTION_POLICY_HASH } from "../constants.ts";
import { diffPolicyText, formatPolicyDiff } from "./policy-diff.ts";

/** The policy a pod would get now, in canonical text and its hash (as the injector records them). */
export interface RecomputedPolicy {
  readonly text: string;
  readonly hash: string;
}

/** Recomputes a pod's policy from the current MeshConfig and the pod's and namespace's annotations. */
export type PolicyRecompute = (input: {
  readonly podAnnotations: Readonly<Record<string, string>>;
  readonly namespaceAnnotations: Readonly<Record<string, string>>;
}) => RecomputedPolicy;

export type PodStaleness =
  | { readonly state: "current"; readonly hash: string }
  | {
      readonly state: "stale";
      readonly recordedHash: string;
      readonly currentHash: string;
      /** `-10.0.0.0/8`, `+203.0.113.10/32`: what recreating the pod would change. */
      readonly diff: readonly string[];
    }
  | { readonly state: "error"; readonly reason: string };

/** True when the injector recorded a policy on this pod (it was admitted with a sidecar by osm-ts). */
export function hasRecordedPolicy(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[ANNOTATION_INTERCEPTION_POLICY_HASH] !== undefined;
}

/**
 * Compares the recorded policy with the recomputed one. Undefined for pods without a recorded policy.
 * Hashes decide; the texts only explain (a pod whose text annotation was lost is still reported stale).
 */
export function evaluatePodStaleness(
  pod: V1Pod,
  namespace: V1Namespace | undefined,
  recompute: PolicyRecompute,
): PodStaleness | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  const recordedHash = annotations[ANNOTATION_INTERCEPTION_POLICY_HASH];
  if (recordedHash === undefined) return undefined;
  let current: RecomputedPolicy;
  try {
    current = recompute({
      podAnnotations: annotations,
      namespaceAnnotations: namespace?.metadata?.annotations ?? {},
    });
  } catch (error) {
    return { state: "error", reason: error instanceof Error ? error.message : String(error) };
  }
  if (current.hash === recordedHash.trim()) return { state: "current", hash: current.hash };
  const recordedText = annotations[ANNOTATION_INTERCEPTION_POLICY];
  const diff =
    recordedText === undefined
      ? [`(recorded policy text ${ANNOTATION_INTERCEPTION_POLICY} is missing)`]
      : formatPolicyDiff(diffPolicyText(recordedText, current.text));
  return {
    state: "stale",
    recordedHash: recordedHash.trim(),
    currentHash: current.hash,
    diff: diff.length > 0 ? diff : ["(same entries, different hash: recorded by another version)"],
  };
}

/** The value of the `osm-ts.io/interception-stale` annotation for a verdict; undefined removes it. */
export function staleAnnotationValue(verdict: PodStaleness | undefined): string | undefined {
  return verdict?.state === "stale" ? verdict.diff.join(" ") : undefined;
}

/**
 * The command that recreates a stale pod so it gets the current interception policy (interception is
 * programmed once, at pod start). Pure.
 */

/** Who owns the pod, as far as restarting it goes. */
export interface PodOwner {
  readonly kind: string;
  readonly name: string;
}

/**
 * The command that recreates a pod so it gets the current policy: `kubectl rollout restart` of its
 * Deployment (pod → ReplicaSet `<deployment>-<pod-template-hash>`), DaemonSet or StatefulSet; a bare pod
 * has to be deleted and created again.
 */
export function restartCommand(
  namespace: string,
  podName: string,
  owner: PodOwner | undefined,
  podTemplateHash: string | undefined,
): string {
  if (owner?.kind === "ReplicaSet" && podTemplateHash && owner.name.endsWith(`-${podTemplateHash}`)) {
    const deployment = owner.name.slice(0, -(podTemplateHash.length + 1));
    return `kubectl rollout restart deployment ${deployment} -n ${namespace}`;
  }
  if (owner?.kind === "DaemonSet" || owner?.kind === "StatefulSet") {
    return `kubectl rollout restart ${owner.kind.toLowerCase()} ${owner.name} -n ${namespace}`;
  }
  return `kubectl delete pod ${podName} -n ${namespace}   # then create it again`;
}

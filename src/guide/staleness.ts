/**
 * The staleness view of one pod, pure: the interception policy recorded on the pod at admission (by the
 * injector) against the policy the current MeshConfig and annotations would give it now. Interception is
 * programmed once, at pod start (docs/osm-behaviour.md §5.2), so a difference means the pod must be recreated.
 */

/** The fields of canonicalPolicyText (config/policy.ts), and how a difference in each is shown. */
const LIST_FIELDS: readonly { readonly path: readonly string[]; readonly label: string }[] = [
  { path: ["outboundIPRangeExclusions", "v4"], label: "" },
  { path: ["outboundIPRangeExclusions", "v6"], label: "" },
  { path: ["outboundIPRangeInclusions", "v4"], label: "include " },
  { path: ["outboundIPRangeInclusions", "v6"], label: "include " },
  { path: ["outboundPortExclusions"], label: "outbound-port " },
  { path: ["inboundPortExclusions"], label: "inbound-port " },
  { path: ["networkInterfaceExclusions"], label: "interface " },
];

function at(value: unknown, path: readonly string[]): unknown {
  let node = value;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function asEntries(value: unknown): string[] {
  return Array.isArray(value) ? value.map((v) => String(v)) : [];
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * What recreating the pod would change, recorded → current: `-` entries it loses, then `+` entries it gains
 * (`+203.0.113.10/32`; other lists are named: `+include 10.0.0.0/8`, `+outbound-port 8080`), and
 * `localProxyMode PodIP (was Localhost)`, `non-TCP egress dropped (was allowed)`. Empty when the two policies
 * intercept the same traffic.
 */
export function diffPolicies(recordedText: string, currentText: string): string[] {
  const recorded = parse(recordedText);
  const current = parse(currentText);
  if (recorded === undefined || current === undefined) {
    return recordedText === currentText ? [] : ["(the recorded policy is not in a format this osm reads)"];
  }
  const removed: string[] = [];
  const added: string[] = [];
  for (const field of LIST_FIELDS) {
    const before = asEntries(at(recorded, field.path));
    const after = asEntries(at(current, field.path));
    for (const entry of before) if (!after.includes(entry)) removed.push(`-${field.label}${entry}`);
    for (const entry of after) if (!before.includes(entry)) added.push(`+${field.label}${entry}`);
  }
  const lines = [...removed, ...added];
  const modeBefore = at(recorded, ["localProxyMode"]);
  const modeAfter = at(current, ["localProxyMode"]);
  if (modeBefore !== modeAfter) lines.push(`localProxyMode ${String(modeAfter)} (was ${String(modeBefore)})`);
  const dropBefore = at(recorded, ["nonTcpEgress"]) === "drop";
  const dropAfter = at(current, ["nonTcpEgress"]) === "drop";
  if (dropBefore !== dropAfter) {
    lines.push(dropAfter ? "non-TCP egress dropped (was allowed)" : "non-TCP egress allowed (was dropped)");
  }
  return lines;
}

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

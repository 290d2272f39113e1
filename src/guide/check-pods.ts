/**
 * `osm policy check-pods SOURCE_POD DESTINATION_POD` (OSM's cmd/cli/policy_check_pods.go): may the source
 * pod send traffic to the destination pod, by permissive mode or by an SMI TrafficTarget, in OSM's words.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { DEFAULT_OSM_NAMESPACE, ENVOY_UNIQUE_ID_LABEL_NAME } from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { allowingTrafficTargets, podIdentity } from "../smi/access.ts";
import type { TrafficTarget } from "../smi/schema.ts";
import { listTrafficTargets } from "./explain-pod-run.ts";
import { readMeshConfig } from "./proxy-status.ts";

/** `<namespace>/<pod>`, or `<pod>` in `default`, as OSM's unmarshalNamespacedPod. */
export function parseNamespacedPod(
  text: string,
  role: "source" | "destination",
): { namespace: string; name: string } {
  const chunks = text.split("/");
  if (text === "" || chunks.length > 2 || chunks.some((c) => c === "")) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `Invalid argument specified for the ${role} pod [${text}]: Pod name should be of the form <namespace/pod>, or <pod> for default namespace, got: ${text}`,
    );
  }
  return chunks.length === 1
    ? { namespace: "default", name: chunks[0]! }
    : { namespace: chunks[0]!, name: chunks[1]! };
}

/** OSM's answer for two meshed pods (pure). */
export function formatCheckPods(input: {
  readonly osmNamespace: string;
  readonly permissive: boolean;
  readonly source: V1Pod;
  readonly destination: V1Pod;
  readonly trafficTargets: readonly TrafficTarget[];
}): string {
  const ref = (pod: V1Pod) => `'${pod.metadata?.namespace}/${pod.metadata?.name}'`;
  const src = ref(input.source);
  const dst = ref(input.destination);
  if (input.permissive) {
    return `[+] Permissive mode enabled for mesh operated by osm-controller running in '${input.osmNamespace}' namespace\n\n [+] Pod ${src} is allowed to communicate to pod ${dst}\n`;
  }
  const lines = [
    `[+] SMI traffic policy mode enabled for mesh operated by osm-controller running in ${input.osmNamespace} namespace\n`,
  ];
  // OSM lists the destination namespace's TrafficTargets only: a valid one always lives there.
  const allowing = allowingTrafficTargets(
    input.trafficTargets.filter((t) => t.metadata.namespace === input.destination.metadata?.namespace),
    podIdentity(input.source),
    podIdentity(input.destination),
  );
  for (const target of allowing) {
    lines.push(
      `[+] Pod ${src} is allowed to communicate to pod ${dst} via the SMI TrafficTarget policy "${target.metadata.name}" in namespace ${target.metadata.namespace}`,
    );
  }
  if (allowing.length === 0) {
    lines.push(
      `[+] Pod ${src} is not allowed to communicate to pod ${dst}, missing SMI TrafficTarget policy`,
    );
  }
  return `${lines.join("\n")}\n`;
}

async function meshedPod(core: CoreV1Api, namespace: string, name: string): Promise<V1Pod> {
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ namespace, name });
  } catch (cause) {
    throw new MeshError(ErrorCode.NotFound, `Could not find pod ${name} in namespace ${namespace}`, {
      cause,
    });
  }
  if (pod.metadata?.labels?.[ENVOY_UNIQUE_ID_LABEL_NAME] === undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `Pod ${name} in namespace ${namespace} is not a part of a mesh`,
    );
  }
  return pod;
}

/** Reads both pods, the MeshConfig and the TrafficTargets, and answers. */
export async function checkPods(
  kc: KubeConfig,
  options: { readonly source: string; readonly destination: string; readonly osmNamespace?: string },
): Promise<string> {
  const src = parseNamespacedPod(options.source, "source");
  const dst = parseNamespacedPod(options.destination, "destination");
  const core = kc.makeApiClient(CoreV1Api);
  const source = await meshedPod(core, src.namespace, src.name);
  const destination = await meshedPod(core, dst.namespace, dst.name);
  const osmNamespace = options.osmNamespace ?? DEFAULT_OSM_NAMESPACE;
  const meshConfig = await readMeshConfig(kc, osmNamespace);
  const permissive = meshConfig.spec.traffic.enablePermissiveTrafficPolicyMode;
  const trafficTargets = permissive ? [] : await listTrafficTargets(kc);
  return formatCheckPods({ osmNamespace, permissive, source, destination, trafficTargets });
}

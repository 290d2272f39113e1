/**
 * `osm explain pod/DST -n NS --from SRC_NS/SRC_POD IP:PORT`, the I/O part: reads both pods, the MeshConfig,
 * and (permissive mode off) the mesh's Services, Endpoints, pods and SMI objects through the Kubernetes API,
 * computes the destination's inbound rules as the controller does, and asks explain-inbound.ts.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { SidecarInboundAccess } from "../config/sidecar-api.ts";
import { hasSidecarToken } from "../config/sidecar-token.ts";
import { DEFAULT_OSM_NAMESPACE, LABEL_MONITORED_BY } from "../constants.ts";
import { createAccessPolicy, sourcePods } from "../controller/access-policy.ts";
import { buildMeshEndpoints } from "../controller/mesh-endpoints.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { tryParseIp } from "../net/ip.ts";
import { podIdentity } from "../smi/access.ts";
import type { HttpRequestFacts } from "../smi/http-match.ts";
import type { HttpRouteGroup } from "../smi/http-route-group.ts";
import type { TCPRoute, TrafficTarget } from "../smi/schema.ts";
import { HTTP_ROUTE_GROUP, TCP_ROUTE, TRAFFIC_TARGET } from "../smi/validate.ts";
import { parseNamespacedPod } from "./check-pods.ts";
import { explainInbound, formatInboundExplanation, type InboundExplainInput } from "./explain-inbound.ts";
import { listPolicyObjects } from "./policy-objects.ts";
import { readMeshConfig } from "./proxy-status.ts";

export interface ExplainInboundOptions {
  readonly namespace: string;
  readonly pod: string;
  /** The source pod, `<namespace>/<pod>` (or `<pod>` in default), as `osm policy check-pods` takes it. */
  readonly from: string;
  /** `IP:PORT` (an address of the destination pod) or `PORT`. */
  readonly destination: string;
  readonly osmNamespace?: string;
  readonly request?: HttpRequestFacts;
}

async function readPod(core: CoreV1Api, namespace: string, name: string): Promise<V1Pod> {
  try {
    return await core.readNamespacedPod({ namespace, name });
  } catch (error) {
    throw new MeshError(ErrorCode.NotFound, apiErrorMessage(error), { cause: error });
  }
}

function podAddresses(pod: V1Pod): string[] {
  return (pod.status?.podIPs?.map((p) => p.ip) ?? [pod.status?.podIP]).filter(
    (ip): ip is string => ip !== undefined && ip !== "",
  );
}

/** `IP:PORT` or `PORT` → the destination pod's address and port; the address must be the pod's. */
export function parseInboundDestination(
  text: string,
  pod: V1Pod,
): { ip: string; port: number; family: 4 | 6 } {
  const addresses = podAddresses(pod);
  const split = /^(?:\[?([^\]]*)\]?:)?(\d+)$/.exec(text);
  const port = Number(split?.[2]);
  if (split === null || port < 1 || port > 65535) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `destination ${JSON.stringify(text)} is not IP:PORT or PORT`,
      {
        hint: "write the destination pod's IP:PORT, or its PORT alone",
      },
    );
  }
  const given = split[1];
  const parsed = tryParseIp(given ?? addresses[0] ?? "");
  if (!parsed.ok) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      given === undefined
        ? `pod ${pod.metadata?.namespace}/${pod.metadata?.name} has no address yet`
        : `destination ${JSON.stringify(text)} has an invalid address: ${parsed.reason}`,
    );
  }
  const ip = parsed.value.toString();
  const canonical = (a: string) => {
    const p = tryParseIp(a);
    return p.ok ? p.value.toString() : a;
  };
  if (!addresses.some((a) => canonical(a) === ip)) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `${ip} is not an address of pod ${pod.metadata?.namespace}/${pod.metadata?.name} (${addresses.join(", ") || "none"})`,
      { hint: "an inbound explanation is about a connection arriving at the pod itself" },
    );
  }
  return { ip, port, family: ip.includes(":") ? 6 : 4 };
}

/** The destination's inbound rules, as the controller computes them for its service account. */
async function inboundAccessOf(kc: KubeConfig, destination: V1Pod): Promise<SidecarInboundAccess> {
  const core = kc.makeApiClient(CoreV1Api);
  const meshName = (await core.readNamespace({ name: destination.metadata?.namespace ?? "default" })).metadata
    ?.labels?.[LABEL_MONITORED_BY];
  const [namespaces, services, endpoints, pods] = await Promise.all([
    core.listNamespace(),
    core.listServiceForAllNamespaces(),
    core.listEndpointsForAllNamespaces(),
    core.listPodForAllNamespaces(),
  ]);
  const inventory = {
    namespaces: namespaces.items,
    services: services.items,
    endpoints: endpoints.items,
    pods: pods.items,
  };
  const policy = createAccessPolicy({
    trafficTargets: (await listPolicyObjects(kc, TRAFFIC_TARGET)) as TrafficTarget[],
    tcpRoutes: (await listPolicyObjects(kc, TCP_ROUTE)) as TCPRoute[],
    httpRouteGroups: (await listPolicyObjects(kc, HTTP_ROUTE_GROUP)) as HttpRouteGroup[],
    services: services.items,
    meshEndpoints: meshName === undefined ? [] : buildMeshEndpoints(inventory, meshName),
    pods: pods.items,
    sourcePods: sourcePods(pods.items),
  });
  return policy(podIdentity(destination)).inboundAccess;
}

export async function explainInboundPod(kc: KubeConfig, options: ExplainInboundOptions): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const destination = await readPod(core, options.namespace, options.pod);
  const from = parseNamespacedPod(options.from, "source");
  const source = await readPod(core, from.namespace, from.name);
  const at = parseInboundDestination(options.destination, destination);
  const meshConfig = await readMeshConfig(kc, options.osmNamespace ?? DEFAULT_OSM_NAMESPACE);
  const access = meshConfig.spec.traffic.enablePermissiveTrafficPolicyMode
    ? undefined
    : await inboundAccessOf(kc, destination);
  // The source address the destination sees: the source pod's in the destination's family.
  const sourceIp = podAddresses(source).find((ip) => ip.includes(":") === (at.family === 6));
  const input: InboundExplainInput = {
    source: {
      pod: `${from.namespace}/${from.name}`,
      serviceAccount: podIdentity(source),
      ip: sourceIp,
      meshed: hasSidecarToken(source),
    },
    destination: {
      pod: `${options.namespace}/${options.pod}`,
      serviceAccount: podIdentity(destination),
      ...at,
    },
    access,
    ...(options.request === undefined ? {} : { request: options.request }),
  };
  return formatInboundExplanation(input, explainInbound(input));
}

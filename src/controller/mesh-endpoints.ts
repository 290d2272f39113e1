/**
 * Which destinations are "in the mesh": pure function of the namespaces, services, endpoints and pods the
 * informers hold. The sidecar proxies connections to these and treats everything else as egress.
 */
import type { V1Endpoints, V1Namespace, V1Pod, V1Service, V1ServicePort } from "@kubernetes/client-node";
import type { SidecarBackend, SidecarMeshEndpoint } from "../config/sidecar-api.ts";
import { LABEL_IGNORE, LABEL_MONITORED_BY } from "../constants.ts";
import { tryParseIp } from "../net/ip.ts";

export interface MeshInventory {
  readonly namespaces: readonly V1Namespace[];
  readonly services: readonly V1Service[];
  readonly endpoints: readonly V1Endpoints[];
  readonly pods: readonly V1Pod[];
}

/**
 * A namespace is in the mesh when labelled `openservicemesh.io/monitored-by=<meshName>` and not
 * `openservicemesh.io/ignore=true` (OSM: pkg/k8s/client.go IsMonitoredNamespace + the ignore label).
 */
export function isMonitoredNamespace(namespace: V1Namespace, meshName: string): boolean {
  const labels = namespace.metadata?.labels ?? {};
  return labels[LABEL_MONITORED_BY] === meshName && labels[LABEL_IGNORE] !== "true";
}

/** Names of the namespaces in the mesh, as a set. */
export function monitoredNamespaceNames(namespaces: readonly V1Namespace[], meshName: string): Set<string> {
  const names = new Set<string>();
  for (const ns of namespaces) {
    const name = ns.metadata?.name;
    if (name && isMonitoredNamespace(ns, meshName)) names.add(name);
  }
  return names;
}

function canonicalIp(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const parsed = tryParseIp(text);
  return parsed.ok ? parsed.value.toString() : undefined;
}

function isTcp(port: { protocol?: string }): boolean {
  return (port.protocol ?? "TCP") === "TCP";
}

/** The protocols OSM recognises as a Service port name's `<protocol>-` prefix (SupportedProtocolsInMesh). */
const NAMED_PROTOCOLS = ["tcp-server-first", "http", "tcp", "grpc"];

/**
 * A Service port's application protocol as OSM decides it (pkg/compute/kube serviceToMeshServices):
 * `appProtocol`, else the port name's `<protocol>-` prefix, else `http` for a TCP port (OSM's default).
 */
export function servicePortProtocol(port: V1ServicePort): string | undefined {
  if (port.appProtocol !== undefined) return port.appProtocol;
  const named = NAMED_PROTOCOLS.find((p) => (port.name ?? "").startsWith(`${p}-`));
  if (named !== undefined) return named;
  return isTcp(port) ? "http" : undefined;
}

/** A pod's addresses, canonical, without duplicates. */
export function podIps(pod: V1Pod): string[] {
  const given = pod.status?.podIPs?.map((p) => p.ip) ?? [pod.status?.podIP];
  const out: string[] = [];
  for (const ip of given) {
    const canonical = canonicalIp(ip);
    if (canonical && !out.includes(canonical)) out.push(canonical);
  }
  return out;
}

/** Running, not terminating, and Ready when it reports conditions (as the endpoints controller decides). */
function isServing(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp !== undefined || pod.status?.phase !== "Running") return false;
  const ready = pod.status.conditions?.find((c) => c.type === "Ready");
  return ready === undefined || ready.status === "True";
}

function selects(selector: readonly (readonly [string, string])[], pod: V1Pod): boolean {
  const labels = pod.metadata?.labels ?? {};
  for (const [key, value] of selector) if (labels[key] !== value) return false;
  return true;
}

/** The pod port a service port targets: a number, or a named container port of that pod. */
function resolveTargetPort(servicePort: V1ServicePort, pod: V1Pod): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === "number") return target;
  const asNumber = Number(target);
  if (Number.isInteger(asNumber) && asNumber > 0) return asNumber;
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (port.name === target && isTcp(port)) return port.containerPort;
    }
  }
  return undefined;
}

/**
 * Backends of one service port. From the Endpoints object when there is one (a real cluster's endpoints
 * controller wrote it); otherwise derived from the pods the selector matches, the same way, because the
 * embedded runtime has no endpoints controller.
 */
function backendsFor(
  service: V1Service,
  servicePort: V1ServicePort,
  endpoints: V1Endpoints | undefined,
  namespacePods: readonly V1Pod[],
): SidecarBackend[] {
  const out: SidecarBackend[] = [];
  const push = (ip: string | undefined, port: number | undefined): void => {
    const canonical = canonicalIp(ip);
    if (!canonical || port === undefined || port < 1 || port > 65535) return;
    if (!out.some((b) => b.ip === canonical && b.port === port)) out.push({ ip: canonical, port });
  };
  if (endpoints) {
    for (const subset of endpoints.subsets ?? []) {
      // Endpoints name their ports after the service ports; a single unnamed port matches any.
      const ports = (subset.ports ?? []).filter(
        (p) => isTcp(p) && (p.name ?? "") === (servicePort.name ?? ""),
      );
      for (const address of subset.addresses ?? []) {
        for (const port of ports) push(address.ip, port.port);
      }
    }
    return out;
  }
  const selector = Object.entries(service.spec?.selector ?? {});
  if (selector.length === 0) return out;
  for (const pod of namespacePods) {
    if (!selects(selector, pod)) continue;
    const port = resolveTargetPort(servicePort, pod);
    for (const ip of podIps(pod)) push(ip, port);
  }
  return out;
}

function compareEndpoints(a: SidecarMeshEndpoint, b: SidecarMeshEndpoint): number {
  return (
    a.service.localeCompare(b.service) ||
    a.ip.localeCompare(b.ip) ||
    a.port - b.port ||
    JSON.stringify(a.backends).localeCompare(JSON.stringify(b.backends))
  );
}

/**
 * The mesh's destinations, deterministic (sorted, deduplicated) so equal inventories give equal documents:
 * - each TCP port of each Service in a monitored namespace, on each of its ClusterIPs, with its backends;
 * - each backend pod IP:targetPort directly (headless services are dialled this way, and so is a mesh pod
 *   addressed by IP), with no backends (the dialled address is the backend).
 * ExternalName services have no IP and are left out.
 */
export function buildMeshEndpoints(inventory: MeshInventory, meshName: string): SidecarMeshEndpoint[] {
  const monitored = monitoredNamespaceNames(inventory.namespaces, meshName);
  const podsByNamespace = new Map<string, V1Pod[]>();
  for (const pod of inventory.pods) {
    const ns = pod.metadata?.namespace ?? "";
    // Only serving pods can be backends; filtering once here keeps the per-service loop cheap.
    if (!monitored.has(ns) || !isServing(pod)) continue;
    const list = podsByNamespace.get(ns) ?? [];
    list.push(pod);
    podsByNamespace.set(ns, list);
  }
  const endpointsByKey = new Map<string, V1Endpoints>();
  for (const ep of inventory.endpoints) {
    endpointsByKey.set(`${ep.metadata?.namespace}/${ep.metadata?.name}`, ep);
  }

  const result = new Map<string, SidecarMeshEndpoint>();
  const add = (entry: SidecarMeshEndpoint): void => {
    const key = `${entry.ip}|${entry.port}`;
    const existing = result.get(key);
    // Two services may share a pod IP:port; keep the first name in sorted order, so output is stable.
    if (!existing || compareEndpoints(entry, existing) < 0) result.set(key, entry);
  };
  for (const service of inventory.services) {
    const ns = service.metadata?.namespace ?? "";
    const name = service.metadata?.name ?? "";
    if (!monitored.has(ns) || !name || service.spec?.type === "ExternalName") continue;
    const serviceName = `${ns}/${name}`;
    const clusterIps = (service.spec?.clusterIPs ?? [service.spec?.clusterIP])
      .map((ip) => (ip === "None" ? undefined : canonicalIp(ip)))
      .filter((ip): ip is string => ip !== undefined);
    for (const servicePort of service.spec?.ports ?? []) {
      if (!isTcp(servicePort)) continue;
      const backends = backendsFor(
        service,
        servicePort,
        endpointsByKey.get(serviceName),
        podsByNamespace.get(ns) ?? [],
      );
      for (const ip of clusterIps) add({ service: serviceName, ip, port: servicePort.port, backends });
      for (const backend of backends) {
        add({ service: serviceName, ip: backend.ip, port: backend.port, backends: [] });
      }
    }
  }
  return [...result.values()].sort(compareEndpoints);
}

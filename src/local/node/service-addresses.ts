/**
 * ClusterIP reachability without kube-proxy and without NAT (pure): which local pod holds each Service's
 * ClusterIP as an extra /32 on its `eth0`. Pods route the Service range on-link over the
 * bridge, so the holder answers ARP for the ClusterIP and receives the connection itself: nothing is
 * translated or forwarded. Hence the limits: one endpoint per Service (the first ready one, kept while it
 * stays ready: no load balancing), and only when every Service port equals the port it targets (no port
 * mapping). Meshed clients do not need this: their sidecar maps ClusterIP:port to the endpoints itself.
 */
import type { V1Endpoints, V1Service } from "@kubernetes/client-node";

const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/**
 * ClusterIP → uid of the local pod that should hold it. `isLocal(uid)` says whether a pod runs on this node;
 * `current` (the holders now) keeps a holder while it stays a candidate, so a Service does not hop between
 * pods.
 */
export function planServiceAddresses(
  services: readonly V1Service[],
  endpoints: readonly V1Endpoints[],
  isLocal: (uid: string) => boolean,
  current: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const byKey = new Map(endpoints.map((e) => [`${e.metadata?.namespace}/${e.metadata?.name}`, e]));
  const plan = new Map<string, string>();
  for (const svc of services) {
    const ip = svc.spec?.clusterIP ?? "";
    if (!IPV4.test(ip) || svc.spec?.type === "ExternalName") continue;
    const ports = svc.spec?.ports ?? [];
    if (ports.length === 0) continue;
    const ep = byKey.get(`${svc.metadata?.namespace}/${svc.metadata?.name}`);
    const candidates: string[] = [];
    for (const subset of ep?.subsets ?? []) {
      // Every Service port must reach the same port number on the pod (a port mapping needs NAT).
      const samePorts = ports.every((p) => {
        const target = (subset.ports ?? []).find((sp) => (sp.name ?? "") === (p.name ?? ""));
        return target !== undefined && target.port === p.port;
      });
      if (!samePorts) continue;
      for (const a of subset.addresses ?? []) {
        const uid = a.targetRef?.uid;
        if (uid && isLocal(uid)) candidates.push(uid);
      }
    }
    if (candidates.length === 0) continue;
    const held = current.get(ip);
    plan.set(
      ip,
      held !== undefined && candidates.includes(held) ? held : ([...candidates].sort()[0] as string),
    );
  }
  return plan;
}

/**
 * Endpoints from ready pods: for each Service with a selector, the pods it selects that have an IP become
 * `addresses` (ready) or `notReadyAddresses`, with the Service's ports (named target ports resolved
 * against each pod's container ports). Removed with the Service.
 */
import type { Logger } from "pino";
import { type Api, internalContext, jsonEqual } from "../apiserver/api.ts";
import { labelSelectorRequirements, matchesLabels } from "../apiserver/selectors.ts";
import { WorkQueue } from "./queue.ts";
import { isPodReady, type Obj, typeOf } from "./util.ts";

export function startEndpointsController(api: Api, logger: Logger): () => void {
  const epType = typeOf(api, "", "endpoints");
  const log = logger.child({ controller: "endpoints" });

  const reconcile = async (key: string): Promise<void> => {
    const [ns = "", name = ""] = key.split("/");
    const svc = api.store.get("/services", ns, name) as Obj | undefined;
    const existing = api.find(epType, ns, name) as Obj | undefined;
    if (!svc) {
      if (existing?.metadata.labels?.["osmt-api/managed"] === "true")
        await api.delete(epType, ns, name, {}, internalContext()).catch(() => undefined);
      return;
    }
    if (!svc.spec?.selector || Object.keys(svc.spec.selector).length === 0) return;
    const requirements = labelSelectorRequirements({ matchLabels: svc.spec.selector });
    const pods = api.store
      .list("/pods", ns)
      .filter((p) => matchesLabels(requirements, p.metadata.labels as Record<string, string> | undefined))
      .filter((p) => !(p.metadata as Obj).deletionTimestamp && (p as Obj).status?.podIP) as Obj[];
    const groups = new Map<string, { addresses: Obj[]; notReadyAddresses: Obj[]; ports: Obj[] }>();
    for (const pod of pods) {
      const ports = (svc.spec.ports ?? [])
        .map((sp: Obj) => {
          let port = sp.targetPort ?? sp.port;
          if (typeof port === "string") {
            const found = (pod.spec?.containers ?? [])
              .flatMap((c: Obj) => c.ports ?? [])
              .find((cp: Obj) => cp.name === port);
            port = found?.containerPort;
          }
          return { ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? "TCP" };
        })
        .filter((p: Obj) => typeof p.port === "number");
      const k = JSON.stringify(ports);
      const g: { addresses: Obj[]; notReadyAddresses: Obj[]; ports: Obj[] } = groups.get(k) ?? {
        addresses: [],
        notReadyAddresses: [],
        ports,
      };
      const address = {
        ip: pod.status.podIP,
        nodeName: pod.spec?.nodeName,
        targetRef: { kind: "Pod", namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid },
      };
      if (isPodReady(pod as never)) g.addresses.push(address);
      else g.notReadyAddresses.push(address);
      groups.set(k, g);
    }
    const subsets = [...groups.values()].map((g) => ({
      ...(g.addresses.length ? { addresses: g.addresses } : {}),
      ...(g.notReadyAddresses.length ? { notReadyAddresses: g.notReadyAddresses } : {}),
      ports: g.ports,
    }));
    if (existing) {
      if (jsonEqual(existing.subsets ?? [], subsets)) return;
      await api.mutate(
        epType,
        ns,
        name,
        (c) => {
          const u = { ...c, subsets } as Obj;
          if (subsets.length === 0) delete u.subsets;
          return u;
        },
        internalContext(),
      );
    } else {
      const ep: Obj = {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: {
          name,
          namespace: ns,
          labels: { ...(svc.metadata.labels ?? {}), "osmt-api/managed": "true" },
        },
      };
      if (subsets.length) ep.subsets = subsets;
      await api.create(epType, ns, ep, internalContext());
    }
  };

  const queue = new WorkQueue("endpoints", reconcile, log);
  const unsubscribe = api.store.subscribe((event) => {
    if (event.groupResource === "/services") queue.add(`${event.namespace}/${event.object.metadata.name}`);
    else if (event.groupResource === "/pods") {
      for (const svc of api.store.list("/services", event.namespace))
        queue.add(`${event.namespace}/${svc.metadata.name}`);
    }
  });
  for (const svc of api.store.list("/services")) queue.add(`${svc.metadata.namespace}/${svc.metadata.name}`);
  return () => {
    unsubscribe();
    queue.stop();
  };
}

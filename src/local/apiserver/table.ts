/**
 * Server-side printing: `meta.k8s.io/v1 Table` for `kubectl get` (docs/kubectl-api.md §5). kubectl computes none of the pod
 * columns itself, so READY/STATUS/RESTARTS follow kubectl's own printer (pkg/printers/internalversion).
 */
import type { KubeObject } from "../store/store.ts";
import type { ResourceType } from "./resources.ts";
import { formatLabels } from "./selectors.ts";

export interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object: Record<string, unknown>;
}

export interface Table {
  kind: "Table";
  apiVersion: "meta.k8s.io/v1";
  metadata: { resourceVersion?: string };
  columnDefinitions: Column[];
  rows: TableRow[];
}

import type { Obj } from "./json.ts";

function col(name: string, priority = 0, type = "string", format = ""): Column {
  return { name, type, format, description: "", priority };
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    return d === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(o: Obj, now: number): string {
  const ts = o.metadata?.creationTimestamp;
  return ts ? humanDuration(now - Date.parse(ts)) : "<unknown>";
}

/** READY, STATUS, RESTARTS of a pod, as kubectl's printPod computes them. */
export function podColumns(pod: Obj, now: number): { ready: string; status: string; restarts: string } {
  const spec = pod.spec ?? {};
  const status = pod.status ?? {};
  const total = (spec.containers ?? []).length;
  let readyCount = 0;
  let restarts = 0;
  let lastRestart: number | undefined;
  let reason: string = status.reason || status.phase || "Pending";
  const noteRestart = (cs: Obj) => {
    restarts += cs.restartCount ?? 0;
    const finished = cs.lastState?.terminated?.finishedAt;
    if (finished) lastRestart = Math.max(lastRestart ?? 0, Date.parse(finished));
  };
  let initializing = false;
  const inits: Obj[] = status.initContainerStatuses ?? [];
  for (let i = 0; i < inits.length; i++) {
    const cs = inits[i] ?? {};
    noteRestart(cs);
    const term = cs.state?.terminated;
    const wait = cs.state?.waiting;
    if (term && term.exitCode === 0) continue;
    if (cs.started && cs.ready) continue; // a running sidecar-style init container
    if (term) {
      reason = term.reason
        ? `Init:${term.reason}`
        : term.signal
          ? `Init:Signal:${term.signal}`
          : `Init:ExitCode:${term.exitCode}`;
    } else if (wait?.reason && wait.reason !== "PodInitializing") {
      reason = `Init:${wait.reason}`;
    } else {
      reason = `Init:${i}/${(spec.initContainers ?? []).length}`;
    }
    initializing = true;
    break;
  }
  if (!initializing) {
    restarts = 0;
    lastRestart = undefined;
    let hasRunning = false;
    const statuses: Obj[] = status.containerStatuses ?? [];
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i] ?? {};
      noteRestart(cs);
      const wait = cs.state?.waiting;
      const term = cs.state?.terminated;
      if (wait?.reason) reason = wait.reason;
      else if (term?.reason) reason = term.reason;
      else if (term) reason = term.signal ? `Signal:${term.signal}` : `ExitCode:${term.exitCode}`;
      else if (cs.ready && cs.state?.running) {
        hasRunning = true;
        readyCount++;
      }
    }
    if (reason === "Completed" && hasRunning) {
      const ready = (status.conditions ?? []).some((c: Obj) => c.type === "Ready" && c.status === "True");
      reason = ready ? "Running" : "NotReady";
    }
  }
  if (pod.metadata?.deletionTimestamp) reason = "Terminating";
  const restartText =
    lastRestart !== undefined && restarts > 0
      ? `${restarts} (${humanDuration(now - lastRestart)} ago)`
      : String(restarts);
  return { ready: `${readyCount}/${total}`, status: reason, restarts: restartText };
}

/** The wide columns kubectl ends a pod-template workload's row with (Deployment, ReplicaSet). */
const WORKLOAD_WIDE_COLUMNS = [col("Containers", 1), col("Images", 1), col("Selector", 1)];

function workloadWideCells(o: Obj): string[] {
  const cs: Obj[] = o.spec?.template?.spec?.containers ?? [];
  return [
    cs.map((c) => c.name).join(","),
    cs.map((c) => c.image).join(","),
    formatLabels(o.spec?.selector?.matchLabels),
  ];
}

function servicePorts(svc: Obj): string {
  const ports: Obj[] = svc.spec?.ports ?? [];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`).join(",");
}

function endpointsText(ep: Obj): string {
  const out: string[] = [];
  for (const subset of ep.subsets ?? []) {
    for (const a of subset.addresses ?? []) {
      const ports: Obj[] = subset.ports ?? [];
      if (ports.length === 0) out.push(a.ip);
      for (const p of ports) out.push(`${a.ip}:${p.port}`);
    }
  }
  if (out.length === 0) return "<none>";
  return out.length > 3 ? `${out.slice(0, 3).join(",")} + ${out.length - 3} more...` : out.join(",");
}

interface Printer {
  columns: Column[];
  cells(o: Obj, now: number): unknown[];
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    columns: [
      col("Name", 0, "string", "name"),
      col("Ready"),
      col("Status"),
      col("Restarts"),
      col("Age"),
      col("IP", 1),
      col("Node", 1),
      col("Nominated Node", 1),
      col("Readiness Gates", 1),
    ],
    cells(o, now) {
      const { ready, status, restarts } = podColumns(o, now);
      return [
        o.metadata.name,
        ready,
        status,
        restarts,
        age(o, now),
        o.status?.podIP ?? "<none>",
        o.spec?.nodeName ?? "<none>",
        "<none>",
        "<none>",
      ];
    },
  },
  Deployment: {
    columns: [
      col("Name", 0, "string", "name"),
      col("Ready"),
      col("Up-to-date", 0, "integer"),
      col("Available", 0, "integer"),
      col("Age"),
      ...WORKLOAD_WIDE_COLUMNS,
    ],
    cells(o, now) {
      const s = o.status ?? {};
      return [
        o.metadata.name,
        `${s.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`,
        s.updatedReplicas ?? 0,
        s.availableReplicas ?? 0,
        age(o, now),
        ...workloadWideCells(o),
      ];
    },
  },
  ReplicaSet: {
    columns: [
      col("Name", 0, "string", "name"),
      col("Desired", 0, "integer"),
      col("Current", 0, "integer"),
      col("Ready", 0, "integer"),
      col("Age"),
      ...WORKLOAD_WIDE_COLUMNS,
    ],
    cells(o, now) {
      const s = o.status ?? {};
      return [
        o.metadata.name,
        o.spec?.replicas ?? 1,
        s.replicas ?? 0,
        s.readyReplicas ?? 0,
        age(o, now),
        ...workloadWideCells(o),
      ];
    },
  },
  Service: {
    columns: [
      col("Name", 0, "string", "name"),
      col("Type"),
      col("Cluster-IP"),
      col("External-IP"),
      col("Port(s)"),
      col("Age"),
      col("Selector", 1),
    ],
    cells(o, now) {
      const ext =
        (o.spec?.externalIPs ?? []).join(",") ||
        (o.spec?.type === "ExternalName" ? o.spec.externalName : "<none>");
      return [
        o.metadata.name,
        o.spec?.type ?? "ClusterIP",
        o.spec?.clusterIP ?? "<none>",
        ext,
        servicePorts(o),
        age(o, now),
        formatLabels(o.spec?.selector) || "<none>",
      ];
    },
  },
  Endpoints: {
    columns: [col("Name", 0, "string", "name"), col("Endpoints"), col("Age")],
    cells: (o, now) => [o.metadata.name, endpointsText(o), age(o, now)],
  },
  Node: {
    columns: [
      col("Name", 0, "string", "name"),
      col("Status"),
      col("Roles"),
      col("Age"),
      col("Version"),
      col("Internal-IP", 1),
      col("OS-Image", 1),
    ],
    cells(o, now) {
      const ready = (o.status?.conditions ?? []).find((c: Obj) => c.type === "Ready");
      const roles = Object.keys(o.metadata?.labels ?? {})
        .filter((l) => l.startsWith("node-role.kubernetes.io/"))
        .map((l) => l.slice("node-role.kubernetes.io/".length));
      const ip = (o.status?.addresses ?? []).find((a: Obj) => a.type === "InternalIP")?.address ?? "<none>";
      return [
        o.metadata.name,
        ready?.status === "True" ? "Ready" : "NotReady",
        roles.join(",") || "<none>",
        age(o, now),
        o.status?.nodeInfo?.kubeletVersion ?? "",
        ip,
        o.status?.nodeInfo?.osImage ?? "",
      ];
    },
  },
  Namespace: {
    columns: [col("Name", 0, "string", "name"), col("Status"), col("Age")],
    cells: (o, now) => [o.metadata.name, o.status?.phase ?? "Active", age(o, now)],
  },
  ServiceAccount: {
    columns: [col("Name", 0, "string", "name"), col("Secrets", 0, "integer"), col("Age")],
    cells: (o, now) => [o.metadata.name, (o.secrets ?? []).length, age(o, now)],
  },
  ConfigMap: {
    columns: [col("Name", 0, "string", "name"), col("Data", 0, "integer"), col("Age")],
    cells: (o, now) => [
      o.metadata.name,
      Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length,
      age(o, now),
    ],
  },
  Secret: {
    columns: [col("Name", 0, "string", "name"), col("Type"), col("Data", 0, "integer"), col("Age")],
    cells: (o, now) => [o.metadata.name, o.type ?? "Opaque", Object.keys(o.data ?? {}).length, age(o, now)],
  },
  Event: {
    columns: [col("Last Seen"), col("Type"), col("Reason"), col("Object"), col("Message")],
    cells(o, now) {
      const last = o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp;
      const inv = o.involvedObject ?? {};
      return [
        last ? humanDuration(now - Date.parse(last)) : "<unknown>",
        o.type ?? "",
        o.reason ?? "",
        `${String(inv.kind ?? "").toLowerCase()}/${inv.name ?? ""}`,
        o.message ?? "",
      ];
    },
  },
  CustomResourceDefinition: {
    columns: [col("Name", 0, "string", "name"), col("Created At", 0, "date")],
    cells: (o) => [o.metadata.name, o.metadata?.creationTimestamp ?? ""],
  },
  MutatingWebhookConfiguration: {
    columns: [col("Name", 0, "string", "name"), col("Webhooks", 0, "integer"), col("Age")],
    cells: (o, now) => [o.metadata.name, (o.webhooks ?? []).length, age(o, now)],
  },
  ValidatingWebhookConfiguration: {
    columns: [col("Name", 0, "string", "name"), col("Webhooks", 0, "integer"), col("Age")],
    cells: (o, now) => [o.metadata.name, (o.webhooks ?? []).length, age(o, now)],
  },
};

/** A tiny JSONPath subset for CRD printer columns: `.a.b`, `.a[0].b`. */
function simpleJsonPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const part of path
    .replace(/^\./, "")
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== "")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = Array.isArray(cur) ? cur[Number(part)] : (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function printerFor(type: ResourceType): Printer {
  const builtin = PRINTERS[type.kind];
  if (builtin && !type.crd) return builtin;
  const extra = type.crd?.printerColumns ?? [];
  return {
    columns: [
      col("Name", 0, "string", "name"),
      ...extra.map((c) => col(c.name, c.priority ?? 0, c.type === "date" ? "string" : c.type)),
      col("Age"),
    ],
    cells(o, now) {
      const values = extra.map((c) => {
        const v = simpleJsonPath(o, c.jsonPath);
        if (c.type === "date" && typeof v === "string") return humanDuration(now - Date.parse(v));
        if (v === undefined || v === null) return "";
        return typeof v === "object" ? JSON.stringify(v) : v;
      });
      return [o.metadata.name, ...values, age(o, now)];
    },
  };
}

function partialMetadata(o: Obj): Record<string, unknown> {
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

/** Renders objects as a Table; `includeObject=None` leaves `rows[].object` out. */
export function buildTable(
  type: ResourceType,
  objects: readonly KubeObject[],
  resourceVersion: string | undefined,
  now: number,
  includeObject: string | undefined,
  withColumns = true,
): Table {
  const printer = printerFor(type);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: resourceVersion === undefined ? {} : { resourceVersion },
    columnDefinitions: withColumns ? printer.columns : [],
    rows: objects.map((o) => {
      const row: TableRow = { cells: printer.cells(o as Obj, now), object: {} };
      if (includeObject === "Object") row.object = o;
      else if (includeObject === "None") delete (row as Partial<TableRow>).object;
      else row.object = partialMetadata(o as Obj);
      return row;
    }),
  };
}

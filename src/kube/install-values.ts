/**
 * `osm install --set key=value`: OSM's Helm value names where OSM has one (`osm.enableEgress`,
 * `osm.outboundIPRangeExclusionList={a,b}`, ...), plus a few osm-ts ones. Pure: values in, a typed
 * InstallValues out, or a MeshError naming the key and the value as given. Helm syntax: `a=1,b=2` in one
 * --set, `{x,y}` for lists.
 */
import { DEFAULT_MESH_NAME, DEFAULT_OSM_NAMESPACE } from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { InitBackend } from "../injector/index.ts";

export interface InstallValues {
  meshName: string;
  osmNamespace: string;
  image: { registry: string; tag: string; pullPolicy: "Always" | "IfNotPresent" | "Never" };
  /** Full image references; default `<registry>/<name>:<tag>`. */
  controllerImage?: string;
  sidecarImage?: string;
  sidecarWindowsImage?: string;
  initContainerImage?: string;
  /** The osm-node DaemonSet's image; default `<registry>/osm-node:<tag>`. */
  nodeAgentImage?: string;
  /** argv prefix that runs the osm CLI in every container (the embedded node agent resolves it on PATH). */
  osmCommand: string[];
  /** The sidecars' config source; default `http://osm-controller.<ns>.svc.cluster.local:15128`. */
  controllerUrl?: string;
  interceptionBackend: InitBackend;
  /** Strict egress for every meshed pod unless its namespace or pod says otherwise (`osm-ts.io/egress-strict`). */
  egressStrict: boolean;
  /**
   * Exclusion changes reach running pods in place (the MeshConfig annotation
   * `osm-ts.io/live-interception-updates: "true"`); off: OSM's behaviour, pods are reported STALE.
   */
  liveInterceptionUpdates: boolean;
  /**
   * The osm-node DaemonSet (`osm.nodeAgent.enabled`): the node agent that applies live interception updates
   * on a cluster. Off by default: on the embedded engine the built-in node agent does it.
   */
  nodeAgent: boolean;
  /** Log level of the controller and the injector. */
  osmLogLevel: string;
  /**
   * `--kubeconfig` for the controller and the injector. Unset on a cluster (in-cluster config); on the
   * embedded default, where commands run on the host, it names the host file the control plane reads.
   */
  kubeconfig?: string;
  /** MeshConfig spec fields set with --set (merged over the preset). */
  meshConfigSpec: { traffic: Record<string, unknown>; sidecar: Record<string, unknown> };
}

export function defaultInstallValues(version: string): InstallValues {
  return {
    meshName: DEFAULT_MESH_NAME,
    osmNamespace: DEFAULT_OSM_NAMESPACE,
    image: { registry: "openservicemesh-ts", tag: `v${version}`, pullPolicy: "IfNotPresent" },
    osmCommand: ["osm"],
    interceptionBackend: "auto",
    egressStrict: false,
    liveInterceptionUpdates: false,
    nodeAgent: false,
    osmLogLevel: "info",
    meshConfigSpec: { traffic: {}, sidecar: {} },
  };
}

type Kind = "bool" | "int" | "string" | "stringList" | "intList";
type Apply = (v: InstallValues, value: unknown) => void;

function spec(section: "traffic" | "sidecar", field: string): Apply {
  return (v, value) => {
    v.meshConfigSpec[section][field] = value;
  };
}

/** Sets a top-level value; `kind` and `oneOf` have checked `value` already. */
function top<K extends keyof InstallValues>(field: K): Apply {
  return (v, value) => {
    v[field] = value as InstallValues[K];
  };
}

function image<K extends keyof InstallValues["image"]>(field: K): Apply {
  return (v, value) => {
    v.image[field] = value as InstallValues["image"][K];
  };
}

const PULL_POLICIES = ["Always", "IfNotPresent", "Never"];
const BACKENDS = ["auto", "iptables", "nftables"];

/** Every key `--set` accepts: its type and where it goes. */
export const SET_KEYS: Readonly<Record<string, { kind: Kind; apply: Apply; oneOf?: readonly string[] }>> = {
  "osm.enableEgress": { kind: "bool", apply: spec("traffic", "enableEgress") },
  "osm.enablePermissiveTrafficPolicy": {
    kind: "bool",
    apply: spec("traffic", "enablePermissiveTrafficPolicyMode"),
  },
  "osm.outboundIPRangeExclusionList": {
    kind: "stringList",
    apply: spec("traffic", "outboundIPRangeExclusionList"),
  },
  "osm.outboundIPRangeInclusionList": {
    kind: "stringList",
    apply: spec("traffic", "outboundIPRangeInclusionList"),
  },
  "osm.outboundPortExclusionList": { kind: "intList", apply: spec("traffic", "outboundPortExclusionList") },
  "osm.inboundPortExclusionList": { kind: "intList", apply: spec("traffic", "inboundPortExclusionList") },
  "osm.networkInterfaceExclusionList": {
    kind: "stringList",
    apply: spec("traffic", "networkInterfaceExclusionList"),
  },
  "osm.enablePrivilegedInitContainer": {
    kind: "bool",
    apply: spec("sidecar", "enablePrivilegedInitContainer"),
  },
  "osm.envoyLogLevel": { kind: "string", apply: spec("sidecar", "logLevel") },
  "osm.localProxyMode": { kind: "string", apply: spec("sidecar", "localProxyMode") },
  "osm.maxDataPlaneConnections": { kind: "int", apply: spec("sidecar", "maxDataPlaneConnections") },
  "osm.configResyncInterval": { kind: "string", apply: spec("sidecar", "configResyncInterval") },
  "osm.osmLogLevel": {
    kind: "string",
    apply: top("osmLogLevel"),
    oneOf: ["trace", "debug", "info", "warn", "error", "fatal"],
  },
  "osm.image.registry": { kind: "string", apply: image("registry") },
  "osm.image.tag": { kind: "string", apply: image("tag") },
  "osm.image.pullPolicy": {
    kind: "string",
    apply: image("pullPolicy"),
    oneOf: PULL_POLICIES,
  },
  "osm.sidecarImage": { kind: "string", apply: top("sidecarImage") },
  "osm.sidecarWindowsImage": { kind: "string", apply: top("sidecarWindowsImage") },
  "osm.initContainerImage": { kind: "string", apply: top("initContainerImage") },
  "osm.controllerImage": { kind: "string", apply: top("controllerImage") },
  "osm.nodeAgentImage": { kind: "string", apply: top("nodeAgentImage") },
  "osm.nodeAgent.enabled": { kind: "bool", apply: top("nodeAgent") },
  "osm.osmCommand": { kind: "stringList", apply: top("osmCommand") },
  "osm.kubeconfig": { kind: "string", apply: top("kubeconfig") },
  "osm.controllerUrl": { kind: "string", apply: top("controllerUrl") },
  "osm.interceptionBackend": {
    kind: "string",
    apply: top("interceptionBackend"),
    oneOf: BACKENDS,
  },
  "osm.egressStrict": { kind: "bool", apply: top("egressStrict") },
  "osm.liveInterceptionUpdates": { kind: "bool", apply: top("liveInterceptionUpdates") },
};

/** Splits one --set argument on top-level commas (commas inside `{...}` belong to a list). */
export function splitSetArgument(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "{") depth++;
    if (ch === "}") depth = Math.max(0, depth - 1);
    if (ch === "," && depth === 0) {
      out.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  out.push(current);
  return out;
}

function invalid(key: string, raw: string, reason: string, hint?: string): MeshError {
  return new MeshError(ErrorCode.InvalidArgument, `--set ${key}=${raw}: ${reason}`, hint ? { hint } : {});
}

function listItems(raw: string): string[] {
  const inner = raw.startsWith("{") && raw.endsWith("}") ? raw.slice(1, -1) : raw;
  if (inner.trim() === "") return [];
  return inner.split(",").map((s) => s.trim());
}

function parseInt10(key: string, raw: string, item: string): number {
  if (!/^[+-]?\d+$/.test(item)) throw invalid(key, raw, `${JSON.stringify(item)} is not an integer`);
  return Number(item);
}

function convert(key: string, raw: string, kind: Kind): unknown {
  switch (kind) {
    case "bool":
      if (raw === "true") return true;
      if (raw === "false") return false;
      throw invalid(key, raw, "is not true or false");
    case "int":
      return parseInt10(key, raw, raw);
    case "string":
      if (raw === "") throw invalid(key, raw, "is empty");
      return raw;
    case "stringList":
      return listItems(raw);
    case "intList":
      return listItems(raw).map((item) => parseInt10(key, raw, item));
  }
}

/** Applies every --set argument, in order (a later value wins, as in Helm). */
export function applySetValues(values: InstallValues, sets: readonly string[]): InstallValues {
  const v = structuredClone(values);
  for (const arg of sets) {
    for (const pair of splitSetArgument(arg)) {
      const eq = pair.indexOf("=");
      if (eq <= 0) {
        throw new MeshError(ErrorCode.InvalidArgument, `--set ${JSON.stringify(pair)} is not key=value`, {
          hint: "e.g. --set osm.enableEgress=false or --set osm.outboundIPRangeExclusionList={203.0.113.10/32}",
        });
      }
      const key = pair.slice(0, eq).trim();
      const raw = pair.slice(eq + 1).trim();
      const entry = SET_KEYS[key];
      if (!entry) {
        throw new MeshError(ErrorCode.InvalidArgument, `--set ${key}: unknown key`, {
          hint: `known keys: ${Object.keys(SET_KEYS).join(", ")}`,
        });
      }
      const value = convert(key, raw, entry.kind);
      if (entry.oneOf && !entry.oneOf.includes(value as string)) {
        throw invalid(key, raw, `is not one of ${entry.oneOf.join(", ")}`);
      }
      entry.apply(v, value);
    }
  }
  return v;
}

/**
 * The sidecar config watch API: the one contract between the controller (which serves it) and the sidecar
 * (which watches it), and the format of `osm sidecar run --config FILE`. Versioned by `apiVersion`; a change
 * that old sidecars cannot read gets a new version string, never a silent reinterpretation.
 *
 * Transport (HTTP/JSON long-poll):
 *   GET <control-plane>/sidecar/v1/config?pod=<ns>/<name>&sinceVersion=<n>&timeoutSeconds=<s>
 *   - 200 + a SidecarConfig body as soon as the config for that pod has `version > sinceVersion`
 *     (immediately when `sinceVersion` is absent);
 *   - 204 when `timeoutSeconds` pass without a newer version (the client asks again at once);
 *   - any other status or a network error: the client keeps its last good config and retries with
 *     exponential backoff and jitter.
 */
import { checkEgressSection, checkHttpMatch } from "../egress/sidecar-section.ts";
import type { SidecarEgressPolicy, SidecarHttpMatch } from "../egress/types.ts";
import { tryParseIp } from "../net/ip.ts";

/** The `apiVersion` every document of this API carries. */
export const SIDECAR_API_VERSION = "osm.sidecar/v1";
/** The long-poll path the controller serves. */
export const SIDECAR_CONFIG_PATH = "/sidecar/v1/config";
/** How long the controller may hold a long-poll before answering 204 (the client's default ask). */
export const SIDECAR_LONG_POLL_SECONDS = 30;

/** Where the sidecar forwards a mesh connection: one backend (a pod IP and its target port). */
export interface SidecarBackend {
  ip: string;
  port: number;
}

/**
 * One mesh destination: an address the app dials (a Service ClusterIP, or a pod IP for headless services)
 * and port. A connection to it is proxied: to `backends` (round robin) when given, else to the dialled
 * address itself (headless: the pod IP is the backend).
 */
export interface SidecarMeshEndpoint {
  /** `<namespace>/<service>`: names the upstream in logs and metrics. */
  service: string;
  ip: string;
  port: number;
  backends: SidecarBackend[];
  /**
   * With permissive mode off: the TrafficTarget (`<namespace>/<name>`) that lets this pod's service account
   * reach the service (the first in name order when several do). Absent in permissive mode.
   */
  allowedBy?: string;
}

/** A source a TrafficTarget lets in: a meshed pod's address, and the pod (`<namespace>/<name>`). */
export interface SidecarInboundSource {
  ip: string;
  pod: string;
}

/**
 * One TrafficTarget as the destination's inbound side applies it: connections from `sources` to `ports` are
 * allowed. Sources are pod addresses the controller resolved from the TrafficTarget's service accounts (there
 * is no mTLS identity yet to read them from the connection).
 */
export interface SidecarInboundRule {
  /** `<namespace>/<name>`. */
  trafficTarget: string;
  /** The pod ports its TCPRoutes list; absent: every port (a TrafficTarget with HTTPRouteGroup rules only). */
  ports?: number[];
  sources: SidecarInboundSource[];
  /**
   * The HTTP routes of its HTTPRouteGroup rules (absent: it has none), applied to requests on `httpPorts`
   * (src/sidecar/inbound-http.ts).
   */
  httpMatches?: SidecarHttpMatch[];
}

/** The inbound access rules of a pod's service account (permissive mode off). */
export interface SidecarInboundAccess {
  rules: SidecarInboundRule[];
  /**
   * The pod ports whose Service port's protocol is HTTP (OSM's: `appProtocol`, else the port name's
   * `<protocol>-` prefix, else http). Requests to them are routed by the rules' `httpMatches` when any rule
   * has some; connections to other ports are decided once, by source and port.
   */
  httpPorts?: number[];
}

/** A validated config: IPs canonical, defaults filled. */
export interface SidecarConfig {
  apiVersion: typeof SIDECAR_API_VERSION;
  /** Monotonically increasing per pod; the sidecar ignores a document whose version is not newer. */
  version: number;
  /** MeshConfig `spec.traffic.enableEgress`: non-mesh destinations pass through (true) or are refused (false). */
  enableEgress: boolean;
  /** MeshConfig `spec.sidecar.maxDataPlaneConnections`; 0 means no limit (OSM's default). */
  maxDataPlaneConnections: number;
  meshEndpoints: SidecarMeshEndpoint[];
  /**
   * Inbound access control, present when MeshConfig `enablePermissiveTrafficPolicyMode` is false: a connection
   * to this pod is let in only when a rule allows its source address and port. Absent: permissive, every
   * inbound connection is let in.
   */
  inboundAccess?: SidecarInboundAccess;
  /** The pod's Egress rules (src/egress), present while `enableEgress` is false. */
  egress?: SidecarEgressPolicy;
}

/** What a controller may send (defaults optional). */
export type SidecarConfigInput = Omit<SidecarConfig, "maxDataPlaneConnections" | "meshEndpoints"> & {
  maxDataPlaneConnections?: number;
  meshEndpoints?: Array<Omit<SidecarMeshEndpoint, "backends"> & { backends?: SidecarBackend[] }>;
};

/** One problem with a config document: the field path as `meshEndpoints[0].ip`, and why. */
export interface SidecarConfigProblem {
  readonly path: string;
  /** The value as given at that path (undefined when missing). */
  readonly value: unknown;
  readonly message: string;
}

export type SidecarConfigParse =
  | { readonly ok: true; readonly config: SidecarConfig }
  | { readonly ok: false; readonly problems: readonly SidecarConfigProblem[] };

const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** `<namespace>/<name>` of an object (names may hold dots). */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * The document's checks, by hand rather than with a schema library: this runs in every sidecar, where zod
 * alone cost ~19 MB of RSS per pod (bench/README.md). Each check records a problem with its field path and
 * returns undefined, so one pass reports everything that is wrong.
 */
export class Checker {
  readonly problems: SidecarConfigProblem[] = [];

  problem(path: string, value: unknown, message: string): undefined {
    this.problems.push({ path, value, message });
    return undefined;
  }

  /** A plain object with no other keys than `keys` (a field this version does not know is an error). */
  object(path: string, value: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.problem(path || "<document>", value, "must be an object");
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) {
        this.problem(join(path, key), record[key], `is not a field of ${SIDECAR_API_VERSION}`);
      }
    }
    return record;
  }

  integer(path: string, value: unknown, min: number, max: number): number | undefined {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      return this.problem(path, value, `must be an integer ${range}`);
    }
    return value;
  }

  port(path: string, value: unknown): number | undefined {
    return this.integer(path, value, 1, 65535);
  }

  /** An IP address, v4 or v6, rewritten to canonical text (`2001:DB8::0:1` and `2001:db8::1` compare equal). */
  ip(path: string, value: unknown): string | undefined {
    if (typeof value !== "string") return this.problem(path, value, "must be an IP address (a string)");
    const parsed = tryParseIp(value.trim());
    if (!parsed.ok) return this.problem(path, value, `is not a valid IP address: ${parsed.reason}`);
    return parsed.value.toString();
  }

  /** An array, `[]` when absent; `item` checks each element at its index. */
  list<T>(path: string, value: unknown, item: (path: string, value: unknown) => T | undefined): T[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) return this.problem(path, value, "must be an array") ?? [];
    const out: T[] = [];
    value.forEach((element, index) => {
      const checked = item(`${path}[${index}]`, element);
      if (checked !== undefined) out.push(checked);
    });
    return out;
  }
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function backend(check: Checker, path: string, value: unknown): SidecarBackend | undefined {
  const record = check.object(path, value, ["ip", "port"]);
  if (record === undefined) return undefined;
  const ip = check.ip(join(path, "ip"), record["ip"]);
  const port = check.port(join(path, "port"), record["port"]);
  return ip === undefined || port === undefined ? undefined : { ip, port };
}

function objectName(check: Checker, path: string, value: unknown): string | undefined {
  if (typeof value === "string" && OBJECT_NAME.test(value)) return value;
  return check.problem(path, value, "must be <namespace>/<name>");
}

function meshEndpoint(check: Checker, path: string, value: unknown): SidecarMeshEndpoint | undefined {
  const record = check.object(path, value, ["service", "ip", "port", "backends", "allowedBy"]);
  if (record === undefined) return undefined;
  const service = record["service"];
  if (typeof service !== "string" || !SERVICE_NAME.test(service)) {
    check.problem(join(path, "service"), service, "must be <namespace>/<service>, each a DNS-1123 label");
  }
  const ip = check.ip(join(path, "ip"), record["ip"]);
  const port = check.port(join(path, "port"), record["port"]);
  const backends = check.list(join(path, "backends"), record["backends"], (p, v) => backend(check, p, v));
  const allowedBy =
    record["allowedBy"] === undefined
      ? undefined
      : objectName(check, join(path, "allowedBy"), record["allowedBy"]);
  if (typeof service !== "string" || ip === undefined || port === undefined) return undefined;
  return { service, ip, port, backends, ...(allowedBy === undefined ? {} : { allowedBy }) };
}

function inboundSource(check: Checker, path: string, value: unknown): SidecarInboundSource | undefined {
  const record = check.object(path, value, ["ip", "pod"]);
  if (record === undefined) return undefined;
  const ip = check.ip(join(path, "ip"), record["ip"]);
  const pod = objectName(check, join(path, "pod"), record["pod"]);
  return ip === undefined || pod === undefined ? undefined : { ip, pod };
}

function inboundRule(check: Checker, path: string, value: unknown): SidecarInboundRule | undefined {
  const record = check.object(path, value, ["trafficTarget", "ports", "sources", "httpMatches"]);
  if (record === undefined) return undefined;
  const trafficTarget = objectName(check, join(path, "trafficTarget"), record["trafficTarget"]);
  const ports =
    record["ports"] === undefined
      ? undefined
      : check.list(join(path, "ports"), record["ports"], (p, v) => check.port(p, v));
  const sources = check.list(join(path, "sources"), record["sources"], (p, v) => inboundSource(check, p, v));
  const httpMatches =
    record["httpMatches"] === undefined
      ? undefined
      : check.list(join(path, "httpMatches"), record["httpMatches"], (p, v) => checkHttpMatch(check, p, v));
  if (trafficTarget === undefined) return undefined;
  return {
    trafficTarget,
    ...(ports === undefined ? {} : { ports }),
    sources,
    ...(httpMatches === undefined ? {} : { httpMatches }),
  };
}

function inboundAccess(check: Checker, value: unknown): SidecarInboundAccess | undefined {
  const record = check.object("inboundAccess", value, ["rules", "httpPorts"]);
  if (record === undefined) return undefined;
  const rules = check.list("inboundAccess.rules", record["rules"], (p, v) => inboundRule(check, p, v));
  if (record["httpPorts"] === undefined) return { rules };
  return {
    rules,
    httpPorts: check.list("inboundAccess.httpPorts", record["httpPorts"], (p, v) => check.port(p, v)),
  };
}

/** Validates an untrusted document (parsed JSON) against the current API version; never throws. */
export function parseSidecarConfig(document: unknown): SidecarConfigParse {
  const check = new Checker();
  const record = check.object("", document, [
    "apiVersion",
    "version",
    "enableEgress",
    "maxDataPlaneConnections",
    "meshEndpoints",
    "inboundAccess",
    "egress",
  ]);
  if (record === undefined) return { ok: false, problems: check.problems };
  if (record["apiVersion"] !== SIDECAR_API_VERSION) {
    check.problem("apiVersion", record["apiVersion"], `must be "${SIDECAR_API_VERSION}"`);
  }
  const version = check.integer("version", record["version"], 0, Number.MAX_SAFE_INTEGER);
  const enableEgress = record["enableEgress"];
  if (typeof enableEgress !== "boolean") check.problem("enableEgress", enableEgress, "must be true or false");
  const maxDataPlaneConnections =
    record["maxDataPlaneConnections"] === undefined
      ? 0
      : check.integer(
          "maxDataPlaneConnections",
          record["maxDataPlaneConnections"],
          0,
          Number.MAX_SAFE_INTEGER,
        );
  const meshEndpoints = check.list("meshEndpoints", record["meshEndpoints"], (p, v) =>
    meshEndpoint(check, p, v),
  );
  const access =
    record["inboundAccess"] === undefined ? undefined : inboundAccess(check, record["inboundAccess"]);
  const egress =
    record["egress"] === undefined ? undefined : checkEgressSection(check, "egress", record["egress"]);
  if (check.problems.length > 0) return { ok: false, problems: check.problems };
  return {
    ok: true,
    config: {
      apiVersion: SIDECAR_API_VERSION,
      version: version!,
      enableEgress: enableEgress as boolean,
      maxDataPlaneConnections: maxDataPlaneConnections!,
      meshEndpoints,
      ...(access === undefined ? {} : { inboundAccess: access }),
      ...(egress === undefined ? {} : { egress }),
    },
  };
}

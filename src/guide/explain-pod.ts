/**
 * `osm explain pod/NAME -n NS IP:PORT`, the pure part: which policy the pod actually runs with (the one
 * recorded at its admission; the current one only if they agree), and the words for the verdict of
 * interception's `explain` plus the sidecar's live egress decision.
 */
import { describeProvenance } from "../config/index.ts";
import { SIDECAR_API_VERSION } from "../config/sidecar-api.ts";
import { ANNOTATION_EGRESS_STRICT, ENVOY_OUTBOUND_LISTENER_PORT, ENVOY_UID } from "../constants.ts";
import { decideTls, type EgressTable, hostRefusal, type PortRule, rulesForHost } from "../egress/decide.ts";
import { decideHttpRequest, describeHttpMatch } from "../egress/http-request.ts";
import type { SidecarEgressPolicy } from "../egress/types.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { describeDecidingRule, type ExplainProtocol, type Explanation } from "../interception/index.ts";
import { formatHostPort, splitHostPort, tryParseIp } from "../net/index.ts";
import type { IpAddress } from "../net/types.ts";
import { buildRoutingTable, type Decision, decideOutbound } from "../sidecar/decide.ts";

export interface Destination {
  readonly ip: IpAddress;
  /** As the user wrote the address (for messages). */
  readonly text: string;
  readonly port: number;
}

/** Parses `203.0.113.10:80` or `[2001:db8::10]:80`. Throws InvalidArgument naming the value. */
export function parseDestination(arg: string): Destination {
  const bad = (reason: string) =>
    new MeshError(ErrorCode.InvalidArgument, `destination ${JSON.stringify(arg)} ${reason}`, {
      hint: "write IP:PORT, e.g. 203.0.113.10:80 or [2001:db8::10]:80",
    });
  const split = splitHostPort(arg);
  if (!split || split.host === "") throw bad("is not IP:PORT");
  const parsed = tryParseIp(split.host);
  if (!parsed.ok) throw bad(`has an invalid address: ${parsed.reason}`);
  if (split.port < 1 || split.port > 65535) throw bad("has a port outside 1-65535");
  return { ip: parsed.value, text: split.host, port: split.port };
}

/** What the sidecar does with a connection it receives, under the live MeshConfig. */
export type SidecarOutcome =
  | { readonly kind: "mesh"; readonly service: string; readonly trafficTarget?: string }
  /**
   * `egress`: the Egress policy that allows it while egress is disabled. An http Egress with HTTPRouteGroup
   * matches: `httpMatch`, the match that holds for the request asked about (`--path`, `--method`), or
   * `httpMatches`, those a request must satisfy when none was asked about.
   */
  | {
      readonly kind: "passthrough";
      readonly egress?: string;
      readonly httpMatch?: string;
      readonly httpMatches?: readonly string[];
    }
  /** An http Egress admits the Host, none of its HTTPRouteGroup matches holds for `request`: 404. */
  | {
      readonly kind: "not-found";
      readonly egress: string;
      readonly request: string;
      readonly httpMatches: readonly string[];
    }
  /** `detail`: what no Egress allows (`no Egress for service account curl allows 203.0.113.11:80`). */
  | { readonly kind: "refused"; readonly detail?: string };

/**
 * With egress disabled: the pod's Egress rules, the host name its client would send (`--host`), and the http
 * request asked about (`--method`, `--path`).
 */
export interface EgressContext {
  readonly policy: SidecarEgressPolicy;
  readonly host?: string;
  readonly request?: { readonly method?: string; readonly path?: string };
}

/**
 * SMI access control for a mesh destination with permissive mode off: the TrafficTarget that lets the pod's
 * service account reach it, or none (then the destination is no upstream of this pod's sidecar).
 */
export interface MeshAccess {
  /** `Service <ns>/<name>:<port>` or `pod <ns>/<name>`, as found. */
  readonly meshService: string;
  /** The pod's service account, `<namespace>/<name>`. */
  readonly source: string;
  /** The service accounts the destination runs as. */
  readonly destinations: readonly string[];
  /** `<namespace>/<name>` of the first TrafficTarget (by name) that allows it; undefined: none does. */
  readonly trafficTarget: string | undefined;
}

/** Where a redirected connection arrives: the sidecar's outbound listener. */
const OUTBOUND_LISTENER = { address: "127.0.0.1", port: ENVOY_OUTBOUND_LISTENER_PORT };

/**
 * The sidecar's own decision (`decideOutbound`) for a connection to `destination`, over the live
 * `enableEgress` and the mesh destination found at that address (`meshService`, when there is one).
 */
export function sidecarOutcome(
  destination: Destination,
  meshService: string | undefined,
  enableEgress: boolean,
  access?: MeshAccess,
  egress?: EgressContext,
): SidecarOutcome {
  const original = { address: destination.ip.toString(), port: destination.port };
  // With access control on, a mesh destination no TrafficTarget allows is no upstream of this sidecar.
  const upstream = access === undefined || access.trafficTarget !== undefined ? meshService : undefined;
  const allowedBy = access?.trafficTarget === undefined ? {} : { allowedBy: access.trafficTarget };
  const meshEndpoints =
    upstream === undefined
      ? []
      : [{ service: upstream, ip: original.address, port: original.port, backends: [], ...allowedBy }];
  const table = buildRoutingTable({
    apiVersion: SIDECAR_API_VERSION,
    version: 0,
    enableEgress,
    maxDataPlaneConnections: 0,
    meshEndpoints,
    ...(egress === undefined ? {} : { egress: egress.policy }),
  });
  const decision = decideOutbound(table, original, OUTBOUND_LISTENER, 0);
  if (decision.kind === "inspect") return inspectedOutcome(table.egress!, decision, egress);
  if (decision.kind === "mesh") {
    const named = decision.trafficTarget === undefined ? {} : { trafficTarget: decision.trafficTarget };
    return { kind: "mesh", service: decision.service, ...named };
  }
  if (decision.kind === "passthrough") {
    return decision.egress === undefined
      ? { kind: "passthrough" }
      : { kind: "passthrough", egress: decision.egress };
  }
  return decision.kind === "refuse" && decision.detail !== undefined
    ? { kind: "refused", detail: decision.detail }
    : { kind: "refused" };
}

/**
 * An http/https Egress port: the sidecar decides on the TLS server name or the Host header, which `--host`
 * stands for, then, for http, on each request (`--method`, `--path`) when the Egress names HTTPRouteGroups.
 */
function inspectedOutcome(
  table: EgressTable,
  decision: Extract<Decision, { kind: "inspect" }>,
  egress: EgressContext | undefined,
): SidecarOutcome {
  const { upstream } = decision;
  const host = egress?.host;
  if (host === undefined) {
    const rules = [...decision.tls, ...decision.http];
    return {
      kind: "refused",
      detail: `it depends on the TLS server name or Host header: Egress ${[...new Set(rules.map((r) => r.egress))].join(", ")} allow listed hosts on this port (pass --host NAME)`,
    };
  }
  if (decision.tls.length > 0) {
    const tls = decideTls(table, decision.tls, host, upstream);
    if (tls.kind === "allow") return { kind: "passthrough", egress: tls.egress };
  }
  const http = rulesForHost(decision.http, host, upstream.port);
  if (http.length > 0) return httpOutcome(http, host, egress?.request);
  return { kind: "refused", detail: hostRefusal(table, host, upstream) };
}

/** The rules admitting the Host; with HTTPRouteGroup matches, the request decides, as in the sidecar. */
function httpOutcome(
  rules: readonly PortRule[],
  host: string,
  request: EgressContext["request"],
): SidecarOutcome {
  const anyRequest = rules.find((r) => r.rule.httpMatches === undefined);
  const httpMatches = rules.flatMap((r) => r.rule.httpMatches ?? []).map(describeHttpMatch);
  if (request === undefined) {
    return anyRequest !== undefined
      ? { kind: "passthrough", egress: anyRequest.egress }
      : { kind: "passthrough", egress: rules[0]!.egress, httpMatches };
  }
  const method = request.method ?? "GET";
  const path = request.path ?? "/";
  const verdict = decideHttpRequest(rules, { method, path, headers: { host } });
  if (verdict.kind === "not-found") {
    return { kind: "not-found", egress: verdict.egress, request: `${method} ${path}`, httpMatches };
  }
  return verdict.match === undefined
    ? { kind: "passthrough", egress: verdict.egress }
    : { kind: "passthrough", egress: verdict.egress, httpMatch: describeHttpMatch(verdict.match) };
}

export interface PodExplainReport {
  readonly namespace: string;
  readonly pod: string;
  readonly destination: Destination;
  /** tcp unless asked otherwise (udp, icmp: the egress filter). */
  readonly protocol?: ExplainProtocol;
  readonly explanation: Explanation;
  readonly outcome: SidecarOutcome;
  /** Permissive traffic policy mode off and the destination is in the mesh: what access control says. */
  readonly access?: MeshAccess;
  /** With egress disabled: how the pod's containers can still send as the proxy uid (empty: they cannot). */
  readonly proxyUidPaths: readonly string[];
  /** `+203.0.113.10/32` ... when the pod runs an older policy than the current one; empty when current. */
  readonly staleDiff: readonly string[];
  readonly restart: string | undefined;
  /**
   * When the node agent last brought the pod's rules to its recorded policy live (`osm-ts.io/interception-updated-live`);
   * absent: the record is the admission's, programmed by osm-init when the pod started.
   */
  readonly updatedLiveAt?: string;
  /** What reading the rules in the pod's network namespace found. */
  readonly kernel:
    | {
        readonly checked: true;
        readonly netns: string;
        readonly variant: string;
        readonly differences: readonly string[];
      }
    | { readonly checked: false; readonly reason: string };
}

/** The warning for containers that can send as the proxy uid, whose traffic the rules let out untouched. */
export function proxyUidLines(paths: readonly string[]): string[] {
  if (paths.length === 0) return [];
  return [
    `WARNING: egress is disabled, but a process that switches to uid ${ENVOY_UID} (the sidecar's) goes out directly, unchecked:`,
    ...paths.map((p) => `  ${p}`),
    `  close it: annotate the pod or its namespace ${ANNOTATION_EGRESS_STRICT}: enabled (drops CAP_SETUID/CAP_SETGID) and restart the pod`,
  ];
}

/** The report as printed: verdict first, then the rule, the provenance, the kernel check and any warning. */
export function formatPodExplanation(r: PodExplainReport): string {
  const dest = formatHostPort(r.destination.text, r.destination.port);
  const protocol = r.protocol ?? "tcp";
  const lines = [`pod ${r.namespace}/${r.pod} → ${dest} (${protocol}, outbound)`];
  const e = r.explanation;
  if (e.verdict === "dropped") {
    lines.push(
      `verdict: dropped: egress is disabled, and ${protocol} leaves the pod only to excluded destinations (and DNS to its resolvers)`,
    );
    lines.push(
      "  to reach it, add it to spec.traffic.outboundIPRangeExclusionList (then restart the pod), or enable egress",
    );
  } else if (e.verdict === "outbound-sidecar") {
    const head = `verdict: outbound sidecar (redirected to port ${e.port ?? ENVOY_OUTBOUND_LISTENER_PORT})`;
    const access = r.access;
    if (r.outcome.kind === "mesh") {
      const by = r.outcome.trafficTarget === undefined ? "" : `, by TrafficTarget ${r.outcome.trafficTarget}`;
      lines.push(`${head} → allowed: mesh destination ${r.outcome.service}${by}`);
    } else if (access !== undefined) {
      const none = `no TrafficTarget lets service account ${access.source} reach ${access.meshService} (${access.destinations.join(", ") || "no service account"}); permissive traffic policy mode is off`;
      if (r.outcome.kind === "passthrough") {
        lines.push(`${head} → passed through as egress: ${none}`);
        lines.push("  the destination's sidecar refuses it unless a TrafficTarget allows this source");
      } else {
        lines.push(`${head} → refused: ${none}, and egress is disabled`);
      }
      lines.push(
        `  to allow it, create a TrafficTarget in namespace ${access.destinations[0]?.split("/")[0] ?? "<destination>"} with destination ${access.destinations[0] ?? "<service account>"} and source ${access.source}`,
      );
    } else if (r.outcome.kind === "not-found") {
      lines.push(
        `${head} → answered 404 by the sidecar: Egress ${r.outcome.egress} allows the host, but none of its HTTPRouteGroup matches holds for ${r.outcome.request}`,
      );
      lines.push(`  matches: ${r.outcome.httpMatches.join("; ")}`);
    } else if (r.outcome.kind === "passthrough" && r.outcome.egress !== undefined) {
      lines.push(`${head} → allowed: Egress ${r.outcome.egress} allows it (egress is disabled)`);
      if (r.outcome.httpMatch !== undefined) lines.push(`  by HTTPRouteGroup match ${r.outcome.httpMatch}`);
      if (r.outcome.httpMatches !== undefined) {
        lines.push(
          `  for requests matching ${r.outcome.httpMatches.join("; ")}; others are answered 404 (check one with --path, --method)`,
        );
      }
    } else if (r.outcome.kind === "passthrough") {
      lines.push(`${head} → allowed: egress is enabled, passed through to ${dest}`);
    } else if (r.outcome.detail !== undefined) {
      lines.push(`${head} → refused: egress is disabled and ${r.outcome.detail}`);
      lines.push(
        "  to allow it, create an Egress (policy.openservicemesh.io/v1alpha1) naming the pod's service account",
      );
    } else {
      lines.push(
        `${head} → refused: egress is disabled (spec.traffic.enableEgress: false) and ${dest} is not a mesh destination`,
      );
      lines.push(
        `  to reach it, add it to spec.traffic.outboundIPRangeExclusionList (then restart the pod), or enable egress`,
      );
    }
  } else if (e.verdict === "dnat-pod-ip") {
    lines.push("verdict: redirected to the pod's own IP (localProxyMode PodIP)");
  } else if (e.verdict === "inbound-sidecar") {
    lines.push(`verdict: inbound sidecar (port ${e.port})`);
  } else {
    lines.push(
      `verdict: direct (not intercepted): the connection goes straight to ${dest}, the sidecar never sees it`,
    );
  }
  lines.push(...proxyUidLines(r.proxyUidPaths));
  lines.push(`deciding rule${e.decidingRule ? ` (${e.backend})` : ""}: ${describeDecidingRule(e)}`);
  if (e.provenance.length > 0) {
    const from = e.provenance.map(describeProvenance).join(", ");
    const entry = e.matchedEntry === undefined ? "entry" : `entry ${e.matchedEntry}`;
    lines.push(
      `${entry} from: ${from}${r.staleDiff.length > 0 ? " (as recorded at the pod's admission)" : ""}`,
    );
  }
  lines.push(
    r.updatedLiveAt === undefined
      ? "policy explained: the one recorded on the pod at its admission, programmed by osm-init when it started"
      : `policy explained: the one recorded on the pod, applied live by the node agent at ${r.updatedLiveAt} (it records a policy only once the kernel accepted it)`,
  );
  if (r.kernel.checked) {
    if (r.kernel.differences.length === 0) {
      lines.push(`rules in the pod's network namespace ${r.kernel.netns} (${r.kernel.variant}): as recorded`);
    } else {
      lines.push(
        `WARNING: rules in the pod's network namespace ${r.kernel.netns} (${r.kernel.variant}) differ:`,
      );
      for (const d of r.kernel.differences) lines.push(`  ${d}`);
    }
  } else {
    lines.push(`rules in the pod's network namespace: not read (${r.kernel.reason})`);
  }
  if (r.staleDiff.length > 0) {
    lines.push(
      `WARNING: the pod is stale: it runs the policy of its admission; the current MeshConfig would change ${r.staleDiff.join(" ")}`,
    );
    if (r.restart) lines.push(`  restart it: ${r.restart}`);
  }
  return `${lines.join("\n")}\n`;
}

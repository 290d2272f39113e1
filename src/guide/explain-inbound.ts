/**
 * `osm explain pod/DST -n NS --from SRC_NS/SRC_POD IP:PORT`, the pure part: would the destination pod's
 * sidecar let a connection from the source pod in on that port, by which TrafficTarget, and (on an HTTP port
 * routed by HTTPRouteGroups) what it answers a request. The decision is the sidecar's own code
 * (`decideInbound`, `decideInboundRequest`) over the inbound rules the controller would send the destination
 * (`createAccessPolicy`), so explain and the sidecar cannot disagree.
 */
import type { SidecarInboundAccess } from "../config/sidecar-api.ts";
import { SIDECAR_API_VERSION } from "../config/sidecar-api.ts";
import { ENVOY_INBOUND_LISTENER_PORT } from "../constants.ts";
import { buildRoutingTable, decideInbound } from "../sidecar/decide.ts";
import { compileInboundRoutes, decideInboundRequest, RBAC_DENIED_BODY } from "../sidecar/inbound-routes.ts";
import type { HttpRequestFacts } from "../smi/http-match.ts";

export interface InboundEnd {
  /** `<namespace>/<pod>`. */
  readonly pod: string;
  /** `<namespace>/<service account>`. */
  readonly serviceAccount: string;
}

export interface InboundExplainInput {
  readonly source: InboundEnd & {
    /** The source pod's address the destination sees; undefined: it has none (not running). */
    readonly ip: string | undefined;
    /** Whether the source has a sidecar (only a meshed pod's address is a source a TrafficTarget can name). */
    readonly meshed: boolean;
  };
  readonly destination: InboundEnd & { readonly ip: string; readonly port: number; readonly family: 4 | 6 };
  /** The destination's inbound rules as the controller computes them; undefined: permissive mode. */
  readonly access: SidecarInboundAccess | undefined;
  /** An HTTP request to decide (`--method`, `--path`, `--header`, `--host`). */
  readonly request?: HttpRequestFacts;
}

export type InboundExplanation =
  | { readonly verdict: "permissive" }
  | { readonly verdict: "refused"; readonly reason: string; readonly hint: string }
  | {
      readonly verdict: "allowed";
      readonly trafficTarget: string;
      /** Present on an HTTP port routed by HTTPRouteGroups. */
      readonly http?: {
        /** The routes this source may use, by name. */
        readonly routes: readonly string[];
        readonly request?: { readonly text: string; readonly answer: string };
      };
    };

export function explainInbound(input: InboundExplainInput): InboundExplanation {
  if (input.access === undefined) return { verdict: "permissive" };
  const { source, destination } = input;
  const hint = `to allow it, create a TrafficTarget in namespace ${destination.serviceAccount.split("/")[0]} with destination ${destination.serviceAccount}, source ${source.serviceAccount} and a rule covering port ${destination.port} (a TCPRoute listing it, or an HTTPRouteGroup)`;
  if (!source.meshed || source.ip === undefined) {
    return {
      verdict: "refused",
      reason: `pod ${source.pod} ${source.meshed ? "has no address" : "has no sidecar"}: only a meshed pod's address is a source a TrafficTarget can name`,
      hint: "add its namespace to the mesh (osm namespace add) and restart it",
    };
  }
  const table = buildRoutingTable({
    apiVersion: SIDECAR_API_VERSION,
    version: 0,
    enableEgress: true,
    maxDataPlaneConnections: 0,
    meshEndpoints: [],
    inboundAccess: input.access,
  });
  const original = { address: destination.ip, port: destination.port };
  const listener = { address: destination.ip, port: ENVOY_INBOUND_LISTENER_PORT };
  const decision = decideInbound(table, original, listener, destination.family, source.ip);
  if (decision.kind === "refuse" || decision.kind === "inspect" || decision.kind === "mesh") {
    return {
      verdict: "refused",
      reason: `no TrafficTarget lets service account ${source.serviceAccount} (pod ${source.pod}, ${source.ip}) in on port ${destination.port}; permissive traffic policy mode is off, so the sidecar resets the connection (curl exit 56)`,
      hint,
    };
  }
  const trafficTarget = decision.trafficTarget ?? "";
  if (decision.kind === "passthrough") return { verdict: "allowed", trafficTarget };
  const routes = compileInboundRoutes(input.access);
  const mine = routes.filter((route) => route.sources.has(source.ip!)).map((route) => route.name);
  if (input.request === undefined) return { verdict: "allowed", trafficTarget, http: { routes: mine } };
  const verdict = decideInboundRequest(routes, source.ip, input.request);
  const answer = verdict.allowed
    ? `forwarded to the app: route ${verdict.route}, allowed by TrafficTarget ${verdict.trafficTarget}`
    : verdict.status === 403
      ? `403 ${RBAC_DENIED_BODY}: the first route that matches, ${verdict.route}, does not allow this source`
      : "404: no route matches (no HTTPRouteGroup match of a TrafficTarget to this destination)";
  const text = `${input.request.method} ${input.request.path}`;
  return { verdict: "allowed", trafficTarget, http: { routes: mine, request: { text, answer } } };
}

/** The text printed. */
export function formatInboundExplanation(input: InboundExplainInput, e: InboundExplanation): string {
  const { source, destination } = input;
  const lines = [
    `pod ${source.pod} (${source.ip ?? "no address"}, service account ${source.serviceAccount}) → pod ${destination.pod} ${destination.ip}:${destination.port} (tcp, inbound)`,
  ];
  if (e.verdict === "permissive") {
    lines.push("→ allowed: permissive traffic policy mode is on, the sidecar lets every source in");
  } else if (e.verdict === "refused") {
    lines.push(`→ refused: ${e.reason}`, `  ${e.hint}`);
  } else {
    lines.push(
      `→ allowed: TrafficTarget ${e.trafficTarget} lets service account ${source.serviceAccount} in on port ${destination.port}`,
    );
    if (e.http !== undefined) {
      lines.push(
        `  port ${destination.port} serves HTTP: each request is decided by the HTTPRouteGroup routes of the TrafficTargets to ${destination.serviceAccount}`,
        `  routes this source may use: ${e.http.routes.join(", ") || "none (every request is answered 403 or 404)"}`,
      );
      if (e.http.request !== undefined) lines.push(`  ${e.http.request.text} → ${e.http.request.answer}`);
      else lines.push("  give --path (and --method, --header) to see what one request gets");
    }
  }
  return `${lines.join("\n")}\n`;
}

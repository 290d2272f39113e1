/**
 * An inbound connection to a port whose requests HTTPRouteGroup routes decide (inbound-routes.ts): each
 * request on it (keep-alive included) is decided by the access rules in force when it arrives, so a
 * TrafficTarget deleted or changed applies to the next request of an open connection too, as an Envoy route
 * update does: allowed requests go to the app, others are answered 403 `RBAC: access denied` or 404, the
 * connection stays open. Loaded on the first such connection (node:http and the RE2 engine).
 */
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { SidecarInboundAccess } from "../config/sidecar-api.ts";
import { decideInboundAccess, type InboundAccess } from "./access.ts";
import type { Destination } from "./decide.ts";
import { type RequestAction, serveHttpRelay } from "./http-relay.ts";
import {
  compileInboundRoutes,
  decideInboundRequest,
  type InboundRoute,
  RBAC_DENIED_BODY,
} from "./inbound-routes.ts";

export interface InboundHttpOutcome {
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Requests forwarded to the app, answered 403 (no allowed source on their route), and 404 (no route). */
  readonly requests: number;
  readonly forbidden: number;
  readonly notFound: number;
}

export interface InboundHttpRequest {
  readonly client: Socket;
  /** The app: loopback, the original port. */
  readonly upstream: Destination;
  readonly peer: string;
  /** The access rules in force now (the config may change while the connection is open). */
  readonly access: () => InboundAccess;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly done: (outcome: InboundHttpOutcome) => void;
}

/** Compiled once per config section (a new config brings a new section object). */
const compiled = new WeakMap<SidecarInboundAccess, InboundRoute[]>();

function routesOf(spec: SidecarInboundAccess): InboundRoute[] {
  let routes = compiled.get(spec);
  if (routes === undefined) {
    routes = compileInboundRoutes(spec);
    compiled.set(spec, routes);
  }
  return routes;
}

export function serveInboundHttp(request: InboundHttpRequest): void {
  let forbidden = 0;
  let notFound = 0;
  const port = request.upstream.port;
  const decide = (req: IncomingMessage): RequestAction => {
    const access = request.access();
    // Permissive mode now: every request goes in (OSM's wildcard route).
    if (access === undefined) return { kind: "forward" };
    if (!access.routedPorts.has(port)) {
      // No HTTPRouteGroup routes any more: decided by source and port, as a new connection would be.
      if (decideInboundAccess(access, request.peer, port).allowed) return { kind: "forward" };
      forbidden += 1;
      return { kind: "answer", status: 403, body: RBAC_DENIED_BODY };
    }
    const facts = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers };
    const verdict = decideInboundRequest(routesOf(access.spec), request.peer, facts);
    if (verdict.allowed) return { kind: "forward" };
    if (verdict.status === 403) {
      forbidden += 1;
      return { kind: "answer", status: 403, body: RBAC_DENIED_BODY };
    }
    notFound += 1;
    return { kind: "answer", status: 404 };
  };
  serveHttpRelay({
    client: request.client,
    upstream: request.upstream,
    connectTimeoutMs: request.connectTimeoutMs,
    idleTimeoutMs: request.idleTimeoutMs,
    decide,
    done: ({ bytesUp, bytesDown, forwarded }) =>
      request.done({ bytesUp, bytesDown, requests: forwarded, forbidden, notFound }),
  });
}

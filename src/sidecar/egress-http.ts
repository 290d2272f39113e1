/**
 * The `http` Egress path: each request on the client's connection (http-relay.ts) is decided on its own
 * (src/egress/decide.ts, http-request.ts): a Host no rule admits resets the connection (refused, like any
 * destination nothing allows); a request outside the Egress's HTTPRouteGroup matches is answered 404, as OSM's
 * Envoy answers a path outside its routes; an allowed one is forwarded to the connection's original
 * destination (what the pod resolved and dialled). Loaded on the first http Egress connection only (it brings
 * node:http and the RE2 engine).
 */
import type { IncomingMessage } from "node:http";
import { hostRefusal, rulesForHost } from "../egress/decide.ts";
import { decideHttpRequest } from "../egress/http-request.ts";
import type { InspectRequest } from "./egress-inspect.ts";
import { type RequestAction, serveHttpRelay } from "./http-relay.ts";

/** Serves one inspected client connection (its bytes not yet read, or put back) until it closes. */
export function serveEgressHttp(request: InspectRequest): void {
  let egress: string | undefined;
  let refused: string | undefined;
  let notFound = 0;
  const decide = (req: IncomingMessage): RequestAction => {
    const rules = rulesForHost(request.http, req.headers.host, request.upstream.port);
    if (rules.length === 0) {
      refused ??= hostRefusal(request.table, req.headers.host, request.upstream);
      return { kind: "reset" };
    }
    const decision = decideHttpRequest(rules, {
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
    });
    // Allowed or not, the Egress that admits the Host is named in the log.
    egress ??= decision.egress;
    if (decision.kind === "not-found") {
      // OSM's Envoy answers 404 for a request outside the Egress's routes.
      notFound += 1;
      return { kind: "answer", status: 404 };
    }
    return { kind: "forward" };
  };
  serveHttpRelay({
    client: request.client,
    upstream: request.upstream,
    connectTimeoutMs: request.connectTimeoutMs,
    idleTimeoutMs: request.idleTimeoutMs,
    decide,
    done: ({ bytesUp, bytesDown, forwarded }) =>
      request.done({
        ...(egress === undefined
          ? { refused: refused ?? hostRefusal(request.table, undefined, request.upstream) }
          : { egress }),
        bytesUp,
        bytesDown,
        requests: forwarded,
        notFound,
      }),
  });
}

/**
 * The `http` Egress path: the client's connection is parsed as HTTP/1.1 by Node's server parser and each
 * request is decided on its own (src/egress/decide.ts, http-request.ts): a Host no rule admits resets the connection
 * (refused, like any destination nothing allows); a request outside the Egress's HTTPRouteGroup matches is
 * answered 404, as OSM's Envoy answers a path outside its routes; an allowed one is forwarded to the
 * connection's original destination (what the pod resolved and dialled), over one upstream connection kept
 * for this client connection. Loaded on the first http Egress connection only (it brings node:http and the
 * RE2 engine).
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { hostRefusal, rulesForHost } from "../egress/decide.ts";
import { decideHttpRequest } from "../egress/http-request.ts";
import type { InspectRequest } from "./egress-inspect.ts";

interface Connection {
  readonly request: InspectRequest;
  readonly agent: Agent;
  egress: string | undefined;
  refused: string | undefined;
  requests: number;
  notFound: number;
  bytesDown: number;
}

const connections = new WeakMap<Socket, Connection>();

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const connection = connections.get(req.socket);
  if (connection === undefined) {
    req.socket.destroy();
    return;
  }
  const { request } = connection;
  const rules = rulesForHost(request.http, req.headers.host, request.upstream.port);
  if (rules.length === 0) {
    connection.refused ??= hostRefusal(request.table, req.headers.host, request.upstream);
    req.socket.resetAndDestroy();
    return;
  }
  const decision = decideHttpRequest(rules, {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers: req.headers,
  });
  // Allowed or not, the Egress that admits the Host is named in the log.
  connection.egress ??= decision.egress;
  if (decision.kind === "not-found") {
    // OSM's Envoy answers 404 for a request outside the Egress's routes.
    connection.notFound += 1;
    res.writeHead(404, { "content-length": "0" }).end();
    return;
  }
  connection.requests += 1;
  const upstream = httpRequest(
    {
      host: request.upstream.address,
      port: request.upstream.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: connection.agent,
      timeout: request.connectTimeoutMs,
    },
    (response) => {
      res.writeHead(response.statusCode ?? 502, response.statusMessage, response.headers);
      response.on("data", (chunk: Buffer) => {
        connection.bytesDown += chunk.length;
      });
      response.pipe(res);
    },
  );
  upstream.on("error", () => {
    if (!res.headersSent) res.writeHead(502, { "content-length": "0" }).end();
    else res.destroy();
  });
  req.pipe(upstream);
}

let server: ReturnType<typeof createServer> | undefined;

/** Serves one inspected client connection (its bytes not yet read, or put back) until it closes. */
export function serveEgressHttp(request: InspectRequest): void {
  server ??= createServer({ keepAliveTimeout: request.idleTimeoutMs || 5_000 }, onRequest);
  const connection: Connection = {
    request,
    agent: new Agent({ keepAlive: true, maxSockets: 1 }),
    egress: undefined,
    refused: undefined,
    requests: 0,
    notFound: 0,
    bytesDown: 0,
  };
  const { client } = request;
  connections.set(client, connection);
  client.once("close", () => {
    connection.agent.destroy();
    request.done({
      ...(connection.egress === undefined
        ? { refused: connection.refused ?? hostRefusal(request.table, undefined, request.upstream) }
        : { egress: connection.egress }),
      bytesUp: client.bytesRead,
      bytesDown: connection.bytesDown,
      requests: connection.requests,
      notFound: connection.notFound,
    });
  });
  server.emit("connection", client);
  client.resume();
}

/**
 * HTTP/1.x per request, for the paths whose policy looks at each request (an http Egress: egress-http.ts;
 * an inbound port routed by HTTPRouteGroups: inbound-http.ts). The client's connection is parsed by Node's
 * HTTP/1.1 server parser (keep-alive and pipelining included, so every request on a connection is seen);
 * the caller decides each request: forward it to the connection's upstream (over one upstream connection
 * kept for this client connection), answer it here, or reset the connection. Loaded on first use only (it
 * brings node:http).
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import type { Destination } from "./decide.ts";

/**
 * What to do with one request. `forward`: to the connection's upstream as it came, or (`to`, `path`) to
 * another destination and path; `answer`: the status (and body) the sidecar replies with itself.
 */
export type RequestAction =
  | { readonly kind: "forward"; readonly to?: Destination; readonly path?: string }
  | { readonly kind: "answer"; readonly status: number; readonly body?: string }
  | { readonly kind: "reset" };

export interface HttpRelayTotals {
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Requests forwarded to the upstream. */
  readonly forwarded: number;
}

export interface HttpRelayOptions {
  /** The accepted client, paused, not one byte read yet (or its bytes put back). */
  readonly client: Socket;
  readonly upstream: Destination;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly decide: (request: IncomingMessage) => RequestAction;
  /** Once, when the client connection has closed. */
  readonly done: (totals: HttpRelayTotals) => void;
}

interface Connection {
  readonly options: HttpRelayOptions;
  readonly agent: Agent;
  forwarded: number;
  bytesDown: number;
}

const connections = new WeakMap<Socket, Connection>();

function answer(res: ServerResponse, status: number, body = ""): void {
  const headers: Record<string, string | number> = { "content-length": Buffer.byteLength(body) };
  if (body !== "") headers["content-type"] = "text/plain";
  res.writeHead(status, headers).end(body);
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const connection = connections.get(req.socket);
  if (connection === undefined) {
    req.socket.destroy();
    return;
  }
  const { options } = connection;
  const action = options.decide(req);
  if (action.kind === "reset") {
    req.socket.resetAndDestroy();
    return;
  }
  if (action.kind === "answer") {
    // The request's body is read and dropped, so the next request on the connection parses.
    req.resume();
    answer(res, action.status, action.body);
    return;
  }
  connection.forwarded += 1;
  const to = action.to ?? options.upstream;
  const upstream = httpRequest(
    {
      host: to.address,
      port: to.port,
      method: req.method,
      path: action.path ?? req.url,
      headers: req.headers,
      agent: connection.agent,
      timeout: options.connectTimeoutMs,
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
    if (!res.headersSent) answer(res, 502);
    else res.destroy();
  });
  req.pipe(upstream);
}

let server: ReturnType<typeof createServer> | undefined;

/** Serves one client connection request by request until it closes. */
export function serveHttpRelay(options: HttpRelayOptions): void {
  server ??= createServer({ keepAliveTimeout: options.idleTimeoutMs || 5_000 }, onRequest);
  const connection: Connection = {
    options,
    agent: new Agent({ keepAlive: true, maxSockets: 1 }),
    forwarded: 0,
    bytesDown: 0,
  };
  const { client } = options;
  connections.set(client, connection);
  client.once("close", () => {
    connection.agent.destroy();
    options.done({
      bytesUp: client.bytesRead,
      bytesDown: connection.bytesDown,
      forwarded: connection.forwarded,
    });
  });
  server.emit("connection", client);
  client.resume();
}

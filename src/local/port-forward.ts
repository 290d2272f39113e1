/**
 * Kubernetes port-forward (`portforward.k8s.io`) on a SPDY/3.1 session (`./spdy.ts`), as a kubelet serves it:
 * for each local connection kubectl opens an `error` stream and a `data` stream carrying the same `port` and
 * `requestid` headers; once both are there the data stream is spliced to a TCP connection to the pod's port
 * (half-closes passed on both ways) and the error stream ends when that connection does, or carries the
 * failure's message. One module for every server that speaks it: the kubelet API (kube-apiserver upgrades to
 * it with `Upgrade: SPDY/3.1`) and the embedded API server (kubectl's WebSocket tunnel
 * `SPDY/3.1+portforward.k8s.io`, or a direct SPDY upgrade).
 */
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { createWebSocketStream, WebSocketServer } from "ws";
import type { NodeConnector } from "./node-connector.ts";
import { SpdySession, type SpdyStream } from "./spdy.ts";

export const PORT_FORWARD_PROTOCOL = "portforward.k8s.io";
/** The WebSocket subprotocol of kubectl's tunnel (SPDY frames in binary messages). */
export const PORT_FORWARD_TUNNEL_PROTOCOL = `SPDY/3.1+${PORT_FORWARD_PROTOCOL}`;
/** How long the second stream of a pair may lag the first (the kubelet's stream creation timeout). */
const STREAM_PAIR_TIMEOUT_MS = 30_000;

export interface PortForwardTarget {
  readonly namespace: string;
  readonly pod: string;
}

/**
 * Why a direct SPDY upgrade request for port-forward cannot be served (400 or 403, as the kubelet answers), or
 * undefined. No `X-Stream-Protocol-Version` at all is an old client, and is served.
 */
export function spdyUpgradeRefusal(req: IncomingMessage): { status: 400 | 403; message: string } | undefined {
  const upgrade = req.headers.upgrade ?? "";
  if (upgrade.toLowerCase() !== "spdy/3.1")
    return { status: 400, message: `unable to upgrade: Upgrade ${JSON.stringify(upgrade)} is not SPDY/3.1` };
  const offered = (req.headers["x-stream-protocol-version"] ?? "")
    .toString()
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
  if (offered.length > 0 && !offered.includes(PORT_FORWARD_PROTOCOL))
    return {
      status: 403,
      message: `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], server accepts [${PORT_FORWARD_PROTOCOL}]`,
    };
  return undefined;
}

/** An upgrade refused as kube-apiserver and the kubelet refuse one: a plain-text HTTP error, then close. */
function refuseUpgrade(socket: Duplex, status: 400 | 403, message: string): void {
  const reason = status === 400 ? "Bad Request" : "Forbidden";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`,
  );
}

/** Answers a direct SPDY/3.1 upgrade (101, or the refusal) and serves port-forward on the socket. */
export function upgradeToPortForward(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: PortForwardTarget,
  connector: NodeConnector,
  logger: Logger,
): void {
  const refusal = spdyUpgradeRefusal(req);
  if (refusal) {
    refuseUpgrade(socket, refusal.status, refusal.message);
    return;
  }
  const version = req.headers["x-stream-protocol-version"]
    ? `X-Stream-Protocol-Version: ${PORT_FORWARD_PROTOCOL}\r\n`
    : "";
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${version}\r\n`,
  );
  if (head.length > 0) socket.unshift(head);
  servePortForward(socket, target, connector, logger);
}

/**
 * A WebSocket server (no listener of its own) for kubectl's tunnel. `ws` refuses a subprotocol with a `/` in
 * it (not an RFC 7230 token), so `upgradePortForward` checks the offer itself and this server names the
 * tunnel's subprotocol in every handshake it completes.
 */
export function createPortForwardTunnelServer(): WebSocketServer {
  const server = new WebSocketServer({ noServer: true });
  server.on("headers", (headers) => headers.push(`Sec-WebSocket-Protocol: ${PORT_FORWARD_TUNNEL_PROTOCOL}`));
  return server;
}

/**
 * Serves port-forward on an upgrade request: kubectl's WebSocket tunnel (binary messages carry the SPDY bytes,
 * as kube-apiserver's tunnelling handler unwraps them) or a direct SPDY/3.1 upgrade.
 */
export function upgradePortForward(
  tunnel: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: PortForwardTarget,
  connector: NodeConnector,
  logger: Logger,
): void {
  if ((req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
    upgradeToPortForward(req, socket, head, target, connector, logger);
    return;
  }
  const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  if (!offered.includes(PORT_FORWARD_TUNNEL_PROTOCOL)) {
    refuseUpgrade(socket, 400, "unable to upgrade: no tunneling spdy protocols provided");
    return;
  }
  delete req.headers["sec-websocket-protocol"];
  tunnel.handleUpgrade(req, socket, head, (ws) => {
    servePortForward(createWebSocketStream(ws), target, connector, logger);
  });
}

/** The `port` header: an integer 1..65535, else a message naming the header and the value. */
export function parsePortHeader(value: string | undefined): number | string {
  if (!value) return `"port" header is required`;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) return `unable to parse ${JSON.stringify(value)} as a port`;
  if (port < 1) return `port ${JSON.stringify(value)} must be > 0`;
  return port;
}

/** Why a stream is refused before its reply: its port or stream type header is missing or bad. */
export function streamRefusal(headers: ReadonlyMap<string, string>): string | undefined {
  const port = parsePortHeader(headers.get("port"));
  if (typeof port === "string") return port;
  const kind = headers.get("streamtype");
  if (!kind) return `"streamType" header is required`;
  if (kind !== "error" && kind !== "data") return `invalid stream type ${JSON.stringify(kind)}`;
  return undefined;
}

/**
 * The request a stream belongs to: its `requestid` header, or for a client too old to send one, the error
 * stream's id (its data stream comes right after it, two ids later).
 */
export function requestIdOf(stream: { id: number; headers: ReadonlyMap<string, string> }): string {
  const id = stream.headers.get("requestid");
  if (id) return id;
  return String(stream.headers.get("streamtype") === "data" ? stream.id - 2 : stream.id);
}

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Serves port-forward for pod `target` on an upgraded connection (raw SPDY bytes both ways). */
export function servePortForward(
  socket: Duplex,
  target: PortForwardTarget,
  connector: NodeConnector,
  logger: Logger,
): SpdySession {
  const pod = `${target.namespace}/${target.pod}`;
  const pairs = new Map<string, Pair>();
  const fail = (pair: Pair, message: string) => {
    logger.info({ pod, message }, "port-forward connection failed");
    pair.error?.end(message);
    pair.data?.end();
  };
  const session = new SpdySession(socket, {
    refuse: streamRefusal,
    onProblem: (message) => logger.info({ pod, message }, "port-forward protocol problem"),
    onStream: (stream) => {
      stream.on("error", () => stream.destroy());
      const requestId = requestIdOf(stream);
      const kind = stream.headers.get("streamtype") === "error" ? "error" : "data";
      let pair = pairs.get(requestId);
      if (!pair) {
        const timer = setTimeout(() => {
          pairs.delete(requestId);
          if (pair) fail(pair, `(request ${requestId}) timed out waiting for streams`);
        }, STREAM_PAIR_TIMEOUT_MS);
        pair = { timer };
        pairs.set(requestId, pair);
      }
      if (pair[kind]) {
        pair.error?.write(
          `error processing stream for request ${requestId}: ${kind} stream already assigned`,
        );
        stream.destroy();
        return;
      }
      pair[kind] = stream;
      if (kind === "error") stream.resume(); // kubectl writes nothing on it; it half-closes it at once
      const { error, data } = pair;
      if (!error || !data) return;
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      const port = Number(data.headers.get("port"));
      connector.connectPort({ ...target, port }).then(
        (tcp) => splice(data, error, tcp),
        (e: Error) => fail(pair, `error forwarding port ${port} to pod ${pod}: ${e.message}`),
      );
    },
  });
  socket.on("close", () => {
    for (const pair of pairs.values()) clearTimeout(pair.timer);
    pairs.clear();
  });
  return session;
}

/**
 * Data stream ⇄ TCP connection, each end passing on the other's half-close; the error stream ends when the
 * TCP connection is closed, and the connection is destroyed if the stream is reset or its session ends.
 */
function splice(data: SpdyStream, error: SpdyStream, tcp: Socket): void {
  if (data.destroyed) {
    tcp.destroy();
    error.end();
    return;
  }
  tcp.on("error", () => tcp.destroy());
  tcp.on("close", () => {
    error.end();
    if (!data.writableEnded) data.destroy();
  });
  data.on("close", () => tcp.destroy());
  data.pipe(tcp);
  tcp.pipe(data);
}

/**
 * The kubelet API over HTTPS, as kube-apiserver calls it for `kubectl exec`, `attach` and `logs`: client
 * certificates are required and verified against the cluster CA, and only the API server's kubelet-client
 * identity (or `system:masters`) is let in, as a kubelet with x509 authentication does. Exec and attach are
 * the WebSocket remote-command protocol (`../../remote-command.ts`), which kube-apiserver 1.36 proxies
 * straight through to a node that declares `ExtendWebSocketsToKubelet`; port-forward arrives as a SPDY/3.1
 * upgrade (kube-apiserver unwraps kubectl's tunnelling WebSocket itself: `./port-forward.ts`); logs stream as
 * text/plain.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { Writable } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { formatHost } from "../../../net/host-port.ts";
import { type NodeConnector, NodeConnectorError } from "../../node-connector.ts";
import { upgradeToPortForward } from "../../port-forward.ts";
import { createRemoteCommandWebSocketServer, serveRemoteCommand } from "../../remote-command.ts";
import { KubeletRequestError, parseKubeletRequest } from "./requests.ts";

export interface KubeletServerOptions {
  /** Address to listen on (the node's InternalIP). */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tls: {
    readonly certPem: string;
    readonly keyPem: string;
    /** The cluster CA: client certificates must chain to it. */
    readonly clientCaPem: string;
  };
  readonly connector: NodeConnector;
  readonly logger: Logger;
  /** Client certificate CNs let in besides `system:masters` (default: kube-apiserver's kubelet client). */
  readonly allowedUsers?: readonly string[];
}

export interface KubeletServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export const KUBE_APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client";

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The peer's user and groups from its (already verified) client certificate. */
function peerIdentity(req: IncomingMessage): { user: string; groups: string[] } {
  const cert = (req.socket as TLSSocket).getPeerCertificate?.();
  const subject = (cert?.subject ?? {}) as { CN?: string | string[]; O?: string | string[] };
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  return { user: list(subject.CN)[0] ?? "system:anonymous", groups: list(subject.O) };
}

function authorize(req: IncomingMessage, allowed: readonly string[], resource: string): void {
  if (!(req.socket as TLSSocket).authorized) throw new HttpError(401, "Unauthorized");
  const { user, groups } = peerIdentity(req);
  if (allowed.includes(user) || groups.includes("system:masters")) return;
  const verb = req.method === "GET" ? "get" : "create";
  throw new HttpError(403, `Forbidden (user=${user}, verb=${verb}, resource=nodes, subresource=${resource})`);
}

function statusOf(error: unknown): { status: number; message: string } {
  if (
    error instanceof HttpError ||
    error instanceof NodeConnectorError ||
    error instanceof KubeletRequestError
  )
    return { status: error.status, message: error.message };
  return { status: 500, message: `internal error: ${(error as Error).message}` };
}

function respondError(res: ServerResponse, error: unknown): void {
  const { status, message } = statusOf(error);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(`${message}\n`);
}

/** Starts the kubelet API server; resolves once it listens. */
export async function startKubeletServer(options: KubeletServerOptions): Promise<KubeletServer> {
  const { connector, logger } = options;
  const allowed = options.allowedUsers ?? [KUBE_APISERVER_KUBELET_CLIENT];
  const server: Server = createServer(
    {
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      ca: options.tls.clientCaPem,
      requestCert: true,
      // Checked per request (401 with a body) rather than by dropping the handshake.
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => respondError(res, error));
    },
  );
  const wss = createRemoteCommandWebSocketServer();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://kubelet");
    const request = parseKubeletRequest(url);
    if (!request) throw new HttpError(404, `404 page not found: ${url.pathname}`);
    if (request.kind === "healthz") {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("ok");
      return;
    }
    authorize(req, allowed, "proxy");
    if (request.kind === "portForward")
      throw new HttpError(400, "portForward needs an upgrade to SPDY/3.1 (portforward.k8s.io)");
    if (request.kind !== "logs")
      throw new HttpError(
        400,
        `${request.kind} needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); this node does not speak SPDY`,
      );
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (!res.headersSent) res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
        res.write(chunk, () => cb());
      },
    });
    if (request.follow) {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.flushHeaders();
    }
    await connector.logs(request, out, abort.signal);
    if (!res.headersSent) res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
    res.end();
  }

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    try {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const request = parseKubeletRequest(url);
      if (!request || request.kind === "healthz" || request.kind === "logs")
        throw new HttpError(404, `404 page not found: ${url.pathname}`);
      authorize(req, allowed, "proxy");
      if (request.kind === "portForward") {
        upgradeToPortForward(req, socket, head, request, connector, logger);
        return;
      }
      const target = { namespace: request.namespace, pod: request.pod, container: request.container };
      wss.handleUpgrade(req, socket, head, (ws) => {
        serveRemoteCommand(
          ws,
          request,
          (streams, signal) =>
            request.kind === "attach"
              ? connector.attach(target, streams, signal)
              : connector.exec({ ...target, command: request.command, tty: request.tty }, streams, signal),
          logger,
        ).catch((error: unknown) => logger.error({ err: error }, "kubelet remote command failed"));
      });
    } catch (error) {
      const { status, message } = statusOf(error);
      socket.end(
        `HTTP/1.1 ${status} ${status === 404 ? "Not Found" : "Error"}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`,
      );
    }
  });
  server.on("close", () => wss.close());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = formatHost(options.host);
  logger.info({ address: `${options.host}:${port}` }, "kubelet API serving");
  return {
    port,
    url: `https://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const ws of wss.clients) ws.terminate();
      }),
  };
}

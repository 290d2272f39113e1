/**
 * `pods/exec`, `pods/log` and `pods/proxy`, served by calling the injected NodeConnector (as
 * kube-apiserver calls the kubelet). Exec speaks the WebSocket remote-command protocol
 * (`v5.channel.k8s.io`, `v4.channel.k8s.io`; spec §7): binary frames whose first byte is the channel
 * (0 stdin, 1 stdout, 2 stderr, 3 error Status, 4 resize, 255 close), ending with a channel-3 Status and a
 * close frame, so kubectl exits with the command's exit code.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { PassThrough, Writable } from "node:stream";
import type { Logger } from "pino";
import { type WebSocket, WebSocketServer } from "ws";
import { type NodeConnector, NodeConnectorError } from "../node-connector.ts";
import type { KubeObject } from "../store/store.ts";
import { sendJson } from "./http-util.ts";
import type { Obj } from "./json.ts";
import { ApiError, badRequest } from "./status.ts";

export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

/** The container a request names, checked against the pod (first container by default). */
export function resolveContainer(pod: KubeObject, container: string | null, forLogs: boolean): string {
  const spec = (pod as Obj).spec ?? {};
  const names: string[] = [
    ...(spec.containers ?? []),
    ...(spec.initContainers ?? []),
    ...(spec.ephemeralContainers ?? []),
  ].map((c: Obj) => c.name);
  const main: string[] = (spec.containers ?? []).map((c: Obj) => c.name);
  if (container) {
    if (!names.includes(container))
      throw badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
    return container;
  }
  if (forLogs && main.length > 1) {
    throw badRequest(
      `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${main.join(" ")}]${(spec.initContainers ?? []).length ? ` or one of the init containers: [${spec.initContainers.map((c: Obj) => c.name).join(" ")}]` : ""}`,
    );
  }
  return main[0] ?? "";
}

function connectorError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof NodeConnectorError) {
    const reason = { 400: "BadRequest", 404: "NotFound", 409: "Conflict", 500: "InternalError" }[
      error.status
    ];
    return new ApiError(error.status, reason, error.message);
  }
  return new ApiError(500, "InternalError", `Internal error occurred: ${(error as Error).message}`);
}

function requireConnector(connector: NodeConnector | undefined): NodeConnector {
  if (!connector)
    throw new ApiError(503, "ServiceUnavailable", "no node agent is connected to this API server");
  return connector;
}

export interface ExecParams {
  readonly namespace: string;
  readonly pod: KubeObject;
  readonly container: string;
  readonly command: string[];
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

/** A boolean query parameter as the kube-apiserver reads one: `true` or `1`. */
function queryFlag(url: URL, name: string): boolean {
  return ["true", "1"].includes(url.searchParams.get(name) ?? "");
}

/** Reads and checks exec query parameters against the pod. */
export function parseExecParams(url: URL, namespace: string, pod: KubeObject): ExecParams {
  const command = url.searchParams.getAll("command");
  if (command.length === 0) throw badRequest("you must specify at least 1 command");
  const phase = (pod as Obj).status?.phase;
  if (phase === "Succeeded" || phase === "Failed")
    throw badRequest(`cannot exec into a container in a completed pod; current phase is ${phase}`);
  return {
    namespace,
    pod,
    container: resolveContainer(pod, url.searchParams.get("container"), false),
    command,
    stdin: queryFlag(url, "stdin"),
    stdout: queryFlag(url, "stdout"),
    stderr: queryFlag(url, "stderr"),
    tty: queryFlag(url, "tty"),
  };
}

/** The WebSocket endpoint for exec: one per HTTPS server; picks v5, else v4 (else no protocol → SPDY fallback). */
export function createExecWebSocketServer(): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => EXEC_PROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
}

/** Upgrades the request and runs the command; errors before the upgrade are answered as HTTP Status. */
export function serveExec(
  wss: WebSocketServer,
  connector: NodeConnector | undefined,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  params: ExecParams,
  logger: Logger,
): void {
  const node = requireConnector(connector);
  wss.handleUpgrade(req, socket, head, (ws) => {
    runExec(node, ws, params, logger).catch((error) => logger.error({ err: error }, "exec failed"));
  });
}

async function runExec(node: NodeConnector, ws: WebSocket, p: ExecParams, logger: Logger): Promise<void> {
  const v5 = ws.protocol === "v5.channel.k8s.io";
  const abort = new AbortController();
  const send = (channel: number, data: Buffer) => {
    if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true });
  };
  const channelWriter = (channel: number) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        send(channel, Buffer.from(chunk));
        cb();
      },
    });
  const stdin = p.stdin ? new PassThrough() : null;
  ws.on("message", (data: Buffer, isBinary) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
    if (!isBinary || buf.length === 0) return;
    const channel = buf[0];
    if (channel === 0 && stdin && !stdin.writableEnded) stdin.write(buf.subarray(1));
    else if (channel === 255 && v5 && buf[1] === 0 && stdin) stdin.end();
  });
  // Without a listener, a socket error (a client gone mid-frame) would be thrown and end the process.
  ws.on("error", (error) => {
    logger.debug({ err: error }, "exec WebSocket error");
    abort.abort();
  });
  ws.on("close", () => {
    abort.abort();
    stdin?.end();
  });
  let status: Obj;
  try {
    const result = await node.exec(
      {
        namespace: p.namespace,
        pod: p.pod.metadata.name,
        container: p.container,
        command: p.command,
        tty: p.tty,
      },
      { stdin, stdout: channelWriter(1), stderr: channelWriter(p.tty ? 1 : 2) },
      abort.signal,
    );
    status =
      result.exitCode === 0
        ? { metadata: {}, status: "Success" }
        : {
            metadata: {},
            status: "Failure",
            message: `command terminated with non-zero exit code: error executing command [${p.command.join(" ")}], exit code ${result.exitCode}`,
            reason: "NonZeroExitCode",
            details: { causes: [{ reason: "ExitCode", message: String(result.exitCode) }] },
          };
  } catch (error) {
    const e = connectorError(error);
    logger.debug({ err: error }, "exec error");
    status = { metadata: {}, status: "Failure", message: e.message, reason: e.reason, code: e.code };
  }
  send(3, Buffer.from(JSON.stringify(status)));
  // A close frame, not a bare TCP end: kubectl reports 1006 and exits 1 otherwise (spec §7).
  if (ws.readyState === ws.OPEN) ws.close(1000);
  setTimeout(() => ws.terminate(), 5000).unref();
}

/** `pods/log`: text/plain, streamed while `follow=true`. */
export async function serveLogs(
  connector: NodeConnector | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  namespace: string,
  pod: KubeObject,
): Promise<void> {
  const container = resolveContainer(pod, url.searchParams.get("container"), true);
  const node = requireConnector(connector);
  const tail = url.searchParams.get("tailLines");
  const abort = new AbortController();
  req.on("close", () => abort.abort());
  res.on("close", () => abort.abort());
  let started = false;
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!started) {
        started = true;
        res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
      }
      res.write(chunk, () => cb());
    },
  });
  const follow = queryFlag(url, "follow");
  if (follow) {
    started = true;
    res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
  }
  try {
    await node.logs(
      {
        namespace,
        pod: pod.metadata.name,
        container,
        follow,
        previous: queryFlag(url, "previous"),
        tailLines: tail === null ? undefined : Number(tail),
        timestamps: queryFlag(url, "timestamps"),
      },
      out,
      abort.signal,
    );
  } catch (error) {
    if (!started) throw connectorError(error);
  }
  if (!started) res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": 0 });
  res.end();
}

/** `pods/{name[:port]}/proxy/{path}`: one HTTP request into the pod. */
export async function serveProxy(
  connector: NodeConnector | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  namespace: string,
  pod: KubeObject,
  port: number,
  rest: string,
): Promise<void> {
  const node = requireConnector(connector);
  const abort = new AbortController();
  req.on("close", () => abort.abort());
  try {
    const query = url.search;
    const result = await node.proxyHttp(
      { namespace, pod: pod.metadata.name, port, path: `/${rest}${query}`, method: req.method ?? "GET" },
      abort.signal,
    );
    res.writeHead(result.status, result.headers);
    res.end(result.body);
  } catch (error) {
    const e = connectorError(error);
    sendJson(res, e.code, e.toStatus());
  }
}

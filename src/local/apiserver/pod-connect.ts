/**
 * `pods/exec`, `pods/attach`, `pods/log` and `pods/proxy`, served by calling the injected NodeConnector (as
 * kube-apiserver calls the kubelet). Exec and attach speak the WebSocket remote-command protocol of
 * `../remote-command.ts` (v5/v4 channels, TTY resize, the exit code on the error channel).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { Writable } from "node:stream";
import type { Logger } from "pino";
import type { WebSocketServer } from "ws";
import { type NodeConnector, NodeConnectorError } from "../node-connector.ts";
import { serveRemoteCommand } from "../remote-command.ts";
import type { KubeObject } from "../store/store.ts";
import { sendJson } from "./http-util.ts";
import type { Obj } from "./json.ts";
import { ApiError, badRequest } from "./status.ts";

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
  /** Empty for attach. */
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

/** Reads and checks exec (or, with `attach`, attach) query parameters against the pod. */
export function parseExecParams(url: URL, namespace: string, pod: KubeObject, attach = false): ExecParams {
  const command = attach ? [] : url.searchParams.getAll("command");
  if (!attach && command.length === 0) throw badRequest("you must specify at least 1 command");
  const phase = (pod as Obj).status?.phase;
  if (phase === "Succeeded" || phase === "Failed")
    throw badRequest(
      `cannot ${attach ? "attach to" : "exec into"} a container in a completed pod; current phase is ${phase}`,
    );
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

/** Upgrades the request and runs the command (or attaches); errors before the upgrade are answered as HTTP Status. */
export function serveExec(
  wss: WebSocketServer,
  connector: NodeConnector | undefined,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  params: ExecParams,
  logger: Logger,
  attach = false,
): void {
  const node = requireConnector(connector);
  const target = { namespace: params.namespace, pod: params.pod.metadata.name, container: params.container };
  wss.handleUpgrade(req, socket, head, (ws) => {
    serveRemoteCommand(
      ws,
      params,
      (streams, signal) =>
        attach
          ? node.attach(target, streams, signal)
          : node.exec({ ...target, command: params.command, tty: params.tty }, streams, signal),
      logger,
    ).catch((error) => logger.error({ err: error }, "exec failed"));
  });
}

/** A positive integer query parameter (absent: undefined); anything else is refused, naming it. */
function positiveInt(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw badRequest(`${name}: Invalid value: "${raw}": must be greater than 0`);
  return n;
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
  const sinceSeconds = positiveInt(url, "sinceSeconds");
  const limitBytes = positiveInt(url, "limitBytes");
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
        sinceSeconds,
        limitBytes,
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

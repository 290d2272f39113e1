/**
 * The HTTPS front: authentication (401) and RBAC authorization (403) of every request but the health
 * checks, /version (minor "32": the kubectl dispatcher picks its binary by it, docs/kubectl-api.md §0.1),
 * discovery, OpenAPI, health, resource URLs, and the pod
 * connect subresources (exec and attach upgrades, port-forward upgrade, log, proxy).
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { WebSocketServer } from "ws";
import type { NodeConnector } from "../node-connector.ts";
import { createPortForwardTunnelServer, upgradePortForward } from "../port-forward.ts";
import { createRemoteCommandWebSocketServer } from "../remote-command.ts";
import { selfSubjectAccessReview, selfSubjectReview } from "./access-review.ts";
import type { Api } from "./api.ts";
import type { Authenticator } from "./authn.ts";
import { type Authorizer, requestAttributes } from "./authz.ts";
import {
  AGGREGATED_CONTENT_TYPE,
  AGGREGATED_V2BETA1_CONTENT_TYPE,
  buildAggregated,
  buildApiGroup,
  buildApiGroupList,
  buildApiVersions,
  buildResourceList,
  wantsAggregated,
} from "./discovery.ts";
import { handleResource } from "./handlers.ts";
import { decodeBody, readBody, sendError, sendJson } from "./http-util.ts";
import type { Obj } from "./json.ts";
import { buildOpenApiGroupVersion, buildOpenApiRoot } from "./openapi.ts";
import { parseExecParams, serveExec, serveLogs, serveProxy } from "./pod-connect.ts";
import type { UserInfo } from "./rbac.ts";
import type { ResourceType } from "./resources.ts";
import { parseResourcePath, type ResourceRequest } from "./router.ts";
import { ApiError, internalError, methodNotSupported } from "./status.ts";
import { requestToken } from "./token-request.ts";
import { tokenReview } from "./token-review.ts";
import type { TokenSigner } from "./tokens.ts";
import type { WatchHub } from "./watch.ts";

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4-osmt",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.8",
  compiler: "gc",
  platform: "linux/amd64",
};

export interface ServerDeps {
  readonly api: Api;
  readonly hub: WatchHub;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly signer: TokenSigner;
  readonly nodeConnector: NodeConnector | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  /** host:port as clients reach it (legacy /api's serverAddressByClientCIDRs). */
  serverAddress: string;
}

const UNAUTHENTICATED = new Set(["/healthz", "/livez", "/readyz"]);

/**
 * Who the request is and whether RBAC lets it: 401 without a valid credential, 403 (kube-apiserver's text)
 * when no binding allows it. Returns the user it acts as (after impersonation) and its resource path.
 */
async function admit(
  deps: ServerDeps,
  req: IncomingMessage,
  url: URL,
): Promise<{ user: UserInfo; r: ResourceRequest | undefined }> {
  const authenticated = await deps.authenticator.authenticate(req);
  if (!authenticated) throw UNAUTHORIZED;
  const user = deps.authorizer.impersonate(authenticated, req);
  const r = parseResourcePath(url.pathname);
  deps.authorizer.check(requestAttributes(user, req.method ?? "GET", url, r));
  return { user, r };
}

/** The request's URL; a target that is not an absolute path (`*`, `http://…`) or does not parse is a 400. */
function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? "/";
  if (!target.startsWith("/")) throw new ApiError(400, "BadRequest", `invalid request target: ${target}`);
  try {
    return new URL(`https://localhost${target}`);
  } catch {
    throw new ApiError(400, "BadRequest", `invalid request target: ${target}`);
  }
}

const UNAUTHORIZED = new ApiError(401, "Unauthorized", "Unauthorized");

export function createApiHttpsServer(
  deps: ServerDeps,
  tls: { key: string; cert: string; ca: string },
): Server {
  // Client certificates are asked for, not required: token clients send none (authn.ts decides).
  const options = {
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
  };
  const server = createServer(options, (req, res) => {
    handle(deps, req, res).catch((error) => {
      const e = error instanceof ApiError ? error : internalError((error as Error).message);
      if (!(error instanceof ApiError)) deps.logger.error({ err: error, url: req.url }, "request failed");
      sendError(res, e);
    });
  });
  const wss = createRemoteCommandWebSocketServer();
  const tunnel = createPortForwardTunnelServer();
  server.on("close", () => {
    wss.close();
    tunnel.close();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handleUpgrade(deps, { wss, tunnel }, req, socket, head).catch((error) => {
      const e = error instanceof ApiError ? error : internalError((error as Error).message);
      const body = JSON.stringify(e.toStatus());
      socket.end(
        `HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
  });
  return server;
}

function podFor(deps: ServerDeps, url: URL, wanted: string) {
  const r = parseResourcePath(url.pathname);
  if (
    r?.group !== "" ||
    r.resource !== "pods" ||
    r.name === undefined ||
    r.subresource !== wanted ||
    r.namespace === undefined
  )
    return undefined;
  const type = deps.api.registry.find("", "v1", "pods");
  if (!type) return undefined;
  const [podName = "", port] = r.name.split(":");
  const pod = deps.api.get(type, r.namespace, podName);
  return { r, pod, port };
}

async function handleUpgrade(
  deps: ServerDeps,
  { wss, tunnel }: { wss: WebSocketServer; tunnel: WebSocketServer },
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const url = requestUrl(req);
  await admit(deps, req, url);
  const forward = podFor(deps, url, "portforward");
  if (forward) {
    if (!deps.nodeConnector)
      throw new ApiError(503, "ServiceUnavailable", "no node agent is connected to this API server");
    const target = { namespace: forward.r.namespace ?? "", pod: forward.pod.metadata.name };
    return upgradePortForward(tunnel, req, socket, head, target, deps.nodeConnector, deps.logger);
  }
  const target = podFor(deps, url, "exec") ?? podFor(deps, url, "attach");
  if (!target) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  const attach = target.r.subresource === "attach";
  const params = parseExecParams(url, target.r.namespace ?? "", target.pod, attach);
  serveExec(wss, deps.nodeConnector, req, socket, head, params, deps.logger, attach);
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = requestUrl(req);
  const path = url.pathname.replace(/\/+$/, "") || "/";
  if (UNAUTHENTICATED.has(path)) {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok");
    return;
  }
  const { user, r } = await admit(deps, req, url);
  const { registry } = deps.api;
  if (path === "/version") return sendJson(res, 200, SERVER_VERSION);
  if (path === "/api" || path === "/apis") {
    const aggregated = wantsAggregated(req.headers.accept);
    if (aggregated) {
      const ct = aggregated === "v2" ? AGGREGATED_CONTENT_TYPE : AGGREGATED_V2BETA1_CONTENT_TYPE;
      return sendJson(res, 200, buildAggregated(registry, path === "/api", aggregated), ct);
    }
    return sendJson(
      res,
      200,
      path === "/api" ? buildApiVersions(deps.serverAddress) : buildApiGroupList(registry),
    );
  }
  if (path === "/openapi/v3") return sendJson(res, 200, buildOpenApiRoot(registry));
  if (path.startsWith("/openapi/v3/")) {
    const doc = buildOpenApiGroupVersion(registry, path.slice("/openapi/v3/".length));
    if (doc) return sendJson(res, 200, doc);
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  }
  const parts = path.split("/").filter(Boolean);
  if (parts[0] === "api" && parts.length === 2) {
    const list = buildResourceList(registry, "", parts[1] ?? "");
    if (list) return sendJson(res, 200, list);
  }
  if (parts[0] === "apis" && parts.length === 2) {
    const group = buildApiGroup(registry, parts[1] ?? "");
    if (group) return sendJson(res, 200, group);
  }
  if (parts[0] === "apis" && parts.length === 3) {
    const list = buildResourceList(registry, parts[1] ?? "", parts[2] ?? "");
    if (list) return sendJson(res, 200, list);
  }
  if (!r) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  const type = registry.find(r.group, r.version, r.resource);
  if (!type) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  if (type.verbs || (r.resource === "serviceaccounts" && r.subresource === "token"))
    return serveCreateOnly(deps, req, res, r, type, user);
  const connect = ["exec", "log", "proxy", "attach", "portforward"];
  if (r.group === "" && r.resource === "pods" && connect.includes(r.subresource)) {
    const target = podFor(deps, url, r.subresource);
    if (!target) throw new ApiError(404, "NotFound", "the server could not find the requested resource");
    const ns = r.namespace ?? "";
    if (r.subresource === "portforward") throw new ApiError(400, "BadRequest", "Upgrade request required");
    if (r.subresource === "log") return serveLogs(deps.nodeConnector, req, res, url, ns, target.pod);
    if (r.subresource === "proxy") {
      const container = (target.pod as Obj).spec?.containers?.[0];
      const port = Number(target.port ?? container?.ports?.[0]?.containerPort ?? 80);
      return serveProxy(deps.nodeConnector, req, res, url, ns, target.pod, port, r.rest);
    }
    // exec/attach without an upgrade: kubectl's SPDY fallback. Same checks, then refuse with a Status.
    parseExecParams(url, ns, target.pod, r.subresource === "attach");
    if (!deps.nodeConnector)
      throw new ApiError(503, "ServiceUnavailable", "no node agent is connected to this API server");
    throw new ApiError(
      400,
      "BadRequest",
      "this server speaks the WebSocket remote-command protocol (v5.channel.k8s.io, v4.channel.k8s.io) only, not SPDY",
    );
  }
  return handleResource({ api: deps.api, hub: deps.hub, now: deps.now }, req, res, url, r, type, user.name);
}

/** The reviews and TokenRequest: POST only, answered from the request (201), nothing stored. */
async function serveCreateOnly(
  deps: ServerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  r: ResourceRequest,
  type: ResourceType,
  user: UserInfo,
): Promise<void> {
  const what = r.subresource ? `${type.resource}/${r.subresource}` : type.resource;
  if (req.method !== "POST") throw methodNotSupported(what, req.method ?? "GET");
  const body = decodeBody(await readBody(req), req.headers["content-type"]);
  if (type.resource === "selfsubjectaccessreviews")
    return sendJson(res, 201, selfSubjectAccessReview(deps.authorizer, user, body));
  if (type.resource === "selfsubjectreviews") return sendJson(res, 201, selfSubjectReview(user));
  if (type.resource === "tokenreviews")
    return sendJson(res, 201, await tokenReview(deps.authenticator, body));
  if (r.name === undefined || r.namespace === undefined)
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  return sendJson(res, 201, await requestToken(deps.api, deps.signer, r.namespace, r.name, body, deps.now()));
}

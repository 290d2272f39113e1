/**
 * The controller's HTTP surface: the sidecar watch API (src/config/sidecar-api.ts), the stale-pod report,
 * Prometheus metrics and health. Handlers read state through the `HttpApiState` interface only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { SIDECAR_CONFIG_PATH, SIDECAR_LONG_POLL_SECONDS } from "../config/sidecar-api.ts";
import type { ConfigHub } from "./config-hub.ts";
import type { ControllerMetrics } from "./metrics.ts";
import { authenticateSidecar, type TokenReviewer } from "./sidecar-auth.ts";

/** Path of the stale-pod report (`osm proxy status` reads it). */
export const STALE_PODS_PATH = "/v1/pods/stale";
/** apiVersion of the stale-pod report document. */
export const STALE_REPORT_API_VERSION = "osm-ts.io/controller/v1";
/** Path prefix of a pod policy by its hash (`osm interception init` fetches it). */
export const INTERCEPTION_POLICY_PATH = "/v1/interception-policies/";
/** Upper bound on a long-poll, whatever the client asks (keeps idle connections bounded). */
export const MAX_LONG_POLL_SECONDS = 300;

export interface StalePodReport {
  readonly namespace: string;
  readonly name: string;
  readonly recordedHash: string;
  readonly currentHash: string;
  readonly diff: readonly string[];
}

export interface HttpApiState {
  readonly hub: ConfigHub;
  /** The pod from the informer cache. */
  lookupPod(namespace: string, name: string): V1Pod | undefined;
  /** True once every informer has listed and the MeshConfig is known (configs are complete). */
  isReady(): boolean;
  stalePods(): readonly StalePodReport[];
  /** The canonical policy text with this sha256 that a current pod runs, if any. */
  interceptionPolicy(hash: string): string | undefined;
}

export interface HttpApiOptions {
  readonly state: HttpApiState;
  readonly metrics: ControllerMetrics;
  readonly logger: Logger;
  /** Asks the API server whether a sidecar's token is valid (TokenReview). */
  readonly review: TokenReviewer;
  /** Also require the TCP peer to be one of the pod's IPs (off where sidecars reach us through NAT). */
  readonly requireSourceIp?: boolean;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string, contentType = "text/plain"): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Parses `<ns>/<name>`. */
function parsePodParam(value: string | null): { namespace: string; name: string } | undefined {
  const match = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(value ?? "");
  return match ? { namespace: match[1]!, name: match[2]! } : undefined;
}

function parseNonNegativeInt(value: string | null): number | undefined | "invalid" {
  if (value === null || value === "") return undefined;
  if (!/^\d+$/.test(value)) return "invalid";
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : "invalid";
}

async function handleSidecarConfig(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  options: HttpApiOptions,
): Promise<void> {
  const { state, metrics } = options;
  const reply = (status: number, body?: unknown): void => {
    metrics.configResponses.inc({ status: String(status) });
    if (body === undefined) {
      res.writeHead(status, { "cache-control": "no-store" });
      res.end();
    } else sendJson(res, status, body);
  };
  const pod = parsePodParam(url.searchParams.get("pod"));
  const sinceVersion = parseNonNegativeInt(url.searchParams.get("sinceVersion"));
  const timeoutSeconds = parseNonNegativeInt(url.searchParams.get("timeoutSeconds"));
  if (!pod || sinceVersion === "invalid" || timeoutSeconds === "invalid") {
    reply(400, {
      error:
        "query must be pod=<namespace>/<name>, optional sinceVersion=<n> and timeoutSeconds=<s> (integers)",
    });
    return;
  }
  const auth = await authenticateSidecar({
    pod: state.lookupPod(pod.namespace, pod.name),
    authorization: req.headers.authorization,
    review: options.review,
    remoteAddress: req.socket.remoteAddress,
    requireSourceIp: options.requireSourceIp ?? false,
  });
  if (!auth.ok) {
    // One answer for every failure, so the API does not tell which pods exist.
    metrics.authFailures.inc({ reason: auth.reason });
    options.logger.debug({ pod: `${pod.namespace}/${pod.name}`, reason: auth.reason }, "sidecar refused");
    res.setHeader("www-authenticate", 'Bearer realm="osm-ts-controller"');
    reply(401, {
      error: "unauthorized: send Authorization: Bearer <the pod's projected osm-controller token>",
    });
    return;
  }
  if (!state.isReady()) {
    // A controller that has not synced would hand out an incomplete mesh; the sidecar keeps its last config.
    res.setHeader("retry-after", "1");
    reply(503, { error: "controller is starting: caches not synced yet" });
    return;
  }
  const key = `${pod.namespace}/${pod.name}`;
  const since = sinceVersion ?? -1;
  const timeoutMs = Math.min(timeoutSeconds ?? SIDECAR_LONG_POLL_SECONDS, MAX_LONG_POLL_SECONDS) * 1000;
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  res.on("close", onClose);
  metrics.watchers.inc();
  try {
    const config = await state.hub.wait(key, since, timeoutMs, abort.signal);
    if (abort.signal.aborted) return;
    if (config) reply(200, config);
    else reply(204);
  } finally {
    metrics.watchers.dec();
    res.off("close", onClose);
  }
}

/**
 * A pod policy by its sha256. Not secret (CIDRs and ports, like the stale report), and content-addressed: the
 * caller checks the text against the hash it already has, so this answer cannot change what a pod enforces.
 */
function sendPolicy(res: ServerResponse, hash: string, state: HttpApiState): void {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    sendJson(res, 400, { error: `${JSON.stringify(hash)} is not a sha256 (64 lowercase hex digits)` });
    return;
  }
  const text = state.isReady() ? state.interceptionPolicy(hash) : undefined;
  if (text !== undefined) {
    sendText(res, 200, text, "application/json");
    return;
  }
  // Not yet (caches syncing, the new pod not reconciled yet), or never seen current (a controller restarted
  // after a MeshConfig change while the pod waited to start).
  res.setHeader("retry-after", "1");
  sendJson(res, 404, {
    error: `no pod's interception policy with hash ${hash} is known here${state.isReady() ? " (is the pod new? retry)" : " (the controller is starting)"}`,
  });
}

/** Routes one request. Exported for tests that drive it without a socket. */
export async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: HttpApiOptions,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://controller.invalid");
  if (req.method !== "GET" && req.method !== "HEAD") {
    sendJson(res, 405, { error: `method ${req.method} not allowed` });
    return;
  }
  if (url.pathname.startsWith(INTERCEPTION_POLICY_PATH)) {
    sendPolicy(res, url.pathname.slice(INTERCEPTION_POLICY_PATH.length), options.state);
    return;
  }
  switch (url.pathname) {
    case SIDECAR_CONFIG_PATH:
      await handleSidecarConfig(req, res, url, options);
      return;
    case STALE_PODS_PATH:
      sendJson(res, 200, {
        apiVersion: STALE_REPORT_API_VERSION,
        kind: "StalePodList",
        ready: options.state.isReady(),
        items: options.state.stalePods(),
      });
      return;
    case "/metrics":
      sendText(res, 200, await options.metrics.registry.metrics(), options.metrics.registry.contentType);
      return;
    case "/healthz":
    case "/livez":
    case "/health/alive": // OSM's osm-controller probe paths (charts/osm: livenessProbe, readinessProbe)
      sendText(res, 200, "ok\n");
      return;
    case "/readyz":
    case "/health/ready":
      if (options.state.isReady()) sendText(res, 200, "ok\n");
      else sendText(res, 503, "caches not synced\n");
      return;
    default:
      sendJson(res, 404, { error: `no route for ${url.pathname}` });
  }
}

export interface RunningHttpApi {
  readonly server: Server;
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0 picks one) and serves until `close()`. */
export async function startHttpApi(
  options: HttpApiOptions & { readonly host: string; readonly port: number },
): Promise<RunningHttpApi> {
  const server = createServer((req, res) => {
    handleRequest(req, res, options).catch((error: unknown) => {
      options.logger.error({ err: error, url: req.url }, "request failed");
      if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
      else res.destroy();
    });
  });
  // Long-polls are idle by design; only the request headers must arrive promptly.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

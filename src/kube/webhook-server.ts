/**
 * The admission webhook HTTPS server: routes AdmissionReview v1 POSTs to handlers, serves health endpoints,
 * bounds every request (body size, header/request timeouts, the API server's `?timeout=` per call), and swaps
 * its certificate in place for rotation (`setSecureContext`: no restart, no dropped listener).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import {
  type AdmissionDecision,
  type AdmissionRequest,
  buildAdmissionReview,
  parseAdmissionReview,
} from "./admission.ts";
import type { WebhookMetrics } from "./metrics.ts";

/** Decides one admission request. Must settle before `signal` aborts (the API server has given up by then). */
export type AdmissionHandler = (request: AdmissionRequest, signal: AbortSignal) => Promise<AdmissionDecision>;

export interface WebhookServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly certPem: string;
  readonly keyPem: string;
  /** Path → handler, e.g. `/mutate-pod-creation`. */
  readonly handlers: ReadonlyMap<string, AdmissionHandler>;
  readonly logger: Logger;
  /** Reported by /readyz; e.g. false until the caBundle has been published. */
  readonly ready?: () => boolean;
  /** Upper bound for one admission call; the API server's own `?timeout=` is honoured when shorter. */
  readonly requestTimeoutMs?: number;
  readonly maxBodyBytes?: number;
  /** Served on GET /metrics (Prometheus text) and fed per review. */
  readonly metrics?: WebhookMetrics;
}

export interface RunningWebhookServer {
  readonly port: number;
  readonly server: Server;
  /** Replaces the serving certificate for new connections (rotation). */
  setCertificate(certPem: string, keyPem: string): void;
  close(): Promise<void>;
}

/** kube-apiserver's default webhook timeout is 10 s and its maximum 30 s. */
const DEFAULT_TIMEOUT_MS = 10_000;
/** kube-apiserver caps request bodies at 3 MiB; a review carries one object, so this is generous. */
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/** Parses the `timeout` query parameter kube-apiserver appends (`?timeout=10s`), in ms. */
export function parseTimeoutParam(value: string | null): number | undefined {
  if (value === null) return undefined;
  const match = /^(\d+)(ms|s|m)$/.exec(value);
  if (!match) return undefined;
  const n = Number(match[1]);
  return match[2] === "ms" ? n : match[2] === "s" ? n * 1000 : n * 60_000;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts the server; resolves once it listens. */
export async function startWebhookServer(options: WebhookServerOptions): Promise<RunningWebhookServer> {
  const log = options.logger;
  const maxTimeout = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://webhook");
    if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, "ok");
    if (req.method === "GET" && url.pathname === "/readyz") {
      const ready = options.ready ? options.ready() : true;
      return send(res, ready ? 200 : 503, ready ? "ok" : "not ready");
    }
    if (req.method === "GET" && url.pathname === "/metrics" && options.metrics) {
      const text = await options.metrics.registry.metrics();
      res.writeHead(200, { "content-type": options.metrics.registry.contentType });
      res.end(text);
      return;
    }
    const handler = options.handlers.get(url.pathname);
    if (!handler) return send(res, 404, `no webhook at ${url.pathname}`);
    if (req.method !== "POST") return send(res, 405, "admission reviews are POSTed");
    const contentType = req.headers["content-type"] ?? "";
    if (!contentType.startsWith("application/json")) {
      return send(res, 415, `content-type ${JSON.stringify(contentType)} is not application/json`);
    }
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return send(res, 400, "body is not valid JSON");
    }
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) return send(res, 400, parsed.reason);
    const request = parsed.request;
    const timeout = Math.min(maxTimeout, parseTimeoutParam(url.searchParams.get("timeout")) ?? maxTimeout);
    const signal = AbortSignal.timeout(timeout);
    const started = performance.now();
    let decision: AdmissionDecision;
    let result: "allowed" | "patched" | "denied" | "error";
    try {
      decision = await handler(request, signal);
      result = !decision.allowed
        ? "denied"
        : decision.patch && decision.patch.length > 0
          ? "patched"
          : "allowed";
    } catch (error) {
      result = "error";
      // An unexpected failure denies (failurePolicy Fail semantics) with the reason, rather than a bare 500.
      log.error({ err: error, uid: request.uid, path: url.pathname }, "admission handler failed");
      const message = error instanceof Error ? error.message : String(error);
      decision = { allowed: false, status: { code: 500, message, reason: "InternalError" } };
    }
    options.metrics?.admissions.inc({ path: url.pathname, result });
    options.metrics?.admissionSeconds.observe({ path: url.pathname }, (performance.now() - started) / 1000);
    log.info(
      {
        uid: request.uid,
        path: url.pathname,
        kind: request.kind.kind,
        namespace: request.namespace,
        name: request.name,
        operation: request.operation,
        dryRun: request.dryRun === true,
        allowed: decision.allowed,
        ms: Math.round(performance.now() - started),
      },
      "admission",
    );
    send(res, 200, buildAdmissionReview(request.uid, decision));
  }

  const server = createServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      minVersion: "TLSv1.2",
      // Bounded so a slow or stuck client cannot hold a socket forever.
      requestTimeout: maxTimeout + 5_000,
      headersTimeout: 10_000,
      keepAliveTimeout: 30_000,
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        const message = error instanceof Error ? error.message : String(error);
        if (status >= 500) log.error({ err: error }, "webhook request failed");
        if (!res.headersSent) send(res, status, message);
        else res.destroy();
      });
    },
  );
  server.on("tlsClientError", (error) => log.debug({ err: error }, "TLS handshake failed"));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ host: options.host, port }, "webhook server listening");
  return {
    port,
    server,
    setCertificate(certPem, keyPem) {
      server.setSecureContext({ cert: certPem, key: keyPem, minVersion: "TLSv1.2" });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

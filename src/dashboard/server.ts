/**
 * `osm dashboard`'s HTTP server on 127.0.0.1: the page (bundled at build time into build/dashboard/), a
 * server-sent-event stream of the state and of the sidecars' decisions, and two JSON endpoints: explain (the
 * report `osm explain pod/…` prints) and the MeshConfig editor (dry run or save). It acts with the user's
 * kubeconfig credentials, so a request from another web page must not reach it: only this host's names are
 * served (DNS rebinding) and a POST must be `application/json` (a cross-site form cannot send that).
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubeConfig } from "@kubernetes/client-node";
import { ErrorCode, MeshError } from "../errors.ts";
import { formatPodExplanation, type PodExplainReport } from "../guide/explain-pod.ts";
import { type ExplainPodDeps, explainPodReport } from "../guide/explain-pod-run.ts";
import type { LiveFeed } from "./live.ts";
import { patchTraffic } from "./meshconfig-edit.ts";
import type { ExplainAnswer } from "./wire.ts";

/** Where `npm run build` puts the page (scripts/build-dashboard.ts). */
export const DASHBOARD_ASSETS = fileURLToPath(new URL("../../build/dashboard/", import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};
/** Server-sent events: a comment line this often keeps proxies and the browser from timing the stream out. */
const KEEPALIVE_MS = 15_000;
const MAX_BODY = 1 << 20;

export interface DashboardServerOptions {
  readonly kubeConfig: KubeConfig;
  readonly osmNamespace: string;
  readonly feed: LiveFeed;
  readonly host: string;
  readonly port: number;
  readonly assetsDir?: string;
  readonly explainDeps?: ExplainPodDeps;
}

/** One word for the report's verdict, as the page shows it. */
export function explainVerdict(report: PodExplainReport): string {
  switch (report.explanation.verdict) {
    case "dropped":
      return "dropped";
    case "outbound-sidecar":
      return report.outcome.kind === "mesh" ? "proxied" : report.outcome.kind;
    case "dnat-pod-ip":
      return "redirected";
    case "inbound-sidecar":
      return "inbound";
    default:
      return "direct";
  }
}

export function explainAnswer(report: PodExplainReport): ExplainAnswer {
  const text = formatPodExplanation(report);
  const line = text.split("\n").find((l) => l.startsWith("verdict: ")) ?? "";
  return { verdict: explainVerdict(report), summary: line.slice("verdict: ".length), text };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new MeshError(ErrorCode.InvalidArgument, "request body over 1 MiB");
    chunks.push(chunk);
  }
  const value: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new Error("body is not an object");
  return value as Record<string, unknown>;
}

/** Is the request's Host one of this server's loopback names (not a rebound DNS name)? */
export function isLocalHost(host: string | undefined, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
}

export interface DashboardServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

export async function startDashboardServer(options: DashboardServerOptions): Promise<DashboardServer> {
  const assets = options.assetsDir ?? DASHBOARD_ASSETS;
  if (!existsSync(join(assets, "index.html"))) {
    throw new MeshError(
      ErrorCode.NotFound,
      `the dashboard's page is not built (no ${join(assets, "index.html")})`,
      { hint: "run `npm run build` (bash scripts/setup does)" },
    );
  }
  const { feed } = options;
  const clients = new Set<ServerResponse>();
  const broadcast = (event: string, data: unknown): void => {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(text);
  };
  feed.onState((s) => broadcast("state", s));
  feed.onDecision((d) => broadcast("decision", d));
  let port = options.port;

  const events = (res: ServerResponse): void => {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    if (feed.state) res.write(`event: state\ndata: ${JSON.stringify(feed.state)}\n\n`);
    res.write(`event: history\ndata: ${JSON.stringify(feed.decisions)}\n\n`);
    clients.add(res);
    const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
    res.on("close", () => {
      clearInterval(keepalive);
      clients.delete(res);
    });
  };

  const explainRoute = async (body: Record<string, unknown>, res: ServerResponse): Promise<void> => {
    try {
      const report = await explainPodReport(
        options.kubeConfig,
        {
          namespace: String(body["namespace"] ?? ""),
          pod: String(body["pod"] ?? ""),
          destination: String(body["destination"] ?? ""),
          osmNamespace: options.osmNamespace,
        },
        ...(options.explainDeps ? [options.explainDeps] : []),
      );
      sendJson(res, 200, explainAnswer(report));
    } catch (error) {
      if (!(error instanceof MeshError)) throw error;
      sendJson(res, 400, { error: error.message, ...(error.hint ? { hint: error.hint } : {}) });
    }
  };

  const meshConfigRoute = async (body: Record<string, unknown>, res: ServerResponse): Promise<void> => {
    const current = feed.state?.overview.traffic ?? {};
    const answer = await patchTraffic(
      { kubeConfig: options.kubeConfig, osmNamespace: options.osmNamespace },
      current,
      String(body["traffic"] ?? ""),
      body["dryRun"] !== false,
    );
    sendJson(res, 200, answer);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!isLocalHost(req.headers.host, port)) {
      res.writeHead(403, { "content-type": "text/plain" }).end("served to 127.0.0.1 and localhost only\n");
      return;
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method === "POST") {
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
        sendJson(res, 415, { error: "POST needs content-type: application/json" });
        return;
      }
      const body = await readJson(req).catch((error: Error) => error);
      if (body instanceof Error) return sendJson(res, 400, { error: `bad request body: ${body.message}` });
      if (path === "/api/explain") return explainRoute(body, res);
      if (path === "/api/meshconfig") return meshConfigRoute(body, res);
      return sendJson(res, 404, { error: `no such endpoint: POST ${path}` });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD, POST" }).end();
      return;
    }
    if (path === "/api/events") return events(res);
    if (path === "/api/state")
      return sendJson(res, feed.state ? 200 : 503, feed.state ?? { error: "not synced yet" });
    // The page's files: index.html for any other path (the app routes in the browser).
    const file = /^\/assets\/[\w.-]+$/.test(path)
      ? join(assets, path.slice("/assets/".length))
      : join(assets, "index.html");
    if (!existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    res.end(readFileSync(file));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: error.message });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      for (const c of clients) c.end();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

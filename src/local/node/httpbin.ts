/**
 * A small httpbin-compatible server: the local entrypoint of the `kennethreitz/httpbin` image (OSM's demos use
 * it as the mesh's HTTP backend). Serves `/get`, `/headers`, `/ip`, `/status/<code>`, `/` (HEAD and GET answer
 * `HTTP/1.1 200 OK`), and echoes on `/anything`. Run as `node httpbin.ts --port 80 [--host ::]`; with
 * `--tls-port 443 --cert FILE --key FILE` it serves the same over HTTPS too (`osm demo egress-policy`'s
 * httpbin.org).
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";

function headersObject(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? "").replace(
      /(^|-)([a-z])/g,
      (_m, d: string, c: string) => d + c.toUpperCase(),
    );
    out[name] = req.rawHeaders[i + 1] ?? "";
  }
  return out;
}

function origin(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Credentials": "true",
  });
  res.end(head ? undefined : text);
}

/** The request handler, exported so tests can mount it on a loopback port. */
export function handleHttpbin(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://httpbin.local");
  const head = req.method === "HEAD";
  const args = Object.fromEntries(url.searchParams);
  const base = {
    args,
    headers: headersObject(req),
    origin: origin(req),
    url: `http://${req.headers.host ?? ""}${url.pathname}${url.search}`,
  };
  const path = url.pathname;
  if (path === "/" || path === "") {
    const html =
      "<!DOCTYPE html><html><head><title>httpbin.org</title></head><body><h1>httpbin.org</h1><p>A simple HTTP Request &amp; Response Service (osm-ts local entrypoint).</p></body></html>\n";
    res.writeHead(200, {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Length": Buffer.byteLength(html),
    });
    res.end(head ? undefined : html);
    return;
  }
  const json: Record<string, unknown> = {
    "/get": base,
    "/headers": { headers: base.headers },
    "/ip": { origin: base.origin },
    "/user-agent": { "user-agent": req.headers["user-agent"] ?? "" },
  };
  if (Object.hasOwn(json, path)) {
    sendJson(res, 200, json[path], head);
    return;
  }
  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status?.[1]) {
    const code = Number(status[1]);
    res.writeHead(code, { "Content-Length": 0, "Access-Control-Allow-Origin": "*" });
    res.end();
    return;
  }
  if (
    path.startsWith("/anything") ||
    path === "/post" ||
    path === "/put" ||
    path === "/delete" ||
    path === "/patch"
  ) {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () =>
      sendJson(res, 200, { ...base, method: req.method, data: Buffer.concat(chunks).toString() }, head),
    );
    return;
  }
  res.writeHead(404, { "Content-Type": "text/html", "Content-Length": 0 });
  res.end();
}

/** Starts the server (HTTPS with `tls`); resolves once listening. */
export function startHttpbin(
  port: number,
  host = "::",
  tls?: { readonly cert: string; readonly key: string },
): Promise<Server> {
  const server = tls ? createTlsServer(tls, handleHttpbin) : createServer(handleHttpbin);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, ipv6Only: false }, () => resolve(server));
  });
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const flag = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? (argv[i + 1] ?? fallback) : fallback;
  };
  const port = Number(flag("--port", "80"));
  const host = flag("--host", "::");
  const server = await startHttpbin(port, host);
  process.stdout.write(`httpbin listening on port ${port}\n`);
  const tlsPort = flag("--tls-port", "");
  if (tlsPort !== "") {
    const cert = readFileSync(flag("--cert", ""), "utf8");
    await startHttpbin(Number(tlsPort), host, { cert, key: readFileSync(flag("--key", ""), "utf8") });
    process.stdout.write(`httpbin listening on port ${tlsPort} (HTTPS)\n`);
  }
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

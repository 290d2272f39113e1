/**
 * The app's httpGet probes, served where the injector pointed them (src/config/health-probes.ts): one
 * listener per probe kind in use (liveness 15901, readiness 15902, startup 15903; OSM's rules leave these
 * ports unredirected), outside access control: the kubelet is no mesh source. An http request whose path
 * starts with a probe's `/osm-<kind>-probe/<container>` goes to 127.0.0.1:<original port> with that prefix
 * replaced by the original path (Envoy's prefix rewrite), other paths get 404; a connection that starts a
 * TLS handshake is relayed as bytes to the kind's https probe (the last one declared, as OSM's single TCP
 * proxy filter chain per kind). Loaded only when the pod has such probes (it brings node:http).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { type ForwardedProbe, PROBE_KINDS, PROBE_PORTS, probePath } from "../config/health-probes.ts";
import { type RequestAction, serveHttpRelay } from "./http-relay.ts";
import type { SidecarLogger } from "./log.ts";
import { relay } from "./relay.ts";

const LOOPBACK = "127.0.0.1";
/** The first byte of a TLS record carrying a handshake. */
const TLS_HANDSHAKE = 0x16;

export interface ProbeListenerOptions {
  readonly probes: readonly ForwardedProbe[];
  readonly logger: SidecarLogger;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Overrides the kinds' ports (tests). */
  readonly ports?: Partial<Record<ForwardedProbe["kind"], number>>;
}

/** Where an http probe request goes: the longest matching prefix wins (`app` does not take `app2`'s requests). */
export function probeTarget(
  probes: readonly ForwardedProbe[],
  url: string,
): { readonly port: number; readonly path: string } | undefined {
  let best: { prefix: string; probe: ForwardedProbe } | undefined;
  for (const probe of probes) {
    if (probe.scheme !== "http") continue;
    const prefix = probePath(probe.kind, probe.container);
    if (url.startsWith(prefix) && (best === undefined || prefix.length > best.prefix.length)) {
      best = { prefix, probe };
    }
  }
  if (best === undefined) return undefined;
  return { port: best.probe.port, path: best.probe.path + url.slice(best.prefix.length) };
}

function serveHttp(client: Socket, probes: readonly ForwardedProbe[], options: ProbeListenerOptions): void {
  serveHttpRelay({
    client,
    upstream: { address: LOOPBACK, port: 0 },
    connectTimeoutMs: options.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
    decide: (req): RequestAction => {
      const target = probeTarget(probes, req.url ?? "/");
      if (target === undefined) return { kind: "answer", status: 404 };
      return { kind: "forward", to: { address: LOOPBACK, port: target.port }, path: target.path };
    },
    done: () => {},
  });
}

function relayTls(client: Socket, port: number, options: ProbeListenerOptions): void {
  const upstream = connect({ host: LOOPBACK, port, allowHalfOpen: true, noDelay: true });
  const timer = setTimeout(() => upstream.destroy(new Error("connect-timeout")), options.connectTimeoutMs);
  upstream.once("error", () => {
    clearTimeout(timer);
    client.resetAndDestroy();
  });
  upstream.once("connect", () => {
    clearTimeout(timer);
    upstream.removeAllListeners("error");
    relay(client, upstream, options.idleTimeoutMs, () => {});
  });
}

function onConnection(
  client: Socket,
  probes: readonly ForwardedProbe[],
  options: ProbeListenerOptions,
): void {
  client.on("error", () => {});
  const https = probes.findLast((p) => p.scheme === "https");
  if (https === undefined) {
    serveHttp(client, probes, options);
    return;
  }
  // The first bytes say which: a TLS handshake is relayed, anything else parsed as HTTP (bytes put back).
  client.once("data", (chunk: Buffer) => {
    client.pause();
    client.unshift(chunk);
    if (chunk[0] === TLS_HANDSHAKE) relayTls(client, https.port, options);
    else serveHttp(client, probes, options);
  });
  client.resume();
}

/** Opens the listeners of the probe kinds in use (IPv4 and IPv6, as the kubelet dials the pod IP). */
export async function startProbeListeners(options: ProbeListenerOptions): Promise<{ close(): void }> {
  const servers: Server[] = [];
  for (const kind of PROBE_KINDS) {
    const probes = options.probes.filter((p) => p.kind === kind);
    if (probes.length === 0) continue;
    const port = options.ports?.[kind] ?? PROBE_PORTS[kind];
    for (const [host, ipv6Only] of [
      ["0.0.0.0", false],
      ["::", true],
    ] as const) {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) =>
        onConnection(client, probes, options),
      );
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen({ host, port, ipv6Only }, () => {
            server.off("error", reject);
            resolve();
          });
        });
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (ipv6Only && (code === "EAFNOSUPPORT" || code === "EADDRNOTAVAIL")) continue;
        for (const open of servers) open.close();
        throw new Error(`${kind} probe listener cannot listen on port ${port}: ${code ?? cause}`, { cause });
      }
      server.on("error", (error) =>
        options.logger.warn({ kind, error: error.message }, "probe listener error"),
      );
      servers.push(server);
    }
    options.logger.info(
      { kind, port, probes: probes.map((p) => `${p.container}=${p.scheme}:${p.port}${p.path}`) },
      "probe listener open",
    );
  }
  return {
    close: () => {
      for (const server of servers) server.close();
    },
  };
}

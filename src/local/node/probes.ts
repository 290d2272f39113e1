/**
 * One probe attempt (exec, httpGet over HTTP or HTTPS, tcpSocket), as the kubelet runs them: httpGet/tcpSocket
 * from the host to the pod IP (the host sits on the bridge), exec inside the container. True on success.
 */
import { request } from "node:http";
import { request as requestTls } from "node:https";
import { connect } from "node:net";
import type { V1Container, V1Probe } from "@kubernetes/client-node";

export type ExecProbe = (command: readonly string[], timeoutMs: number) => Promise<number>;

function portOf(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === "number") return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Runs `probe` once against the pod at `podIP`. */
export async function runProbe(
  probe: V1Probe,
  container: V1Container,
  podIP: string,
  execProbe: ExecProbe,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.exec?.command) {
    try {
      return (await execProbe(probe.exec.command, timeoutMs)) === 0;
    } catch {
      return false;
    }
  }
  if (probe.httpGet) {
    const port = portOf(probe.httpGet.port as number | string | undefined, container);
    if (port === undefined) return false;
    const host = probe.httpGet.host || podIP;
    const headers: Record<string, string> = { "User-Agent": "kube-probe/1.32" };
    for (const h of probe.httpGet.httpHeaders ?? []) headers[h.name] = h.value;
    // scheme HTTPS: like the kubelet, TLS without verifying the certificate (the probe checks liveness only).
    const tls = (probe.httpGet.scheme ?? "HTTP").toUpperCase() === "HTTPS";
    const send = tls ? requestTls : request;
    return new Promise((resolve) => {
      const req = send(
        {
          host,
          port,
          path: probe.httpGet?.path ?? "/",
          method: "GET",
          headers,
          timeout: timeoutMs,
          ...(tls ? { rejectUnauthorized: false } : {}),
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400);
        },
      );
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });
  }
  if (probe.tcpSocket) {
    const port = portOf(probe.tcpSocket.port as number | string | undefined, container);
    if (port === undefined) return false;
    return new Promise((resolve) => {
      const sock = connect({ host: probe.tcpSocket?.host || podIP, port, timeout: timeoutMs });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("timeout", () => {
        sock.destroy();
        resolve(false);
      });
      sock.once("error", () => resolve(false));
    });
  }
  return false;
}

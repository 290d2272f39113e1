/**
 * Egress policies that look at a connection's first bytes (src/egress/decide.ts): `https` rules read the TLS
 * ClientHello's server name without terminating TLS (the bytes read are put back and relayed as they
 * came), `http` rules see each request (egress-http.ts). A client that sends nothing within
 * INSPECT_TIMEOUT_MS is refused: only the `tcp`/`tcp-server-first` protocols suit servers that speak first.
 * These connections use the JS relay (relay.ts): the bytes inspected are in Node's buffers, which the splice
 * relay cannot take over.
 */
import { connect, type Socket } from "node:net";
import { decideTls, type EgressTable, type PortRule } from "../egress/decide.ts";
import type { Destination } from "./decide.ts";
import { relay } from "./relay.ts";

/** How long a connection to an http/https Egress port may stay silent before it is refused. */
export const INSPECT_TIMEOUT_MS = 10_000;

/** How an inspected connection ended: allowed by `egress`, or refused for `refused`. */
export interface InspectOutcome {
  readonly egress?: string;
  readonly refused?: string;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly error?: string;
  /** HTTP only: requests forwarded, and answered 404 (outside the Egress's HTTPRouteGroup matches). */
  readonly requests?: number;
  readonly notFound?: number;
}

export interface InspectRequest {
  readonly client: Socket;
  readonly upstream: Destination;
  readonly table: EgressTable;
  readonly tls: readonly PortRule[];
  readonly http: readonly PortRule[];
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly done: (outcome: InspectOutcome) => void;
}

export function inspectEgress(request: InspectRequest): void {
  const { client, table, upstream } = request;
  let settled = false;
  const refuse = (reason: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (!client.destroyed) client.resetAndDestroy();
    request.done({ refused: reason, bytesUp: 0, bytesDown: 0 });
  };
  const timer = setTimeout(
    () =>
      refuse(
        `the client sent nothing within ${INSPECT_TIMEOUT_MS / 1000} s (Egress http/https rules read the first bytes)`,
      ),
    INSPECT_TIMEOUT_MS,
  );
  const proceed = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    return true;
  };
  client.once("close", () => refuse("the client closed before sending a request"));
  const httpPath = (): void => {
    if (request.http.length === 0) {
      refuse(
        `no Egress for service account ${table.serviceAccount.split("/")[1]} allows non-TLS traffic to ${upstream.address}:${upstream.port} (only https)`,
      );
      return;
    }
    if (!proceed()) return;
    client.removeAllListeners("close");
    void import("./egress-http.ts").then((module) => module.serveEgressHttp(request));
  };
  if (request.tls.length === 0) {
    // Nothing to read before the first request: the HTTP parser reads it.
    httpPath();
    return;
  }
  // Loaded on the first https Egress connection only (it brings node:tls and node:crypto): idle RSS is per pod.
  void import("read-tls-client-hello").then(({ getExtensionData, NonTlsError, readTlsClientHello }) =>
    readTlsClientHello(client).then(
      (hello) => {
        const serverName = getExtensionData(hello, "server_name")?.serverName;
        const verdict = decideTls(table, request.tls, serverName, upstream);
        if (verdict.kind === "refuse") return refuse(verdict.reason);
        if (!proceed()) return;
        client.removeAllListeners("close");
        relayTo(request, verdict.egress);
      },
      (error: unknown) => {
        if (error instanceof NonTlsError) httpPath();
        else refuse(`unreadable TLS ClientHello: ${(error as Error).message}`);
      },
    ),
  );
}

/** Connects the original destination in JS and relays, the ClientHello bytes first (they were put back). */
function relayTo(request: InspectRequest, egress: string): void {
  const { client, upstream: to } = request;
  const upstream = connect({ host: to.address, port: to.port, allowHalfOpen: true, noDelay: true });
  const timer = setTimeout(() => upstream.destroy(new Error("connect-timeout")), request.connectTimeoutMs);
  upstream.once("error", (error: NodeJS.ErrnoException) => {
    // Before connect only (removed once connected: the relay reports errors from then on).
    clearTimeout(timer);
    client.resetAndDestroy();
    const reason =
      error.message === "connect-timeout" ? "connect-timeout" : `connect:${error.code ?? error.message}`;
    request.done({ egress, bytesUp: 0, bytesDown: 0, error: reason });
  });
  upstream.once("connect", () => {
    clearTimeout(timer);
    upstream.removeAllListeners("error");
    relay(client, upstream, request.idleTimeoutMs, (result) => request.done({ egress, ...result }));
  });
}

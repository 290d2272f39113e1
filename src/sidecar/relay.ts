/**
 * Joins an accepted client socket and its connected upstream: bytes both ways with backpressure (pipe),
 * half-close both ways (a FIN from one side ends only that direction; both sockets are allowHalfOpen), an
 * idle timeout, and resets propagated (an RST from one side resets the other, never a silent FIN).
 */
import type { Socket } from "node:net";
import { pendingSocketError, type RelayResult } from "./native/index.ts";

/**
 * How often a socket that has sent its FIN is checked for a later reset. libuv stops polling a socket once
 * it has read its EOF, so without this a half-closed peer that resets holds the pair until the idle timeout
 * (a cheap way to exhaust the sidecar's fds). Well under the 1 s within which such a pair must be freed.
 */
export const RESET_CHECK_MS = 250;

export function relay(
  client: Socket,
  upstream: Socket,
  idleTimeoutMs: number,
  done: (result: RelayResult) => void,
): void {
  let error: string | undefined;
  let open = 2;
  const onClose = (): void => {
    open -= 1;
    if (open === 0) done({ bytesUp: client.bytesRead, bytesDown: client.bytesWritten, error });
  };
  // An error on one side resets the other: the peer learns the connection failed instead of seeing a clean end.
  const failOther = (other: Socket) => (cause: NodeJS.ErrnoException) => {
    error ??= cause.code ?? cause.message;
    if (!other.destroyed) other.resetAndDestroy();
  };
  client.on("error", failOther(upstream));
  upstream.on("error", failOther(client));
  client.once("close", onClose);
  upstream.once("close", onClose);
  if (idleTimeoutMs > 0) {
    const onIdle = (): void => {
      error ??= "idle-timeout";
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    client.setTimeout(idleTimeoutMs, onIdle);
    upstream.setTimeout(idleTimeoutMs, onIdle);
  }
  for (const [socket, other] of [
    [client, upstream],
    [upstream, client],
  ] as const) {
    socket.once("end", () => watchForReset(socket, failOther(other)));
  }
  client.pipe(upstream);
  upstream.pipe(client);
}

/** After `socket`'s EOF: polls its pending error until it closes, reporting a reset as an `error` would. */
function watchForReset(socket: Socket, onReset: (cause: NodeJS.ErrnoException) => void): void {
  const timer = setInterval(() => {
    if (socket.destroyed) return;
    const code = pendingSocketError(socket);
    if (code === undefined) return;
    clearInterval(timer);
    onReset(Object.assign(new Error(`${code} after end`), { code }));
    socket.resetAndDestroy();
  }, RESET_CHECK_MS);
  timer.unref();
  socket.once("close", () => clearInterval(timer));
}

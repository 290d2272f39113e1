/**
 * Joins an accepted client socket and its connected upstream: bytes both ways with backpressure (pipe),
 * half-close both ways (a FIN from one side ends only that direction; both sockets are allowHalfOpen), an
 * idle timeout, and resets propagated (an RST from one side resets the other, never a silent FIN).
 */
import type { Socket } from "node:net";

export interface RelayResult {
  /** Bytes from the client to the upstream. */
  readonly bytesUp: number;
  /** Bytes from the upstream to the client. */
  readonly bytesDown: number;
  /** The first error: `idle-timeout`, or an errno code such as `ECONNRESET`, `EPIPE`. */
  readonly error: string | undefined;
}

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
  client.pipe(upstream);
  upstream.pipe(client);
}

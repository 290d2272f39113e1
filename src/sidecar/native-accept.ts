/**
 * `--accept native`: the relay threads own the listening sockets (one per thread and port/family,
 * SO_REUSEPORT), accept, read the original destination, decide with the routing table compiled from
 * decide.ts (native-table.ts) and connect or refuse there; this thread only installs the table on every
 * config change, counts and logs the batched completions, and takes the connections the table leaves to JS
 * (Egress policies, access control) as sockets for data-plane.ts's usual path.
 */
import { closeSync } from "node:fs";
import { Socket, type SocketConstructorOpts } from "node:net";
import { type ConnectionOutcome, countRelayError, recordConnection } from "./connection-record.ts";
import type { Direction } from "./data-plane.ts";
import type { RoutingTable } from "./decide.ts";
import type { AccessLog, SidecarLogger } from "./log.ts";
import type { DirectionMetrics, SidecarMetrics } from "./metrics.ts";
import type { ListenTimeouts, NativeAccept, NativeConnection, NativeRelay } from "./native/index.ts";
import { encodeRoutingTable } from "./native-table.ts";

export interface NativeAcceptOptions {
  readonly relay: NativeRelay;
  readonly logger: SidecarLogger;
  readonly accessLog: AccessLog;
  readonly metrics: SidecarMetrics;
  readonly bound: Readonly<Record<Direction, DirectionMetrics>>;
  readonly timeouts: ListenTimeouts;
  /** A connection the table left to JS, as a paused socket; call `done` once it is finished. */
  readonly handoff: (client: Socket, direction: Direction, family: 4 | 6, done: () => void) => void;
  /** Connections JS holds now (for the log line of a dropped accept). */
  readonly jsActive: () => number;
}

/** Node's own option for net.Server's `pauseOnConnect` (not in the public typings): no read before JS decides. */
type HandoffSocketOptions = SocketConstructorOpts & { pauseOnCreate: boolean };

export class NativeAcceptor {
  readonly #options: NativeAcceptOptions;
  readonly #accept: NativeAccept;
  /** The threads' open connections last added to osm_sidecar_active_connections, per direction. */
  readonly #shown = { outbound: 0, inbound: 0 };

  constructor(options: NativeAcceptOptions) {
    this.#options = options;
    this.#accept = options.relay.accept({
      connection: (connection) => this.#finished(connection),
      handoff: (fd, direction, family) => {
        let client: Socket;
        try {
          client = new Socket({
            fd,
            allowHalfOpen: true,
            readable: true,
            writable: true,
            pauseOnCreate: true,
          } as HandoffSocketOptions);
        } catch (cause) {
          // Node could not wrap the fd (out of memory): close it (the client sees a reset), never crash.
          closeSync(fd);
          this.#accept.handoffDone();
          const code = (cause as NodeJS.ErrnoException).code ?? "EUNKNOWN";
          options.metrics.dropped.inc({ direction, cause: `handoff:${code}` });
          options.logger.warn({ direction, family, error: `handoff:${code}` }, "connection dropped");
          return;
        }
        options.handoff(client, direction, family, () => this.#accept.handoffDone());
      },
      lost: (count) => {
        options.logger.warn({ lost: count }, "connection records lost (Node fell behind the relay threads)");
      },
      dropped: (direction, family, cause) => {
        options.metrics.dropped.inc({ direction, cause });
        options.logger.warn(
          { direction, family, error: cause, active: this.open + options.jsActive() },
          "connection dropped",
        );
      },
    });
    // osm_sidecar_active_connections counts the threads' connections too, as of the scrape.
    options.metrics.registry.beforeRender(() => {
      const open = this.#accept.open();
      for (const direction of ["outbound", "inbound"] as const) {
        options.bound[direction].active.add(open[direction] - this.#shown[direction]);
        this.#shown[direction] = open[direction];
      }
    });
  }

  /** The table the threads decide with from their next accept on. */
  install(table: RoutingTable | undefined): void {
    this.#accept.installTable(encodeRoutingTable(table));
  }

  /** Listens on `port` for both families (IPv6 skipped where the host has none); returns how to stop. */
  listen(direction: Direction, port: number): { close(): void } {
    for (const family of [4, 6] as const) {
      try {
        this.#accept.listen(direction, port, family, this.#options.timeouts);
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (family === 6 && (code === "EAFNOSUPPORT" || code === "EADDRNOTAVAIL")) {
          this.#options.logger.warn({ port, code }, `${direction} listener: no IPv6 here, IPv4 only`);
          continue;
        }
        this.#accept.unlisten(direction);
        throw cause;
      }
    }
    return { close: () => this.#accept.unlisten(direction) };
  }

  /** Connections the threads accepted and still hold (handed-over ones are JS's). */
  get open(): number {
    const { outbound, inbound } = this.#accept.open();
    return outbound + inbound;
  }

  /** The same counters and access-log line as data-plane.ts's path for a connection it decided. */
  #finished(connection: NativeConnection): void {
    const { metrics, accessLog, bound } = this.#options;
    const { direction, decision, error } = connection;
    if (error?.startsWith("original-dst:")) {
      metrics.errors.inc({ direction, kind: "original-dst" });
    } else {
      bound[direction][decision].inc();
      if (decision === "refuse") metrics.refused.inc({ direction, reason: connection.reason });
      else {
        if (connection.connectSeconds !== undefined) {
          bound[direction].connectSeconds.observe(connection.connectSeconds);
        }
        bound[direction].bytesUp.inc(connection.bytesUp);
        bound[direction].bytesDown.inc(connection.bytesDown);
        countRelayError(metrics, direction, error);
      }
    }
    const outcome: ConnectionOutcome = {
      src: connection.src,
      dst: connection.dst,
      decision,
      reason: connection.reason,
      service: connection.service,
      trafficTarget: connection.trafficTarget,
      upstream: connection.upstream,
      durationMs: connection.durationMs,
    };
    recordConnection(accessLog, metrics, direction, outcome, {
      bytesUp: connection.bytesUp,
      bytesDown: connection.bytesDown,
      error,
    });
  }
}

/**
 * The sidecar's listeners: outbound (15001, opened and closed as the config requires) and inbound (15003),
 * each on 0.0.0.0 and [::] (IPv6-only, so IPv4 connections never arrive as v4-mapped sockets, whose
 * original destination would need the other socket option). Per connection: original destination, decision,
 * then refuse (RST as soon as the client speaks), or connect (with a timeout) and relay.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { ErrorCode, MeshError } from "../errors.ts";
import type { ConfigStore } from "./config-store.ts";
import {
  type ConnectionEnd,
  countRelayError,
  hostPort,
  outcomeOf,
  recordConnection,
} from "./connection-record.ts";
import {
  atConnectionLimit,
  type Decision,
  type Destination,
  decideInbound,
  decideOutbound,
  outboundListenerWanted,
} from "./decide.ts";
import { inspectEgress } from "./egress-inspect.ts";
import type { AccessLog, SidecarLogger } from "./log.ts";
import { bindDirectionMetrics, type DirectionMetrics, type SidecarMetrics } from "./metrics.ts";
import { type NativeRelay, startNativeRelay } from "./native/index.ts";
import { NativeAcceptor } from "./native-accept.ts";
import { relay } from "./relay.ts";

export type Direction = "outbound" | "inbound";

export interface DataPlaneOptions {
  readonly logger: SidecarLogger;
  /** One line per connection, whatever the log level. */
  readonly accessLog: AccessLog;
  readonly metrics: SidecarMetrics;
  readonly store: ConfigStore;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** Resets the client when the upstream has not accepted within this time. */
  readonly connectTimeoutMs: number;
  /** Resets both sides after this long without a byte either way (0 = never). */
  readonly idleTimeoutMs: number;
  /** SO_ORIGINAL_DST; injected so the data plane runs without the addon in unit tests. */
  readonly originalDestination: (socket: Socket, family: 4 | 6) => Destination;
  /** `splice`: relay in the addon's splice(2) threads; `js`: relay.ts (streams). */
  readonly relayMode?: "js" | "splice";
  /** `native`: the relay threads accept and decide (native-accept.ts; needs the splice relay); `js`: Node. */
  readonly acceptMode?: "js" | "native";
  /** How many splice relay threads (default 1). */
  readonly relayThreads?: number;
  /** Called when a listener fails for good (e.g. EADDRINUSE): the process should exit. */
  readonly onFatal: (error: Error) => void;
}

const LISTEN_BACKLOG = 4096;
/** Longest a refused connection waits for the client's first byte before the reset (see resetWhenHeard). */
export const REFUSE_GRACE_MS = 100;

/**
 * Resets a refused connection as soon as the client has sent its first bytes (or FIN), at most `graceMs`
 * after accept. An RST that lands before the client has noticed its connect completing is reported by
 * curl as a connect failure (exit 7), one after it as a receive failure (exit 56): measured here, the IPv6
 * case lost that race. Waiting for the first byte makes a refusal look the same every time, as OSM users saw
 * it from Envoy, and still costs a client that speaks first (HTTP, TLS) no time at all.
 */
function resetWhenHeard(socket: Socket, graceMs: number): void {
  const reset = (): void => {
    clearTimeout(timer);
    if (!socket.destroyed) socket.resetAndDestroy();
  };
  const timer = setTimeout(reset, graceMs);
  socket.once("data", reset);
  socket.once("end", reset);
  socket.once("close", () => clearTimeout(timer));
}

/** A monotonic clock in ms: `performance.now()` would load the perf_hooks modules (~0.5 MB of RSS per pod). */
function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The listening sockets (v4 + v6) of one port. */
interface ListenerPair {
  close(): void;
}

export class DataPlane {
  readonly #options: DataPlaneOptions;
  readonly #sockets = new Set<Socket>();
  #outbound: ListenerPair | undefined;
  #inbound: ListenerPair | undefined;
  #draining = false;
  readonly #outboundMetrics: DirectionMetrics;
  #nativeRelay: NativeRelay | undefined;
  readonly #nativeAccept: NativeAcceptor | undefined;
  readonly #inboundMetrics: DirectionMetrics;
  #active = 0;
  #unsubscribe: (() => void) | undefined;
  /** Outbound open/close steps run one after another, so a quick flip never leaves a stray listener. */
  #sync: Promise<void> = Promise.resolve();

  constructor(options: DataPlaneOptions) {
    this.#options = options;
    if (options.acceptMode === "native" && options.relayMode !== "splice") {
      throw new MeshError(ErrorCode.InvalidArgument, "native accept needs the splice relay", {
        hint: "use --accept native with --relay splice, or --accept js",
      });
    }
    if (options.relayMode === "splice") this.#nativeRelay = startRelayThread(options.relayThreads ?? 1);
    this.#outboundMetrics = bindDirectionMetrics(options.metrics, "outbound");
    this.#inboundMetrics = bindDirectionMetrics(options.metrics, "inbound");
    if (options.acceptMode === "native" && this.#nativeRelay !== undefined) {
      this.#nativeAccept = new NativeAcceptor({
        relay: this.#nativeRelay,
        logger: options.logger,
        accessLog: options.accessLog,
        metrics: options.metrics,
        bound: { outbound: this.#outboundMetrics, inbound: this.#inboundMetrics },
        timeouts: {
          connectTimeoutMs: options.connectTimeoutMs,
          idleMs: options.idleTimeoutMs,
          refuseGraceMs: REFUSE_GRACE_MS,
        },
        handoff: (client, direction, family, done) => this.#onConnection(direction, family, client, done),
        jsActive: () => this.#active,
      });
    }
  }

  /** Connections open now (both directions), the relay threads' own included. */
  get activeConnections(): number {
    return this.#active + (this.#nativeAccept?.open ?? 0);
  }

  get outboundOpen(): boolean {
    return this.#outbound !== undefined;
  }

  get inboundOpen(): boolean {
    return this.#inbound !== undefined;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Opens the inbound listener and follows the config for the outbound one. */
  async start(): Promise<void> {
    // The relay threads decide with the table compiled from the config in force, installed before any
    // listener opens and again on every change (before the outbound listener follows it).
    this.#nativeAccept?.install(this.#options.store.table);
    this.#inbound = await this.#listen("inbound", this.#options.inboundPort);
    this.#unsubscribe = this.#options.store.subscribe(() => {
      this.#nativeAccept?.install(this.#options.store.table);
      void this.#queueSync();
    });
    await this.#queueSync();
  }

  /** Resolves once the outbound listener matches the config in force. */
  settled(): Promise<void> {
    return this.#sync;
  }

  #queueSync(): Promise<void> {
    this.#sync = this.#sync.then(
      () => this.#syncOutbound(),
      () => this.#syncOutbound(),
    );
    return this.#sync;
  }

  async #syncOutbound(): Promise<void> {
    const wanted = !this.#draining && outboundListenerWanted(this.#options.store.table);
    if (wanted && this.#outbound === undefined) {
      const pair = await this.#listen("outbound", this.#options.outboundPort);
      if (this.#draining) {
        pair.close();
        return;
      }
      this.#outbound = pair;
      this.#options.metrics.outboundListenerOpen.set(1);
      this.#options.logger.info({ port: this.#options.outboundPort }, "outbound listener open");
    } else if (!wanted && this.#outbound !== undefined) {
      this.#outbound.close();
      this.#outbound = undefined;
      this.#options.metrics.outboundListenerOpen.set(0);
      this.#options.logger.info(
        { port: this.#options.outboundPort },
        "outbound listener closed (egress disabled and no mesh upstreams, or no config yet)",
      );
    }
  }

  async #listen(direction: Direction, port: number): Promise<ListenerPair> {
    if (this.#nativeAccept !== undefined) {
      try {
        return this.#nativeAccept.listen(direction, port);
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        const error = new Error(`${direction} listener cannot listen on port ${port}: ${code ?? cause}`, {
          cause,
        });
        this.#options.onFatal(error);
        throw error;
      }
    }
    const servers: Server[] = [];
    for (const family of [4, 6] as const) {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) =>
        this.#onConnection(direction, family, socket),
      );
      try {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          const host = family === 4 ? "0.0.0.0" : "::";
          server.listen({ host, port, backlog: LISTEN_BACKLOG, ipv6Only: family === 6 }, () => {
            server.off("error", reject);
            resolve();
          });
        });
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (family === 6 && (code === "EAFNOSUPPORT" || code === "EADDRNOTAVAIL")) {
          this.#options.logger.warn({ port, code }, `${direction} listener: no IPv6 here, IPv4 only`);
          continue;
        }
        for (const open of servers) open.close();
        const error = new Error(`${direction} listener cannot listen on port ${port}: ${code ?? cause}`, {
          cause,
        });
        this.#options.onFatal(error);
        throw error;
      }
      server.on("error", (error: NodeJS.ErrnoException) => this.#onListenerError(direction, family, error));
      servers.push(server);
    }
    return { close: () => closeServers(servers) };
  }

  /**
   * An accept() that failed. Out of fds (EMFILE/ENFILE) or memory, libuv has already accepted and closed the
   * waiting connections with its reserved fd (the clients see a reset): each such event is counted and
   * logged as a dropped connection, and the listener goes on. Anything else is fatal.
   */
  #onListenerError(direction: Direction, family: 4 | 6, error: NodeJS.ErrnoException): void {
    const code = error.code ?? "EUNKNOWN";
    if (error.syscall === "accept" && ACCEPT_DROP_CODES.has(code)) {
      this.#options.metrics.dropped.inc({ direction, cause: `accept:${code}` });
      this.#options.logger.warn(
        { direction, family, error: `accept:${code}`, active: this.#active },
        "connection dropped",
      );
      return;
    }
    this.#options.onFatal(error);
  }

  /** `onFinish`: after the connection's end (a connection the relay threads handed over: they count it). */
  #onConnection(direction: Direction, family: 4 | 6, client: Socket, onFinish?: () => void): void {
    const { accessLog, metrics, store } = this.#options;
    const bound = direction === "outbound" ? this.#outboundMetrics : this.#inboundMetrics;
    const started = nowMs();
    this.#active += 1;
    this.#sockets.add(client);
    bound.active.inc();
    const source = hostPort(client.remoteAddress, client.remotePort);
    const local: Destination = { address: client.localAddress ?? "", port: client.localPort ?? 0 };
    let original: Destination | undefined;
    let finished = false;
    const finish = (
      decision: Exclude<Decision, { kind: "inspect" | "inbound-http" }>,
      end: ConnectionEnd,
    ): void => {
      if (finished) return;
      finished = true;
      this.#active -= 1;
      this.#sockets.delete(client);
      bound.active.dec();
      onFinish?.();
      const durationMs = Math.round((nowMs() - started) * 1000) / 1000;
      const dst = original === undefined ? undefined : hostPort(original.address, original.port);
      recordConnection(accessLog, metrics, direction, outcomeOf(decision, source, dst, durationMs), end);
    };
    client.on("error", () => {}); // reported through relay/finish; an RST from the client must never crash us

    try {
      original = this.#options.originalDestination(client, family);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? "EUNKNOWN";
      metrics.errors.inc({ direction, kind: "original-dst" });
      client.resetAndDestroy();
      finish(
        { kind: "refuse", reason: "not-redirected" },
        { bytesUp: 0, bytesDown: 0, error: `original-dst:${code}` },
      );
      return;
    }
    let decision: Decision;
    const before = this.activeConnections - 1;
    if (direction === "outbound") {
      decision = decideOutbound(store.table, original, local, before);
    } else if (atConnectionLimit(store.table, before)) {
      decision = { kind: "refuse", reason: "connection-limit" };
    } else {
      decision = decideInbound(store.table, original, local, family, client.remoteAddress ?? "");
    }
    if (decision.kind === "inspect") {
      this.#inspect(direction, bound, client, decision, finish);
      return;
    }
    if (decision.kind === "inbound-http") {
      this.#inboundHttp(bound, client, decision, finish);
      return;
    }
    bound[decision.kind].inc();
    if (decision.kind === "refuse") {
      metrics.refused.inc({ direction, reason: decision.reason });
      resetWhenHeard(client, REFUSE_GRACE_MS);
      finish(decision, { bytesUp: 0, bytesDown: 0 });
      return;
    }

    if (this.#nativeRelay !== undefined) {
      this.#connectInRelay(this.#nativeRelay, direction, bound, client, decision, finish);
      return;
    }
    const upstream = connect({
      host: decision.upstream.address,
      port: decision.upstream.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    upstream.pause(); // not one byte read in JS before the relay takes over (the splice relay needs that)
    let connected = false;
    const timer = setTimeout(() => {
      metrics.errors.inc({ direction, kind: "connect-timeout" });
      upstream.destroy();
      client.resetAndDestroy();
      finish(decision, { bytesUp: 0, bytesDown: 0, error: "connect-timeout" });
    }, this.#options.connectTimeoutMs);
    const onEarlyClientClose = (): void => {
      if (!connected) {
        clearTimeout(timer);
        upstream.destroy();
        finish(decision, { bytesUp: 0, bytesDown: 0, error: "client-closed" });
      }
    };
    client.once("close", onEarlyClientClose);
    upstream.once("error", (cause: NodeJS.ErrnoException) => {
      if (connected) return; // relay handles errors after connect
      clearTimeout(timer);
      metrics.errors.inc({ direction, kind: "connect" });
      client.resetAndDestroy();
      finish(decision, { bytesUp: 0, bytesDown: 0, error: `connect:${cause.code ?? cause.message}` });
    });
    upstream.once("connect", () => {
      connected = true;
      clearTimeout(timer);
      client.off("close", onEarlyClientClose);
      bound.connectSeconds.observe((nowMs() - started) / 1000);
      const relayFn = this.#nativeRelay === undefined ? relay : this.#nativeRelay.relay;
      try {
        relayFn(client, upstream, this.#options.idleTimeoutMs, (result) => {
          bound.bytesUp.inc(result.bytesUp);
          bound.bytesDown.inc(result.bytesDown);
          countRelayError(metrics, direction, result.error);
          finish(decision, { bytesUp: result.bytesUp, bytesDown: result.bytesDown, error: result.error });
        });
      } catch (cause) {
        // The splice relay could not take the pair (out of file descriptors or pipes): reset, never crash.
        metrics.errors.inc({ direction, kind: "relay" });
        upstream.resetAndDestroy();
        client.resetAndDestroy();
        const code = (cause as NodeJS.ErrnoException).code ?? "EUNKNOWN";
        finish(decision, { bytesUp: 0, bytesDown: 0, error: `relay:${code}` });
      }
    });
  }

  /** Egress rules that read the first bytes decide (egress-inspect.ts); counted and logged once decided. */
  #inspect(
    direction: Direction,
    bound: DirectionMetrics,
    client: Socket,
    decision: Extract<Decision, { kind: "inspect" }>,
    finish: (decision: Exclude<Decision, { kind: "inspect" | "inbound-http" }>, end: ConnectionEnd) => void,
  ): void {
    const { metrics, store } = this.#options;
    inspectEgress({
      client,
      upstream: decision.upstream,
      table: store.table!.egress!,
      tls: decision.tls,
      http: decision.http,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      idleTimeoutMs: this.#options.idleTimeoutMs,
      done: ({ egress, refused, ...fields }) => {
        const final: Decision =
          egress !== undefined
            ? { kind: "passthrough", upstream: decision.upstream, egress }
            : { kind: "refuse", reason: "egress-disabled", detail: refused ?? "refused" };
        bound[final.kind].inc();
        if (final.kind === "refuse") metrics.refused.inc({ direction, reason: final.reason });
        else {
          bound.bytesUp.inc(fields.bytesUp);
          bound.bytesDown.inc(fields.bytesDown);
        }
        finish(final, fields);
      },
    });
  }

  /** Requests decided one by one by HTTPRouteGroup routes (inbound-http.ts); the connection counts as passthrough. */
  #inboundHttp(
    bound: DirectionMetrics,
    client: Socket,
    decision: Extract<Decision, { kind: "inbound-http" }>,
    finish: (decision: Exclude<Decision, { kind: "inspect" | "inbound-http" }>, end: ConnectionEnd) => void,
  ): void {
    const { store } = this.#options;
    bound.passthrough.inc();
    void import("./inbound-http.ts").then((module) =>
      module.serveInboundHttp({
        client,
        upstream: decision.upstream,
        peer: decision.peer,
        access: () => store.table?.inbound,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        idleTimeoutMs: this.#options.idleTimeoutMs,
        done: (outcome) => {
          bound.bytesUp.inc(outcome.bytesUp);
          bound.bytesDown.inc(outcome.bytesDown);
          const { peer: _peer, ...allowed } = decision;
          finish({ ...allowed, kind: "passthrough" }, { ...outcome });
        },
      }),
    );
  }

  /**
   * The splice relay's path: the relay thread connects the upstream and relays, so this thread only accepts,
   * decides and logs (no upstream socket in Node at all). Outcomes match the JS path's: a failed or timed-out
   * connect resets the client, a client reset before the upstream answered ends it as `client-closed`.
   */
  #connectInRelay(
    nativeRelay: NativeRelay,
    direction: Direction,
    bound: DirectionMetrics,
    client: Socket,
    decision: Exclude<Decision, { kind: "refuse" | "inspect" | "inbound-http" }>,
    finish: (decision: Exclude<Decision, { kind: "inspect" | "inbound-http" }>, end: ConnectionEnd) => void,
  ): void {
    const { metrics } = this.#options;
    try {
      nativeRelay.connectAndRelay(
        client,
        decision.upstream,
        this.#options.connectTimeoutMs,
        this.#options.idleTimeoutMs,
        (result) => {
          if (result.connectSeconds !== undefined) bound.connectSeconds.observe(result.connectSeconds);
          bound.bytesUp.inc(result.bytesUp);
          bound.bytesDown.inc(result.bytesDown);
          countRelayError(metrics, direction, result.error);
          finish(decision, { bytesUp: result.bytesUp, bytesDown: result.bytesDown, error: result.error });
        },
      );
    } catch (cause) {
      // The relay could not take the client (out of file descriptors): reset, never crash.
      metrics.errors.inc({ direction, kind: "relay" });
      client.resetAndDestroy();
      const code = (cause as NodeJS.ErrnoException).code ?? "EUNKNOWN";
      finish(decision, { bytesUp: 0, bytesDown: 0, error: `relay:${code}` });
    }
  }

  /**
   * Graceful drain: stop accepting (both listeners close, so new connections are refused), let open
   * connections finish for up to `timeoutMs`, then reset the rest. Resolves when none is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    this.#unsubscribe?.();
    this.#outbound?.close();
    this.#inbound?.close();
    this.#outbound = undefined;
    this.#inbound = undefined;
    this.#options.metrics.outboundListenerOpen.set(0);
    const deadline = Date.now() + timeoutMs;
    while (this.activeConnections > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const socket of this.#sockets) if (!socket.destroyed) socket.resetAndDestroy();
    this.#nativeRelay?.abortAll();
    for (let waited = 0; this.activeConnections > 0 && waited < 2000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The relay thread stops (joined, its pipes closed) once no data plane uses it.
    this.#nativeRelay?.release();
    this.#nativeRelay = undefined;
  }
}

/** accept() errors after which the listener goes on (libuv closed what it could not hand over). */
const ACCEPT_DROP_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** The splice relay's thread, or a clear error: a sidecar whose relay cannot run must not become ready. */
function startRelayThread(threads: number): NativeRelay {
  try {
    return startNativeRelay(threads);
  } catch (cause) {
    const error = cause as NodeJS.ErrnoException;
    throw new MeshError(
      ErrorCode.Unavailable,
      `the splice relay's thread cannot start: ${error.message} (${error.code ?? "EUNKNOWN"})`,
      { cause, hint: "free memory or threads for uid 1500, or run with --relay js" },
    );
  }
}

function closeServers(servers: readonly Server[]): void {
  for (const server of servers) server.close();
}

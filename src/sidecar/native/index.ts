/**
 * Loads the hand-written Node-API addon (see README.md) and exposes it typed. Loading is lazy and fails
 * with a MeshError that says how to build it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type * as Util from "node:util";
import { ErrorCode, MeshError } from "../../errors.ts";
import type { Direction } from "../data-plane.ts";
import type { Destination, RefuseReason } from "../decide.ts";
import { nativeAddonPath } from "./addon-path.ts";

interface NativeAddon {
  originalDst(fd: number, family: 4 | 6): { address: string; port: number };
  mallocTrim(): boolean;
  socketError(fd: number): number;
  /** `callback(records)`: RECORD_FIELDS values per record (splice-relay.c's F_* order). */
  relayStart(callback: (records: unknown[]) => void, stackBytes: number, threads: number): void;
  relayPair(fdClient: number, fdUpstream: number, idleMs: number): number;
  relayConnect(
    fdClient: number,
    address: string,
    port: number,
    idleMs: number,
    connectTimeoutMs: number,
  ): number;
  relayAbortAll(): void;
  relayStop(): void;
  relayListen(
    direction: 0 | 1,
    port: number,
    family: 4 | 6,
    connectTimeoutMs: number,
    idleMs: number,
    refuseGraceMs: number,
  ): void;
  relayUnlisten(direction: 0 | 1): void;
  relayOpen(): [number, number];
  relayHandoffDone(): void;
  routeTableInstall(bytes: Buffer | null): void;
  /** [kind, reason, service, trafficTarget, upstreamAddress, upstreamPort] (tests). */
  routeTableDecide(
    direction: 0 | 1,
    originalAddress: string,
    originalPort: number,
    localAddress: string,
    localPort: number,
    active: number,
  ): [number, number, string | undefined, string | undefined, string | undefined, number | undefined];
}

let addon: NativeAddon | undefined;
/** The newest functions, checked at load: relayListen and routeTableInstall came with native accept. */
const ADDON_FUNCTIONS: readonly (keyof NativeAddon)[] = ["relayListen", "routeTableInstall", "relayOpen"];

/** The addon, loaded once. Throws MeshError(MissingTool) when `npm run build` has not been run. */
export function loadNativeAddon(): NativeAddon {
  if (addon !== undefined) return addon;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    throw new MeshError(
      ErrorCode.MissingTool,
      `the sidecar's native addon is not built: ${path} is missing`,
      {
        hint: "run `npm run build` (needs a C compiler: apt-get install gcc)",
      },
    );
  }
  let loaded: NativeAddon;
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new MeshError(ErrorCode.MissingTool, `cannot load the sidecar's native addon ${path}`, {
      cause,
      hint: "rebuild it with `npm run build`",
    });
  }
  // An addon built from older sources lacks functions (or has older ones): refuse it rather than misread it.
  const missing = ADDON_FUNCTIONS.filter((name) => typeof loaded[name] !== "function");
  if (missing.length > 0) {
    throw new MeshError(ErrorCode.MissingTool, `the sidecar's native addon ${path} is out of date`, {
      hint: `rebuild it with \`npm run build\` (missing: ${missing.join(", ")})`,
    });
  }
  addon = loaded;
  return addon;
}

/** The file descriptor behind a connected net.Socket (libuv's TCP handle exposes it on Unix). */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== "number" || fd < 0) {
    throw new MeshError(ErrorCode.Internal, "socket has no file descriptor (already closed?)");
  }
  return fd;
}

/**
 * The destination of `socket` before iptables REDIRECT (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). Throws the
 * addon's Error (with an errno `code`) when conntrack knows nothing about the connection.
 */
export function originalDestination(socket: Socket, family: 4 | 6): Destination {
  return loadNativeAddon().originalDst(socketFd(socket), family);
}

/**
 * The socket's pending error (SO_ERROR, cleared by reading it) as an errno name, undefined when none: a
 * reset that arrived on a socket nobody reads or writes (after its EOF) shows up only here.
 */
export function pendingSocketError(socket: Socket): string | undefined {
  const err = loadNativeAddon().socketError(socketFd(socket));
  if (err === 0) return undefined;
  // Through require(): an ES import of node:util evaluates all its exports (~1 MB of RSS per pod).
  const { getSystemErrorName } = createRequire(import.meta.url)("node:util") as typeof Util;
  return getSystemErrorName(-err);
}

/**
 * Gives back to the kernel the memory that startup used and freed (module loading, compilation): glibc
 * `malloc_trim(0)`. Idle RSS is what a node pays per pod, so the sidecar calls this once when its listeners
 * are up. (A full V8 GC before it freed less than loading node:v8 and node:vm to call it cost: bench/README.md.)
 * Returns the RSS before and after, in bytes.
 */
export function releaseStartupMemory(): { before: number; after: number } {
  const before = process.memoryUsage.rss();
  loadNativeAddon().mallocTrim();
  return { before, after: process.memoryUsage.rss() };
}

/** What a pair handed over with `connectAndRelay` ends with. */
export interface ConnectRelayResult extends RelayResult {
  /** How long the upstream took to accept; absent when it never did. */
  readonly connectSeconds?: number;
}

/** What a relay reports when both sides are closed: the JS relay (`relay.ts`) and the splice relay alike. */
export interface RelayResult {
  /** Bytes from the client to the upstream. */
  readonly bytesUp: number;
  /** Bytes from the upstream to the client. */
  readonly bytesDown: number;
  /** The first error: `idle-timeout`, or an errno code such as `ECONNRESET`, `EPIPE`. */
  readonly error: string | undefined;
}

/** The splice(2) relay (splice-relay.c): same contract as relay.ts, payload never enters JS. */
export interface NativeRelay {
  /**
   * Hands a connected pair over to the relay thread and closes the JS handles (the thread holds dup()s).
   * Neither socket may have read a byte yet (the client is paused on connect, the upstream paused).
   */
  relay(client: Socket, upstream: Socket, idleTimeoutMs: number, done: (result: RelayResult) => void): void;
  /**
   * Hands the accepted client (paused, not one byte read) to the relay thread, which connects to `upstream`
   * itself (non-blocking, `connectTimeoutMs`) and then relays; closes the JS handle. `done.error` is
   * `connect:<errno>` or `connect-timeout` (the client has been reset), `client-closed` (the client reset
   * first), or a relay error as with `relay`.
   */
  connectAndRelay(
    client: Socket,
    upstream: Destination,
    connectTimeoutMs: number,
    idleTimeoutMs: number,
    done: (result: ConnectRelayResult) => void,
  ): void;
  /**
   * Native accept: the relay threads own the listeners, decide with the installed table, and report every
   * connection they handled to `handlers` in batches; what the table leaves to JS arrives as a handoff.
   */
  accept(handlers: NativeAcceptHandlers): NativeAccept;
  /** Resets every relayed pair (the drain deadline). */
  abortAll(): void;
  /** Pairs handed over and not finished. */
  readonly active: number;
  /**
   * Gives up this user's share of the relay; the last one stops the thread: open pairs are reset (their
   * `done` still runs, error `shutdown`), the thread joined, its pipes, epoll and eventfd closed.
   */
  release(): void;
}

/** A connection the relay threads accepted, decided and finished (one access-log line). */
export interface NativeConnection extends ConnectRelayResult {
  readonly direction: Direction;
  readonly family: 4 | 6;
  readonly decision: "mesh" | "passthrough" | "refuse";
  readonly reason: RefuseReason | undefined;
  /** `address:port` (`[address]:port` for IPv6), as the access log writes them. */
  readonly src: string;
  /** Undefined when the original destination could not be read (error `original-dst:<errno>`). */
  readonly dst: string | undefined;
  readonly upstream: string | undefined;
  readonly service: string | undefined;
  readonly trafficTarget: string | undefined;
  readonly durationMs: number;
}

export interface NativeAcceptHandlers {
  connection(connection: NativeConnection): void;
  /** The table left this one to JS: `fd` is the accepted socket, not one byte read; JS owns it now. */
  handoff(fd: number, direction: Direction, family: 4 | 6): void;
  /** accept() failed for lack of fds or memory (`cause` accept:EMFILE…); what waited was reset. */
  dropped(direction: Direction, family: 4 | 6, cause: string): void;
  /** `count` finished connections' records were dropped: this thread fell that far behind the relay threads. */
  lost(count: number): void;
}

export interface ListenTimeouts {
  readonly connectTimeoutMs: number;
  /** 0: never. */
  readonly idleMs: number;
  /** How long a refused connection waits for the client's first byte before its reset. */
  readonly refuseGraceMs: number;
}

export interface NativeAccept {
  /** One listening socket per relay thread (SO_REUSEPORT). Throws the errno `code` (EADDRINUSE…). */
  listen(direction: Direction, port: number, family: 4 | 6, timeouts: ListenTimeouts): void;
  /** Both families; the port refuses new connections at once, open ones go on. */
  unlisten(direction: Direction): void;
  /** The table the threads decide with from their next accept on (native-table.ts); null: no config. */
  installTable(bytes: Buffer | null): void;
  /** Connections the threads accepted and still hold. */
  open(): { outbound: number; inbound: number };
  /** A handed-over connection is finished (it no longer counts against maxDataPlaneConnections). */
  handoffDone(): void;
}

/** The relay thread's stack: it needs a few KiB (no recursion, one 128-event array), not glibc's 8 MiB. */
export const RELAY_THREAD_STACK_BYTES = 256 * 1024;
/**
 * Overrides RELAY_THREAD_STACK_BYTES. For tests: a size no mapping can have (e.g. 2^48) makes
 * pthread_create fail for real, as under memory pressure, so the sidecar's refusal to start can be seen.
 */
export const RELAY_STACK_ENV = "OSM_SIDECAR_RELAY_STACK_BYTES";

let nativeRelay: NativeRelay | undefined;
let users = 0;

const DIRECTIONS: readonly Direction[] = ["outbound", "inbound"];
const DECISIONS = ["mesh", "passthrough", "refuse"] as const;
/** route-table.h's R_* values. */
const REASONS: readonly (RefuseReason | undefined)[] = [
  undefined,
  "egress-disabled",
  "connection-limit",
  "no-config",
  "not-redirected",
];
/** splice-relay.c's record types and fields (F_*), in its order. */
const Record = { Relayed: 0, Native: 1, Handoff: 2, Dropped: 3, Lost: 4 } as const;
const RECORD_FIELDS = 16;

/**
 * Starts the relay threads (once per process; `threads` counts for the first caller; every caller later calls
 * `release()`) and returns the relay. Throws the addon's Error (code = errno name) when a thread cannot start.
 */
export function startNativeRelay(threads = 1): NativeRelay {
  users += 1;
  if (nativeRelay !== undefined) return nativeRelay;
  const native = loadNativeAddon();
  const pending = new Map<number, (result: ConnectRelayResult) => void>();
  let handlers: NativeAcceptHandlers | undefined;
  const stackBytes = Number(process.env[RELAY_STACK_ENV] ?? RELAY_THREAD_STACK_BYTES);
  // Runs on the JS thread, after relayPair/relayConnect returned, so `pending` always has the id.
  const onRecords = (records: unknown[]): void => {
    for (let at = 0; at < records.length; at += RECORD_FIELDS) {
      const type = records[at] as number;
      const id = records[at + 1] as number;
      const direction = DIRECTIONS[records[at + 2] as number]!;
      const family = records[at + 3] === 6 ? 6 : 4;
      const error = records[at + 13] === "" ? undefined : (records[at + 13] as string);
      if (type === Record.Handoff) {
        handlers?.handoff(id, direction, family);
        continue;
      }
      if (type === Record.Lost) {
        handlers?.lost(id);
        continue;
      }
      if (type === Record.Dropped) {
        handlers?.dropped(direction, family, error ?? "accept");
        continue;
      }
      const connectUs = records[at + 14] as number;
      const result = {
        bytesUp: records[at + 11] as number,
        bytesDown: records[at + 12] as number,
        error,
        ...(connectUs >= 0 ? { connectSeconds: connectUs / 1e6 } : {}),
      };
      if (type === Record.Relayed) {
        const done = pending.get(id);
        pending.delete(id);
        done?.(result);
        continue;
      }
      handlers?.connection({
        ...result,
        direction,
        family,
        decision: DECISIONS[records[at + 4] as number]!,
        reason: REASONS[records[at + 5] as number],
        src: records[at + 6] as string,
        dst: records[at + 7] as string | undefined,
        upstream: records[at + 8] as string | undefined,
        service: records[at + 9] as string | undefined,
        trafficTarget: records[at + 10] as string | undefined,
        durationMs: Math.round(records[at + 15] as number) / 1000,
      });
    }
  };
  try {
    native.relayStart(onRecords, stackBytes, threads);
  } catch (error) {
    users -= 1;
    throw error;
  }
  nativeRelay = {
    relay(client, upstream, idleTimeoutMs, done) {
      const id = native.relayPair(socketFd(client), socketFd(upstream), idleTimeoutMs);
      pending.set(id, done);
      client.destroy();
      upstream.destroy();
    },
    connectAndRelay(client, upstream, connectTimeoutMs, idleTimeoutMs, done) {
      const id = native.relayConnect(
        socketFd(client),
        upstream.address,
        upstream.port,
        idleTimeoutMs,
        connectTimeoutMs,
      );
      pending.set(id, done);
      client.destroy();
    },
    accept(acceptHandlers) {
      handlers = acceptHandlers;
      return {
        listen: (direction, port, family, timeouts) =>
          native.relayListen(
            direction === "outbound" ? 0 : 1,
            port,
            family,
            timeouts.connectTimeoutMs,
            timeouts.idleMs,
            timeouts.refuseGraceMs,
          ),
        unlisten: (direction) => native.relayUnlisten(direction === "outbound" ? 0 : 1),
        installTable: (bytes) => native.routeTableInstall(bytes),
        open: () => {
          const [outbound, inbound] = native.relayOpen();
          return { outbound, inbound };
        },
        handoffDone: () => native.relayHandoffDone(),
      };
    },
    abortAll: () => native.relayAbortAll(),
    get active() {
      return pending.size;
    },
    release() {
      users -= 1;
      if (users > 0 || nativeRelay === undefined) return;
      nativeRelay = undefined;
      native.relayStop();
      native.routeTableInstall(null);
    },
  };
  return nativeRelay;
}

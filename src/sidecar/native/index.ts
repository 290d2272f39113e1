/**
 * Loads the hand-written Node-API addon (see README.md) and exposes it typed. Loading is lazy and fails
 * with a MeshError that says how to build it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type * as Util from "node:util";
import { ErrorCode, MeshError } from "../../errors.ts";
import type { Destination } from "../decide.ts";
import { nativeAddonPath } from "./addon-path.ts";

interface NativeAddon {
  originalDst(fd: number, family: 4 | 6): { address: string; port: number };
  mallocTrim(): boolean;
  socketError(fd: number): number;
  relayStart(
    callback: (id: number, bytesUp: number, bytesDown: number, error: string, connectUs: number) => void,
    stackBytes: number,
  ): void;
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
}

let addon: NativeAddon | undefined;

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
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new MeshError(ErrorCode.MissingTool, `cannot load the sidecar's native addon ${path}`, {
      cause,
      hint: "rebuild it with `npm run build`",
    });
  }
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

/** The relay thread's stack: it needs a few KiB (no recursion, one 128-event array), not glibc's 8 MiB. */
export const RELAY_THREAD_STACK_BYTES = 256 * 1024;
/**
 * Overrides RELAY_THREAD_STACK_BYTES. For tests: a size no mapping can have (e.g. 2^48) makes
 * pthread_create fail for real, as under memory pressure, so the sidecar's refusal to start can be seen.
 */
export const RELAY_STACK_ENV = "OSM_SIDECAR_RELAY_STACK_BYTES";

let nativeRelay: NativeRelay | undefined;
let users = 0;

/**
 * Starts the relay thread (once per process; every caller later calls `release()`) and returns the relay.
 * Throws the addon's Error (code = errno name) when the thread cannot be started.
 */
export function startNativeRelay(): NativeRelay {
  users += 1;
  if (nativeRelay !== undefined) return nativeRelay;
  const native = loadNativeAddon();
  const pending = new Map<number, (result: ConnectRelayResult) => void>();
  const stackBytes = Number(process.env[RELAY_STACK_ENV] ?? RELAY_THREAD_STACK_BYTES);
  // Runs on the JS thread, after relayPair/relayConnect returned, so `pending` always has the id.
  try {
    native.relayStart((id, bytesUp, bytesDown, error, connectUs) => {
      const done = pending.get(id);
      pending.delete(id);
      done?.({
        bytesUp,
        bytesDown,
        error: error === "" ? undefined : error,
        ...(connectUs >= 0 ? { connectSeconds: connectUs / 1e6 } : {}),
      });
    }, stackBytes);
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
    abortAll: () => native.relayAbortAll(),
    get active() {
      return pending.size;
    },
    release() {
      users -= 1;
      if (users > 0 || nativeRelay === undefined) return;
      nativeRelay = undefined;
      native.relayStop();
    },
  };
  return nativeRelay;
}

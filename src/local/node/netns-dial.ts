/**
 * TCP connections to `localhost:<port>` inside a pod's network namespace, as a CRI runtime makes them for
 * port-forward (a server bound to 127.0.0.1 in the pod is reached, and the pod's own iptables see local
 * traffic, not inbound from the node). Node.js cannot enter a namespace itself, so a child of this very Node
 * binary runs there under `nsenter --net`, connects on request (127.0.0.1 first, then ::1) and hands each
 * connected socket back over its IPC channel; the parent owns the socket from then on. One child per
 * namespace serves every dial and exits after a few idle seconds, or at once when the parent goes away.
 *
 *   nsenter --net=/run/netns/<pod> -- node netns-dial.ts
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect, Socket } from "node:net";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const DIAL_TIMEOUT_MS = 10_000;
/** A namespace's dialer exits this long after its last dial settled. */
const IDLE_MS = 5_000;

type Request = { readonly id: number; readonly port: number };
type Reply = { readonly id: number; readonly error?: string };

interface Pending {
  resolve(socket: Socket): void;
  reject(error: Error): void;
}

interface Dialer {
  readonly child: ChildProcess;
  readonly pending: Map<number, Pending>;
  idle?: NodeJS.Timeout;
}

/** The dialers of one node, one per network namespace in use. */
export class NetnsDialer {
  readonly #dialers = new Map<string, Dialer>();
  #nextId = 1;

  /** Connects to localhost:`port` in the network namespace at `netnsPath`; rejects with the reason. */
  dial(netnsPath: string, port: number): Promise<Socket> {
    const dialer = this.#dialers.get(netnsPath) ?? this.#start(netnsPath);
    clearTimeout(dialer.idle);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`connecting to localhost:${port} in ${netnsPath} timed out`)),
        DIAL_TIMEOUT_MS,
      );
      const settle = (result: Socket | Error) => {
        if (!dialer.pending.delete(id)) return;
        clearTimeout(timer);
        if (dialer.pending.size === 0) dialer.idle = setTimeout(() => this.#stop(netnsPath), IDLE_MS).unref();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      dialer.pending.set(id, { resolve: settle, reject: settle });
      dialer.child.send({ id, port } satisfies Request);
    });
  }

  /** Stops every dialer; dials in flight fail. */
  close(): void {
    for (const netnsPath of [...this.#dialers.keys()]) this.#stop(netnsPath);
  }

  #start(netnsPath: string): Dialer {
    const child = spawn("nsenter", [`--net=${netnsPath}`, "--", process.execPath, SELF], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    // Never what keeps this process alive.
    child.unref();
    child.channel?.unref();
    const dialer: Dialer = { child, pending: new Map() };
    this.#dialers.set(netnsPath, dialer);
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.on("message", (reply: Reply, handle: unknown) => {
      const pending = dialer.pending.get(reply.id);
      if (reply.error !== undefined) pending?.reject(new Error(reply.error));
      else if (!(handle instanceof Socket)) pending?.reject(new Error("the dialer sent no socket"));
      else if (!pending) handle.destroy();
      else {
        // Each direction's end is passed on alone (port-forward relays half-closes).
        handle.allowHalfOpen = true;
        pending.resolve(handle);
      }
    });
    child.on("error", (e) => {
      stderr ||= `nsenter: ${e.message}`;
    });
    // "close", not "exit": it comes after the IPC channel has delivered everything.
    child.on("close", (code) => {
      if (this.#dialers.get(netnsPath) === dialer) this.#dialers.delete(netnsPath);
      clearTimeout(dialer.idle);
      const reason = new Error(stderr.trim() || `the dialer in ${netnsPath} exited ${code}`);
      for (const p of [...dialer.pending.values()]) p.reject(reason);
    });
    return dialer;
  }

  #stop(netnsPath: string): void {
    const dialer = this.#dialers.get(netnsPath);
    if (!dialer) return;
    this.#dialers.delete(netnsPath);
    clearTimeout(dialer.idle);
    dialer.child.kill();
  }
}

/** The child: each request connects inside the namespace it runs in; the socket (or the error) goes back. */
function serveDials(): void {
  process.on("disconnect", () => process.exit(0));
  process.on("message", ({ id, port }: Request) => {
    const errors: string[] = [];
    const attempt = (hosts: readonly string[]) => {
      const [host, ...rest] = hosts;
      if (host === undefined) {
        process.send?.({ id, error: `localhost:${port} in the pod: ${errors.join("; ")}` } satisfies Reply);
        return;
      }
      const socket = connect({ host, port, allowHalfOpen: true });
      // Not one byte is read here: whatever the pod's server says first belongs to the parent.
      socket.pause();
      socket.once("connect", () => process.send?.({ id } satisfies Reply, socket, { keepOpen: false }));
      socket.once("error", (e) => {
        errors.push(e.message);
        socket.destroy();
        attempt(rest);
      });
    };
    attempt(["127.0.0.1", "::1"]);
  });
}

if (import.meta.main) serveDials();

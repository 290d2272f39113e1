/**
 * Processes on a pseudo-terminal (node-pty), for `kubectl exec -t` and containers with `tty: true`: the process
 * is a session leader with the terminal as its controlling tty, so `tty` prints `/dev/pts/N`, output gets CR LF,
 * Ctrl-C and Ctrl-D typed by the client reach its foreground job through the line discipline, and a resize
 * becomes SIGWINCH. Stdout and stderr are one stream, as on a cluster.
 */
import type { Readable, Writable } from "node:stream";
import { type IPty, spawn as spawnPty } from "node-pty";
import type { TerminalResizes, TerminalSize } from "../node-connector.ts";
import { type ProcessExit, signalGroup } from "./process-group.ts";

export interface TerminalProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  write(data: Buffer): void;
  resize(size: TerminalSize): void;
  /** Output from now on; returns the unsubscribe function. */
  onData(listener: (data: Buffer) => void): () => void;
  /** Signals the whole process group; a group already gone is not an error. */
  signal(sig: NodeJS.Signals): void;
}

/** The terminal type a container runtime sets for a TTY process when the env has none. */
const DEFAULT_TERM = "xterm";

/** Starts `argv` on a new pseudo-terminal; throws when it cannot be spawned. */
export function startOnTerminal(
  argv: readonly string[],
  options: { env: Readonly<Record<string, string>>; cwd: string; size?: TerminalSize | undefined },
): TerminalProcess {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  const pty: IPty = spawnPty(file, args, {
    name: options.env.TERM ?? DEFAULT_TERM,
    cols: options.size?.width ?? 80,
    rows: options.size?.height ?? 24,
    cwd: options.cwd,
    env: { TERM: DEFAULT_TERM, ...options.env },
    encoding: null,
  });
  const listeners = new Set<(data: Buffer) => void>();
  pty.onData((data) => {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    for (const l of listeners) l(buf);
  });
  const exited = new Promise<ProcessExit>((resolve) => {
    pty.onExit(({ exitCode, signal }) => {
      resolve(signal ? { exitCode: 128 + signal, signal } : { exitCode, signal: undefined });
    });
  });
  return {
    pid: pty.pid,
    exited,
    write: (data) => pty.write(data),
    resize: (size) => {
      try {
        pty.resize(size.width, size.height);
      } catch {
        // The terminal is closed already (the process ended): nothing to resize.
      }
    },
    onData: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    signal: (sig) => signalGroup(pty.pid, sig),
  };
}

/**
 * Connects a client to a terminal process: its input (typed bytes, Ctrl-C included) goes in raw, output goes to
 * `stdout`, sizes to the terminal. Resolves when the process ends (after its last output) or `signal` aborts.
 */
export function connectTerminal(
  term: TerminalProcess,
  io: { stdin: Readable | null; stdout: Writable | null; resize?: TerminalResizes | null | undefined },
  signal: AbortSignal,
): Promise<ProcessExit | undefined> {
  const offData = term.onData((data) => io.stdout?.write(data));
  const offResize = io.resize?.onResize((size) => term.resize(size));
  const onInput = (chunk: Buffer) => term.write(chunk);
  io.stdin?.on("data", onInput);
  return new Promise<ProcessExit | undefined>((resolve) => {
    const done = (exit: ProcessExit | undefined) => {
      offData();
      offResize?.();
      io.stdin?.off("data", onInput);
      signal.removeEventListener("abort", onAbort);
      resolve(exit);
    };
    const onAbort = () => done(undefined);
    if (signal.aborted) return done(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
    void term.exited.then(done);
  });
}

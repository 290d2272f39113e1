/**
 * A container's main process when its spec has `stdin: true` or `tty: true`, so `kubectl attach` can join it:
 * on a pseudo-terminal (`tty`) or with a stdin pipe, its output both into the log store and to every attached
 * client (raw, as written: a prompt without a newline shows at once). With `stdinOnce`, the container's stdin
 * closes when the first attached client's stdin ends, as the kubelet does.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Writable } from "node:stream";
import type { ExecStreams } from "../node-connector.ts";
import type { LogWriter } from "./log-store.ts";
import { type ProcessExit, type RunningProcess, signalGroup } from "./process-group.ts";
import { connectTerminal, startOnTerminal } from "./terminal.ts";

export interface AttachableProcess extends RunningProcess {
  /** Joins the process until it ends (resolves its exit) or `signal` aborts (resolves undefined). */
  attach(streams: ExecStreams, signal: AbortSignal): Promise<ProcessExit | undefined>;
}

export interface AttachableOptions {
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly tty: boolean;
  readonly stdinOnce: boolean;
}

/** Starts `argv` attachable; rejects when it cannot be spawned. */
export function startAttachable(
  argv: readonly string[],
  options: AttachableOptions,
  log: LogWriter,
): Promise<AttachableProcess> {
  return options.tty ? startTty(argv, options, log) : startPiped(argv, options, log);
}

async function startTty(
  argv: readonly string[],
  options: AttachableOptions,
  log: LogWriter,
): Promise<AttachableProcess> {
  const term = startOnTerminal(argv, options);
  term.onData((data) => log.write("stdout", data));
  const exited = term.exited.then((exit) => {
    log.close();
    return exit;
  });
  let stdinTaken = false;
  return {
    pid: term.pid,
    exited,
    signal: term.signal,
    attach: (streams, signal) => {
      // Only the first client's input reaches a stdinOnce container; later ones watch.
      const stdin = options.stdinOnce && stdinTaken ? null : streams.stdin;
      if (stdin) stdinTaken = true;
      return connectTerminal(term, { stdin, stdout: streams.stdout, resize: streams.resize }, signal);
    },
  };
}

function startPiped(
  argv: readonly string[],
  options: AttachableOptions,
  log: LogWriter,
): Promise<AttachableProcess> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) return reject(new Error("empty argv"));
    const child = spawn(file, args, {
      env: { ...options.env },
      cwd: options.cwd,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const clients = new Set<{ stdout: Writable; stderr: Writable }>();
    child.stdin.on("error", () => {});
    child.stdout.on("data", (b: Buffer) => {
      log.write("stdout", b);
      for (const c of clients) c.stdout.write(b);
    });
    child.stderr.on("data", (b: Buffer) => {
      log.write("stderr", b);
      for (const c of clients) c.stderr.write(b);
    });
    const exited = new Promise<ProcessExit>((res) => {
      child.once("close", (code, sig) => {
        log.close();
        const num = sig ? (constants.signals[sig] ?? 9) : undefined;
        res({ exitCode: code ?? 128 + (num ?? 0), signal: num });
      });
    });
    let stdinTaken = false;
    child.once("error", reject);
    child.once("spawn", () => {
      const pid = child.pid as number;
      resolve({
        pid,
        exited,
        signal: (sig) => signalGroup(pid, sig),
        attach: (streams, signal) =>
          new Promise((done) => {
            const client = { stdout: streams.stdout, stderr: streams.stderr };
            clients.add(client);
            const stdin = options.stdinOnce && stdinTaken ? null : streams.stdin;
            const onInput = (chunk: Buffer) => child.stdin.write(chunk);
            const onEnd = () => {
              if (options.stdinOnce) child.stdin.end();
            };
            if (stdin) {
              stdinTaken = true;
              stdin.on("data", onInput);
              stdin.once("end", onEnd);
            }
            const finish = (exit: ProcessExit | undefined) => {
              clients.delete(client);
              stdin?.off("data", onInput);
              stdin?.off("end", onEnd);
              signal.removeEventListener("abort", onAbort);
              done(exit);
            };
            const onAbort = () => finish(undefined);
            if (signal.aborted) return finish(undefined);
            signal.addEventListener("abort", onAbort, { once: true });
            void exited.then(finish);
          }),
      });
    });
  });
}

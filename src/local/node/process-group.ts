/**
 * One container attempt as an OS process: spawned in its own session (so the whole process tree can be
 * signalled as a group), stdout/stderr into the log store, exit reported as a code (128+signal when killed).
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { LogWriter } from "./log-store.ts";

export interface ProcessExit {
  readonly exitCode: number;
  /** Signal number when the process was killed by one. */
  readonly signal: number | undefined;
}

export interface RunningProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  /** Signals the whole process group; a group already gone is not an error. */
  signal(sig: NodeJS.Signals): void;
}

/** Sends `sig` to process group `pid` (the container's session); ignores ESRCH. */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // The group is gone already: nothing to signal.
  }
}

/** Starts `argv` with `env`/`cwd`; throws (synchronously reported via the promise) when it cannot be spawned. */
export function startProcess(
  argv: readonly string[],
  options: { env: Readonly<Record<string, string>>; cwd: string },
  log: LogWriter,
): Promise<RunningProcess> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new Error("empty argv"));
      return;
    }
    const child = spawn(file, args, {
      env: { ...options.env },
      cwd: options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let settled = false;
    child.once("error", (error) => {
      if (!settled) {
        settled = true;
        reject(error);
      }
    });
    child.stdout.on("data", (b: Buffer) => log.write("stdout", b));
    child.stderr.on("data", (b: Buffer) => log.write("stderr", b));
    const exited = new Promise<ProcessExit>((res) => {
      child.once("close", (code, sig) => {
        log.close();
        const num = sig ? (constants.signals[sig] ?? 9) : undefined;
        res({ exitCode: code ?? 128 + (num ?? 0), signal: num });
      });
    });
    child.once("spawn", () => {
      settled = true;
      const pid = child.pid as number;
      resolve({ pid, exited, signal: (sig) => signalGroup(pid, sig) });
    });
  });
}

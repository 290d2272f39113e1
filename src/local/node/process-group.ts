/**
 * One container attempt as an OS process: spawned in its own session (so the whole process tree can be
 * signalled as a group), stdout/stderr into the log store, exit reported as a code (128+signal when killed).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
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

function kill(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch {
    // Gone already: nothing to signal.
  }
}

/** True while `pid` exists and is not a zombie (exited, waiting to be reaped). */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Sends `sig` to process group `pid` (the container's session); ignores ESRCH. SIGKILL goes to the leader's
 * children first: the leader is the join wrapper, outside the pod's PID namespace (`pod-namespaces.ts`), and
 * killed together with the container it would hand the container's remains to the host's init, which may be
 * slow to reap them (the pod's PID 1 then lingers at teardown). The wrapper exits by itself once its child is
 * gone; then the rest of the group is killed.
 */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  const children = sig === "SIGKILL" ? childrenOf(pid) : [];
  if (children.length === 0) {
    kill(-pid, sig);
    return;
  }
  for (const child of children) kill(child, sig);
  let tries = 0;
  const rest = () => {
    if (running(pid) && ++tries < 20) setTimeout(rest, 10).unref();
    else kill(-pid, sig);
  };
  rest();
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

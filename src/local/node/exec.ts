/**
 * A command run inside a running container, as `kubectl exec` and exec probes need it: the container's own
 * wrapper (netns, uid/gid, bounding set, no-new-privs), env and working dir, in a process group of its own so a
 * timeout or an abort ends the whole tree.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { TerminalResizes } from "../node-connector.ts";
import type { ContainerLaunch } from "./container-launch.ts";
import { signalGroup } from "./process-group.ts";
import { connectTerminal, startOnTerminal } from "./terminal.ts";

export interface ExecIo {
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  /** Present: run on a pseudo-terminal of this size (stderr goes to stdout). */
  readonly resize?: TerminalResizes | null | undefined;
}

/** The argv that runs `command` the way `launch` runs its container (same wrapper). */
function execArgv(launch: ContainerLaunch, command: readonly string[]): string[] {
  return [...launch.argv.slice(0, launch.argv.length - launch.command.length), ...command];
}

/** `exec -t`: the command on a terminal; abort SIGKILLs its process group. */
async function execOnTerminal(
  launch: ContainerLaunch,
  command: readonly string[],
  io: ExecIo,
  signal: AbortSignal,
): Promise<number> {
  const term = startOnTerminal(execArgv(launch, command), { env: launch.env, cwd: launch.cwd });
  const exit = await connectTerminal(term, io, signal);
  if (exit) return exit.exitCode;
  term.signal("SIGKILL");
  return (await term.exited).exitCode;
}

/**
 * Runs `command` the way `launch` runs its container, on a terminal when `io.resize` is given. Resolves with
 * the exit code (128+signal when killed); rejects when the wrapper itself cannot be spawned. `signal` or
 * `timeoutMs` SIGKILL the process group.
 */
export function execInContainer(
  launch: ContainerLaunch,
  command: readonly string[],
  io: ExecIo,
  signal: AbortSignal,
  timeoutMs?: number,
): Promise<number> {
  if (io.resize) return execOnTerminal(launch, command, io, signal);
  const [file, ...args] = execArgv(launch, command);
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, args, {
      env: { ...launch.env },
      cwd: launch.cwd,
      detached: true,
      stdio: [io.stdin ? "pipe" : "ignore", io.stdout ? "pipe" : "ignore", io.stderr ? "pipe" : "ignore"],
    });
    const kill = () => signalGroup(child.pid ?? 0, "SIGKILL");
    const timer = timeoutMs === undefined ? undefined : setTimeout(kill, timeoutMs);
    if (signal.aborted) kill();
    signal.addEventListener("abort", kill, { once: true });
    const done = () => {
      if (timer) clearTimeout(timer);
      signal.removeEventListener("abort", kill);
    };
    if (io.stdin && child.stdin) {
      child.stdin.on("error", () => {});
      io.stdin.pipe(child.stdin);
    }
    if (io.stdout) child.stdout?.pipe(io.stdout, { end: false });
    if (io.stderr) child.stderr?.pipe(io.stderr, { end: false });
    child.once("error", (error) => {
      done();
      reject(error);
    });
    child.once("close", (code, sig) => {
      done();
      resolve(code ?? 128 + (sig ? (constants.signals[sig] ?? 9) : 0));
    });
  });
}

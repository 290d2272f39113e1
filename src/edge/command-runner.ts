/**
 * The one seam through which osm-ts runs host tools (`iptables-restore`, `nft`, `ip`, `nsenter`, `kubectl`,
 * `curl`): argv arrays, never a shell string. The real runner spawns them (optionally inside a network namespace
 * via `nsenter --net=PATH`); the recording twin serves dry runs and tests with scripted answers. A process
 * that cannot start, or is killed at its time limit, still resolves: `error` says why, as a shell would.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { ErrorCode, MeshError } from "../errors.ts";

export interface CommandResult {
  /** Exit code; 128+N when killed by signal N, 127 when the process could not start. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the process could not start or was killed at its time limit, e.g. `timed out after 30s`. */
  readonly error?: string;
}

export interface RunOptions {
  /** Written to the process's stdin, which is then closed (closed at once when absent). */
  readonly stdin?: string;
  /** Kill the whole process group after this long (kubectl's version dispatcher runs a child kubectl). */
  readonly timeoutMs?: number;
}

export interface CommandRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

export interface ProcessRunnerOptions {
  /** Network namespace path (`/var/run/netns/NAME`, `/proc/PID/ns/net`); commands run inside it. */
  readonly netns?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Runs commands for real. */
export function createProcessRunner(options: ProcessRunnerOptions = {}): CommandRunner {
  return {
    run(argv, runOptions = {}) {
      const full = options.netns ? ["nsenter", `--net=${options.netns}`, "--", ...argv] : [...argv];
      const [file, ...args] = full;
      if (file === undefined) {
        return Promise.resolve({ code: 127, stdout: "", stderr: "", error: "empty command" });
      }
      const { timeoutMs } = runOptions;
      return new Promise((resolve) => {
        const child = spawn(file, args, {
          env: options.env,
          cwd: options.cwd,
          stdio: ["pipe", "pipe", "pipe"],
          detached: timeoutMs !== undefined,
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                timedOut = true;
                try {
                  if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
                } catch {
                  child.kill("SIGKILL");
                }
              }, timeoutMs);
        const text = () => ({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        child.on("error", (e) => {
          clearTimeout(timer);
          resolve({ code: 127, stdout: "", stderr: `${file}: ${e.message}`, error: e.message });
        });
        child.on("close", (code, signal) => {
          clearTimeout(timer);
          const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 0);
          resolve(
            timedOut
              ? { code: status, ...text(), error: `timed out after ${(timeoutMs ?? 0) / 1000}s` }
              : { code: status, ...text() },
          );
        });
        child.stdin.on("error", () => {});
        child.stdin.end(runOptions.stdin ?? "");
      });
    },
  };
}

export interface RecordedCall {
  readonly argv: readonly string[];
  readonly stdin: string | undefined;
}

/** Records every call and answers from `respond` (default: success with empty output). */
export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  readonly respond: (argv: readonly string[], stdin: string | undefined) => CommandResult;

  constructor(respond?: (argv: readonly string[], stdin: string | undefined) => CommandResult) {
    this.respond = respond ?? (() => ({ code: 0, stdout: "", stderr: "" }));
  }

  run(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], stdin: options.stdin });
    return Promise.resolve(this.respond(argv, options.stdin));
  }
}

/**
 * Runs `argv` and returns its stdout; throws MeshError naming the command when it cannot start (MissingTool,
 * naming the tool to install) or exits non-zero (ApplyFailed, with its stderr), so a user sees which step broke.
 */
export async function runChecked(
  runner: CommandRunner,
  argv: readonly string[],
  stdin?: string,
): Promise<string> {
  const r = await runner.run(argv, stdin === undefined ? {} : { stdin });
  if (r.error !== undefined && r.code === 127) {
    throw new MeshError(ErrorCode.MissingTool, `cannot run ${argv[0]}: ${r.error}`, {
      hint: `install ${argv[0]}`,
    });
  }
  if (r.code !== 0) {
    const detail = r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`;
    throw new MeshError(ErrorCode.ApplyFailed, `${argv.join(" ")} failed: ${detail}`);
  }
  return r.stdout;
}

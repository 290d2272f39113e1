/**
 * The OS seam: every process the interception engine runs goes through a CommandRunner. The real one spawns
 * argv arrays (never a shell), inside a network namespace via `nsenter --net=PATH`; the recording one serves
 * dry-run and tests with scripted answers.
 */
import { spawn } from "node:child_process";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  run(argv: readonly string[], options?: { readonly stdin?: string }): Promise<CommandResult>;
}

export interface ProcessRunnerOptions {
  /** Network namespace path (`/var/run/netns/NAME`, `/proc/PID/ns/net`); commands run inside it. */
  readonly netns?: string;
}

/** Runs commands for real. A missing binary yields code 127 and a message, like a shell. */
export function createProcessRunner(options: ProcessRunnerOptions = {}): CommandRunner {
  return {
    run(argv, runOptions = {}) {
      const full = options.netns ? ["nsenter", `--net=${options.netns}`, "--", ...argv] : [...argv];
      return new Promise((resolve) => {
        const child = spawn(full[0]!, full.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        child.on("error", (e) => resolve({ code: 127, stdout: "", stderr: `${full[0]}: ${e.message}` }));
        child.on("close", (code, signal) =>
          resolve({
            code: code ?? (signal ? 128 : 1),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
          }),
        );
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

  run(argv: readonly string[], options: { readonly stdin?: string } = {}): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], stdin: options.stdin });
    return Promise.resolve(this.respond(argv, options.stdin));
  }
}

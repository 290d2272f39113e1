/**
 * Commands (kubectl, bin/osm, ip, ...) as subprocesses, without blocking the event loop: several suites serve
 * the API server from their own process, so a synchronous spawn would deadlock against it.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";

export interface Ran {
  /** The exit code; null when the command could not start or was killed by a signal (e.g. its timeout). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Default: this process's environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** What the command reads on stdin (default: nothing, stdin is closed at once). */
  readonly input?: string;
  /** Sent when the timeout passes (default SIGTERM). */
  readonly killSignal?: NodeJS.Signals;
}

/** Runs `file args`; never rejects: a failure is a non-zero or null `code` with what the command printed. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<Ran> {
  const { env, timeoutMs = 60_000, input, killSignal = "SIGTERM" } = options;
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env, encoding: "utf8", timeout: timeoutMs, killSignal, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
      },
    );
    // A command that exits before reading its stdin must not fail the test with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input ?? "");
  });
}

/** kubectl's environment for `kubeconfig`, isolated: its own HOME and discovery cache under `home`. */
export function kubectlEnv(kubeconfig: string, home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: home,
    KUBECONFIG: kubeconfig,
    KUBECACHEDIR: join(home, "cache"),
  };
}

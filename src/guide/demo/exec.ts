/**
 * The real executor for the demo: spawns argv (never a shell), captures stdout and stderr, and kills the
 * process group when the per-command limit passes. Stdin is closed, as for a non-interactive user.
 */
import { spawn } from "node:child_process";
import type { CommandResult } from "./expect.ts";
import type { ExecOptions } from "./runner.ts";

export interface SpawnSettings {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export function makeExec(settings: SpawnSettings) {
  return (argv: readonly string[], options: ExecOptions): Promise<CommandResult> =>
    new Promise((resolve) => {
      const [file, ...args] = argv;
      if (file === undefined) {
        resolve({ exitCode: null, stdout: "", stderr: "", error: "empty command" });
        return;
      }
      const child = spawn(file, args, {
        env: settings.env,
        cwd: settings.cwd,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        // The whole group: kubectl's dispatcher runs the versioned kubectl as a child.
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {
            child.kill("SIGKILL");
          }
        }
      }, options.timeoutMs);
      child.on("error", (error) => {
        clearTimeout(timer);
        resolve({ exitCode: null, stdout, stderr, error: error.message });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        if (timedOut) {
          resolve({ exitCode: null, stdout, stderr, error: `timed out after ${options.timeoutMs / 1000}s` });
        } else {
          resolve({ exitCode: code, stdout, stderr });
        }
      });
    });
}

/**
 * The one seam through which the node agent runs host tools (`ip`, `nsenter`, `sysctl`): argv arrays only,
 * never a shell string. Tests and the daemon use the same implementation; failures become MeshError with the
 * command and its stderr, so a user sees which step of pod setup broke.
 */
import { spawn } from "node:child_process";
import { ErrorCode, MeshError } from "../../errors.ts";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

/** Runs `argv` (no shell), feeding `input` on stdin; resolves with exit code and captured output. */
export const runCommand: CommandRunner = (argv, input) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new MeshError(ErrorCode.Internal, "runCommand: empty argv"));
      return;
    }
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) =>
      reject(
        new MeshError(ErrorCode.MissingTool, `cannot run ${file}: ${e.message}`, {
          cause: e,
          hint: `install ${file} (iproute2 / util-linux)`,
        }),
      ),
    );
    child.on("close", (code, signal) =>
      resolve({
        code: code ?? 128 + (signal ? 9 : 0),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });

/** Runs `argv` and throws MeshError(ApplyFailed) naming the command when it exits non-zero. */
export async function runChecked(
  run: CommandRunner,
  argv: readonly string[],
  input?: string,
): Promise<string> {
  const r = await run(argv, input);
  if (r.code !== 0) {
    const detail = r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`;
    throw new MeshError(ErrorCode.ApplyFailed, `${argv.join(" ")} failed: ${detail}`);
  }
  return r.stdout;
}

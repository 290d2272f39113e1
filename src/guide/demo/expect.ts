/**
 * What a demo step expects to observe, and the pure check of a command's result against it. A step holds
 * only when every condition holds; each unmet condition becomes one sentence saying what was expected and
 * what was seen, so a failed step says exactly why.
 */
import type { CommandResult } from "../../edge/command-runner.ts";

export interface Expectation {
  /** Exit code the command must return (default 0). */
  readonly exitCode?: number;
  /** Any of these exit codes (overrides exitCode), e.g. curl's 7, 52 and 56 for a refused connection. */
  readonly exitCodeIn?: readonly number[];
  /** Patterns stdout must match (all of them). */
  readonly stdout?: readonly RegExp[];
  /** Patterns stdout and stderr together must match (all of them). */
  readonly output?: readonly RegExp[];
  /** Patterns that must NOT appear in stdout and stderr together. */
  readonly notOutput?: readonly RegExp[];
  /** Exact stdout (after trimming trailing whitespace). */
  readonly stdoutEquals?: string;
  /** How to say what was checked, when the patterns do not read well (`one pod, 2/2 Running`). */
  readonly describe?: string;
}

/** Every unmet condition, as sentences; empty when the result is as expected. */
export function checkResult(expect: Expectation, result: CommandResult): string[] {
  const problems: string[] = [];
  if (result.error) problems.push(`the command did not complete: ${result.error}`);
  const wantExit = expect.exitCodeIn ?? [expect.exitCode ?? 0];
  // A process that did not complete has no exit code worth naming.
  const exitCode = result.error === undefined ? result.code : undefined;
  if (exitCode === undefined || !wantExit.includes(exitCode)) {
    problems.push(`expected exit code ${wantExit.join(" or ")}, got ${exitCode ?? "none"}`);
  }
  const combined = `${result.stdout}${result.stderr}`;
  for (const pattern of expect.stdout ?? []) {
    if (!pattern.test(result.stdout)) problems.push(`expected the output to match ${pattern}`);
  }
  for (const pattern of expect.output ?? []) {
    if (!pattern.test(combined)) problems.push(`expected the output to match ${pattern}`);
  }
  for (const pattern of expect.notOutput ?? []) {
    if (pattern.test(combined)) problems.push(`expected the output not to match ${pattern}`);
  }
  if (expect.stdoutEquals !== undefined && result.stdout.trimEnd() !== expect.stdoutEquals) {
    problems.push(
      `expected the output to be ${JSON.stringify(expect.stdoutEquals)}, got ${JSON.stringify(result.stdout.trimEnd())}`,
    );
  }
  return problems;
}

/** A pattern as a reader would write it: `/namespace\/curl created/` → `"namespace/curl created"`. */
function readable(pattern: RegExp): string {
  return JSON.stringify(pattern.source.replace(/\\(.)/g, "$1"));
}

/** A one-line summary of what a step checks, printed after a step holds: `exit 0, "HTTP/1.1 200 OK"`. */
export function describeExpectation(expect: Expectation): string {
  const parts = [`exit ${(expect.exitCodeIn ?? [expect.exitCode ?? 0]).join("|")}`];
  if (expect.describe !== undefined) return `${parts[0]}, ${expect.describe}`;
  for (const pattern of [...(expect.stdout ?? []), ...(expect.output ?? [])]) parts.push(readable(pattern));
  for (const pattern of expect.notOutput ?? []) parts.push(`not ${readable(pattern)}`);
  if (expect.stdoutEquals !== undefined) parts.push(JSON.stringify(expect.stdoutEquals));
  return parts.join(", ");
}

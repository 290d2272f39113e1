/**
 * The demo's step runner: prints a progress line per step, prints each command before running it (as a
 * person following the guide would type it), shows its output, checks the expected observable, and stops at
 * the first step that does not hold, saying which one and why. Clean-up steps always run afterwards and
 * never hide the first failure. All I/O is injected, so the runner is tested with a fake executor and clock.
 */
import type { CommandRunner } from "../../edge/command-runner.ts";
import { checkResult, describeExpectation, type Expectation } from "./expect.ts";
import { formatCommand } from "./shell-quote.ts";

/** Values captured by earlier steps (e.g. the curl pod's name), readable by later steps. */
export type DemoVars = Map<string, string>;

export interface RunnerDeps {
  /** Runs argv (no shell) to completion, capturing stdout and stderr; always given a time limit. */
  readonly runner: CommandRunner;
  readonly write: (text: string) => void;
  /** Milliseconds, monotonic. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface CommandStep {
  readonly kind: "command";
  readonly title: string;
  /** The command, or a function of earlier captures (e.g. `kubectl exec <pod> ...`). */
  readonly argv: readonly string[] | ((vars: DemoVars) => readonly string[]);
  readonly expect: Expectation;
  /** Re-run the command until the expectation holds, for at most timeoutMs (a wait, e.g. `2/2 Running`). */
  readonly waitUntil?: { readonly timeoutMs: number; readonly intervalMs: number };
  /** Store the trimmed stdout (or captureMatch's first group) under this name for later steps. */
  readonly capture?: string;
  /** With capture: store the first group of this pattern's match in stdout instead (no match fails the step). */
  readonly captureMatch?: RegExp;
  /** Per-run limit (default 60 s). */
  readonly timeoutMs?: number;
  /** Commands whose output helps understand a failure of this step; run and shown only when it fails. */
  readonly diagnose?: readonly (readonly string[])[];
  /** A reason to skip the step given earlier captures (e.g. the mesh is already installed); undefined runs it. */
  readonly skip?: (vars: DemoVars) => string | undefined;
}

export interface ActionStep {
  readonly kind: "action";
  readonly title: string;
  /** Does something that is not one of the guide's commands; throws (with a clear message) when it fails. */
  readonly run: (vars: DemoVars, write: (text: string) => void) => Promise<void>;
}

export type Step = CommandStep | ActionStep;

export interface StepFailure {
  /** 1-based position in the step list. */
  readonly index: number;
  readonly title: string;
  readonly problems: readonly string[];
}

export interface RunOutcome {
  readonly ok: boolean;
  readonly passed: number;
  readonly total: number;
  readonly failure?: StepFailure;
  readonly elapsedMs: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** `[ 3/19] title`: the progress line printed before each step. */
export function formatProgress(index: number, total: number, title: string): string {
  const width = String(total).length;
  return `[${String(index).padStart(width)}/${total}] ${title}\n`;
}

/** The failure report: which step, and every reason it did not hold. */
export function formatFailure(failure: StepFailure, total: number): string {
  const lines = [`FAILED: step ${failure.index}/${total} "${failure.title}"`];
  for (const problem of failure.problems) lines.push(`  - ${problem}`);
  return `${lines.join("\n")}\n`;
}

function ensureNewline(text: string): string {
  return text === "" || text.endsWith("\n") ? text : `${text}\n`;
}

async function runCommandStep(step: CommandStep, vars: DemoVars, deps: RunnerDeps): Promise<string[]> {
  const skip = step.skip?.(vars);
  if (skip !== undefined) {
    deps.write(`  skipped: ${skip}\n`);
    return [];
  }
  const argv = typeof step.argv === "function" ? step.argv(vars) : step.argv;
  deps.write(`$ ${formatCommand(argv)}\n`);
  const timeoutMs = step.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = deps.now();
  let result = await deps.runner.run(argv, { timeoutMs });
  let problems = checkResult(step.expect, result);
  if (step.waitUntil) {
    // Bounded: stops at the deadline even if the command keeps answering the wrong thing.
    const deadline = started + step.waitUntil.timeoutMs;
    while (problems.length > 0 && deps.now() + step.waitUntil.intervalMs <= deadline) {
      await deps.sleep(step.waitUntil.intervalMs);
      result = await deps.runner.run(argv, { timeoutMs });
      problems = checkResult(step.expect, result);
    }
  }
  deps.write(ensureNewline(result.stdout));
  deps.write(ensureNewline(result.stderr));
  if (problems.length > 0) {
    if (step.waitUntil) problems.push(`still not so after waiting ${formatSeconds(deps.now() - started)}`);
    for (const extra of step.diagnose ?? []) {
      deps.write(`(diagnostics) $ ${formatCommand(extra)}\n`);
      const shown = await deps.runner.run(extra, { timeoutMs: 30_000 });
      deps.write(ensureNewline(shown.stdout));
      deps.write(ensureNewline(shown.stderr));
    }
    return problems;
  }
  if (step.capture) {
    if (step.captureMatch) {
      const found = step.captureMatch.exec(result.stdout)?.[1];
      if (found === undefined) return [`expected the output to match ${step.captureMatch}`];
      vars.set(step.capture, found);
    } else {
      vars.set(step.capture, result.stdout.trim());
    }
  }
  deps.write(`  ok: ${describeExpectation(step.expect)} (${formatSeconds(deps.now() - started)})\n`);
  return [];
}

async function runActionStep(step: ActionStep, vars: DemoVars, deps: RunnerDeps): Promise<string[]> {
  const started = deps.now();
  try {
    await step.run(vars, deps.write);
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
  deps.write(`  ok (${formatSeconds(deps.now() - started)})\n`);
  return [];
}

/** Runs one step; returns its problems (empty when it holds). Never throws. */
export async function runStep(step: Step, vars: DemoVars, deps: RunnerDeps): Promise<string[]> {
  try {
    return step.kind === "command"
      ? await runCommandStep(step, vars, deps)
      : await runActionStep(step, vars, deps);
  } catch (error) {
    return [`the step could not run: ${error instanceof Error ? error.message : String(error)}`];
  }
}

/**
 * Runs the steps in order and stops at the first that does not hold, then runs every clean-up step (their
 * problems are reported as warnings). Prints the total time and the verdict last.
 */
export async function runSteps(
  steps: readonly Step[],
  cleanup: readonly Step[],
  deps: RunnerDeps,
  vars: DemoVars = new Map(),
): Promise<RunOutcome> {
  const started = deps.now();
  let failure: StepFailure | undefined;
  let passed = 0;
  for (const [i, step] of steps.entries()) {
    deps.write(`\n${formatProgress(i + 1, steps.length, step.title)}`);
    const problems = await runStep(step, vars, deps);
    if (problems.length > 0) {
      failure = { index: i + 1, title: step.title, problems };
      deps.write(formatFailure(failure, steps.length));
      break;
    }
    passed += 1;
  }
  if (cleanup.length > 0) deps.write("\nCleaning up\n");
  for (const step of cleanup) {
    deps.write(`- ${step.title}\n`);
    const problems = await runStep(step, vars, deps);
    for (const problem of problems) deps.write(`  warning: clean-up step "${step.title}": ${problem}\n`);
  }
  const elapsedMs = deps.now() - started;
  if (failure) {
    deps.write(
      `\nDemo FAILED at step ${failure.index}/${steps.length} "${failure.title}" (${passed} steps passed) in ${formatSeconds(elapsedMs)}\n`,
    );
    return { ok: false, passed, total: steps.length, failure, elapsedMs };
  }
  deps.write(`\nDemo passed: ${passed}/${steps.length} steps in ${formatSeconds(elapsedMs)}\n`);
  return { ok: true, passed, total: steps.length, elapsedMs };
}

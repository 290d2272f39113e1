/**
 * What clients ask of a pod's running containers through the node connector: `kubectl exec` and `attach`,
 * and which log a `kubectl logs` request reads. Errors are NodeConnectorErrors with kubectl's wording.
 */
import type { ExecStreams, TerminalResizes } from "../node-connector.ts";
import { NodeConnectorError } from "../node-connector.ts";
import type { ContainerLaunch } from "./container-launch.ts";
import { execInContainer } from "./exec.ts";
import { formatLine } from "./log-store.ts";
import type { ContainerRecord, PodContext } from "./pod-context.ts";
import type { RunningProcess } from "./process-group.ts";

/** A TTY session whose client sends no sizes: the terminal keeps its default size. */
const NO_RESIZES: TerminalResizes = { onResize: () => () => {} };

function runningContainer(ctx: PodContext, containerName: string | undefined): ContainerRecord {
  const rec =
    containerName === undefined
      ? ctx.containers[0]
      : ctx.containers.find((r) => r.spec.name === containerName);
  if (!rec) {
    throw new NodeConnectorError(400, `container ${containerName ?? ""} is not valid for pod ${ctx.name}`);
  }
  if (!rec.proc || !rec.launch) {
    throw new NodeConnectorError(400, `container ${rec.spec.name} is not running in pod ${ctx.name}`);
  }
  return rec;
}

/**
 * `kubectl exec`: runs `command` in a container as its uid with its env, streams attached, on a terminal with
 * `tty`; resolves the exit code.
 */
export async function exec(
  ctx: PodContext,
  containerName: string | undefined,
  command: readonly string[],
  tty: boolean,
  streams: ExecStreams,
  signal: AbortSignal,
): Promise<number> {
  const rec = runningContainer(ctx, containerName);
  if (command.length === 0) {
    throw new NodeConnectorError(400, "you must specify at least one command for the container");
  }
  try {
    // Ends with the pod too: terminate() aborts the worker's signal.
    return await execInContainer(
      rec.launch as ContainerLaunch,
      command,
      { ...streams, resize: tty ? (streams.resize ?? NO_RESIZES) : null },
      AbortSignal.any([signal, ctx.signal]),
    );
  } catch (error) {
    throw new NodeConnectorError(500, `exec failed: ${(error as Error).message}`);
  }
}

/**
 * `kubectl attach`: joins the container's main process: its stdin and terminal when the spec asked for them,
 * else its output from now on (read from the live log). Resolves the exit code when the process ends, 0 when
 * the client leaves first.
 */
export async function attach(
  ctx: PodContext,
  containerName: string | undefined,
  streams: ExecStreams,
  signal: AbortSignal,
): Promise<number> {
  const rec = runningContainer(ctx, containerName);
  const both = AbortSignal.any([signal, ctx.signal]);
  if (rec.attachable) return (await rec.attachable.attach(streams, both))?.exitCode ?? 0;
  const proc = rec.proc as RunningProcess;
  const off = ctx.deps.logs.subscribe(ctx.uid, rec.spec.name, rec.restartCount, (line) => {
    if (line) (line.stream === "stdout" ? streams.stdout : streams.stderr).write(formatLine(line, false));
  });
  try {
    const ended = new Promise<undefined>((resolve) =>
      both.addEventListener("abort", () => resolve(undefined)),
    );
    return (await Promise.race([proc.exited, ended]))?.exitCode ?? 0;
  } finally {
    off();
  }
}

/** The container a log request names (first container by default), and which attempt to read. */
export function logTarget(
  ctx: PodContext,
  containerName: string | undefined,
  previous: boolean,
): { container: string; attempt: number; live: boolean } {
  const all = [...ctx.containers, ...ctx.initContainers];
  const rec =
    containerName === undefined ? ctx.containers[0] : all.find((r) => r.spec.name === containerName);
  if (!rec) {
    const names = all.map((r) => r.spec.name).join(" ");
    throw new NodeConnectorError(
      400,
      `container ${containerName ?? ""} is not valid for pod ${ctx.name}; choose one of: [${names}]`,
    );
  }
  if (!rec.started && !("terminated" in rec.state)) {
    const reason = "waiting" in rec.state ? rec.state.waiting.reason : "not started";
    throw new NodeConnectorError(
      400,
      `container "${rec.spec.name}" in pod "${ctx.name}" is waiting to start: ${reason}`,
    );
  }
  // Attempt k writes log k; restartCount is the newest attempt (running, or ended and waiting to restart).
  if (previous) {
    if (rec.restartCount < 1) {
      throw new NodeConnectorError(
        400,
        `previous terminated container "${rec.spec.name}" in pod "${ctx.name}" not found`,
      );
    }
    return { container: rec.spec.name, attempt: rec.restartCount - 1, live: false };
  }
  return { container: rec.spec.name, attempt: rec.restartCount, live: "running" in rec.state };
}

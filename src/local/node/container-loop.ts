/**
 * One container of a pod, run to completion under the restart policy: its env sources, the launch, each
 * attempt (start, events, probes, exit) and the kubelet's back-off between attempts (10 s doubling to 300 s,
 * reset after a long run).
 */
import { randomBytes } from "node:crypto";
import type { V1Container } from "@kubernetes/client-node";
import { type AttachableProcess, startAttachable } from "./attachable.ts";
import {
  buildContainerLaunch,
  type ContainerLaunch,
  type EnvSources,
  envSourceNames,
  type LaunchFailure,
  NO_ENV_SOURCES,
} from "./container-launch.ts";
import { startProbes } from "./container-probes.ts";
import { type ContainerRecord, type PodContext, sleep, timestamp } from "./pod-context.ts";
import { type RunningProcess, startProcess } from "./process-group.ts";

/** Fetches the ConfigMaps and Secrets the container's env reads (a failure to reach the API is retried). */
async function envSources(ctx: PodContext, spec: V1Container): Promise<EnvSources | LaunchFailure> {
  const names = envSourceNames(spec);
  if (names.configMaps.length === 0 && names.secrets.length === 0) return NO_ENV_SOURCES;
  try {
    const read = (kind: "ConfigMap" | "Secret", list: string[]) =>
      Promise.all(list.map(async (n) => [n, await ctx.deps.readEnvSource(kind, ctx.namespace, n)] as const));
    return {
      configMaps: new Map(await read("ConfigMap", names.configMaps)),
      secrets: new Map(await read("Secret", names.secrets)),
    };
  } catch (error) {
    return {
      reason: "CreateContainerConfigError",
      message: `cannot read env sources: ${(error as Error).message}`,
    };
  }
}

/** Runs one container to completion under the restart policy. True when it ended successfully for good. */
export async function runContainer(
  ctx: PodContext,
  rec: ContainerRecord,
  signal: AbortSignal,
): Promise<boolean> {
  const { backoff } = ctx.deps;
  let delay = backoff.baseMs;
  let attempted = false;
  while (!signal.aborted) {
    if (attempted) rec.restartCount += 1;
    attempted = true;
    const sources = await envSources(ctx, rec.spec);
    const launch: ContainerLaunch | LaunchFailure =
      "reason" in sources
        ? sources
        : !ctx.sandboxAlive()
          ? { reason: "StartError", message: "the pod sandbox is gone (its namespace holder exited)" }
          : buildContainerLaunch(
              ctx.pod,
              rec.spec,
              ctx.facts(),
              ctx.deps.entrypoints,
              ctx.deps.files,
              sources,
            );
    const startedAt = timestamp();
    const startedMs = ctx.clock();
    let exitCode: number;
    if ("reason" in launch && launch.reason === "CreateContainerConfigError") {
      // The kubelet keeps such a container waiting and retries; it never counts as a restart.
      rec.state = { waiting: { reason: launch.reason, message: launch.message } };
      ctx.changed();
      ctx.event("Warning", "Failed", `Error: ${launch.message}`, rec);
      attempted = false;
      await sleep(delay, signal);
      delay = Math.min(delay * 2, backoff.maxMs);
      continue;
    }
    const exit = await attempt(ctx, rec, launch, startedAt, signal);
    if (exit === undefined) return false;
    exitCode = exit;
    if (signal.aborted) return false;
    const policy = ctx.policy;
    if (rec.init) {
      if (exitCode === 0) return true;
      if (policy === "Never") return false;
    } else if (policy === "Never" || (policy === "OnFailure" && exitCode === 0)) {
      return exitCode === 0;
    }
    // A container that ran long enough earns a fresh back-off (the kubelet forgets after 10 minutes).
    if (ctx.clock() - startedMs > 2 * backoff.maxMs) delay = backoff.baseMs;
    rec.lastState = rec.state;
    ctx.event(
      "Warning",
      "BackOff",
      `Back-off restarting failed container ${rec.spec.name} in pod ${ctx.name}_${ctx.namespace}(${ctx.uid})`,
      rec,
    );
    rec.state = {
      waiting: {
        reason: "CrashLoopBackOff",
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${rec.spec.name} pod=${ctx.name}_${ctx.namespace}(${ctx.uid})`,
      },
    };
    ctx.changed();
    await sleep(delay, signal);
    delay = Math.min(delay * 2, backoff.maxMs);
  }
  return false;
}

/** One attempt: start, run probes, wait for the exit. Resolves with the exit code (undefined when aborted first). */
async function attempt(
  ctx: PodContext,
  rec: ContainerRecord,
  launch: ContainerLaunch | LaunchFailure,
  startedAt: string,
  signal: AbortSignal,
): Promise<number | undefined> {
  const containerID = `osm-local://${randomBytes(16).toString("hex")}`;
  const fail = (message: string) => {
    rec.state = {
      terminated: {
        exitCode: 128,
        reason: "StartError",
        message,
        startedAt,
        finishedAt: timestamp(),
        containerID,
      },
    };
    rec.containerID = containerID;
    ctx.changed();
    ctx.event("Warning", "Failed", `Error: ${message}`, rec);
    return 128;
  };
  if ("reason" in launch) return fail(launch.message);
  const writer = ctx.deps.logs.open(ctx.uid, rec.spec.name, rec.restartCount);
  let proc: RunningProcess;
  let attachable: AttachableProcess | undefined;
  try {
    const { stdin, tty, stdinOnce } = rec.spec;
    if (stdin || tty) {
      attachable = await startAttachable(
        launch.argv,
        { env: launch.env, cwd: launch.cwd, tty: tty === true, stdinOnce: stdinOnce === true },
        writer,
      );
      proc = attachable;
    } else proc = await startProcess(launch.argv, { env: launch.env, cwd: launch.cwd }, writer);
  } catch (error) {
    writer.close();
    return fail(`failed to start container ${rec.spec.name}: ${(error as Error).message}`);
  }
  if (signal.aborted) {
    proc.signal("SIGKILL");
    await proc.exited;
    return undefined;
  }
  rec.proc = proc;
  rec.attachable = attachable;
  rec.launch = launch;
  rec.containerID = containerID;
  rec.started = true;
  rec.state = { running: { startedAt } };
  rec.startupPassed = !rec.spec.startupProbe;
  rec.ready = !rec.init && !rec.spec.readinessProbe && !rec.spec.startupProbe;
  ctx.changed();
  ctx.event(
    "Normal",
    "Pulled",
    `Container image "${rec.spec.image ?? ""}" already present on machine (images are not pulled: commands resolve on the host)`,
    rec,
  );
  ctx.event("Normal", "Created", `Created container ${rec.spec.name}`, rec);
  ctx.event("Normal", "Started", `Started container ${rec.spec.name}`, rec);
  if (!rec.init) void startProbes(ctx, rec, proc, signal);
  const exit = await proc.exited;
  rec.proc = undefined;
  rec.attachable = undefined;
  rec.startupPassed = false;
  rec.ready = false;
  const reason = exit.exitCode === 0 ? "Completed" : "Error";
  rec.state = {
    terminated: {
      exitCode: exit.exitCode,
      ...(exit.signal !== undefined ? { signal: exit.signal } : {}),
      reason,
      startedAt,
      finishedAt: timestamp(),
      containerID,
    },
  };
  ctx.changed();
  return exit.exitCode;
}

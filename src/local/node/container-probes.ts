/**
 * A running container's health and stop: startup, readiness and liveness probes (as the kubelet: startup
 * first, the others after it), the preStop hook, and SIGTERM then SIGKILL after the grace period.
 */
import type { V1Probe } from "@kubernetes/client-node";
import type { ContainerLaunch } from "./container-launch.ts";
import { execInContainer } from "./exec.ts";
import { type ContainerRecord, type PodContext, sleep } from "./pod-context.ts";
import { runProbe } from "./probes.ts";
import type { RunningProcess } from "./process-group.ts";

/** startupProbe first (readiness and liveness wait for it, as in the kubelet), then the other two. */
export async function startProbes(
  ctx: PodContext,
  rec: ContainerRecord,
  proc: RunningProcess,
  signal: AbortSignal,
): Promise<void> {
  const { startupProbe, readinessProbe, livenessProbe } = rec.spec;
  if (startupProbe) {
    if (!(await probeLoop(ctx, rec, proc, startupProbe, "startup", signal))) return;
    rec.startupPassed = true;
    if (!readinessProbe) rec.ready = true;
    ctx.changed();
  }
  if (readinessProbe) void probeLoop(ctx, rec, proc, readinessProbe, "readiness", signal);
  if (livenessProbe) void probeLoop(ctx, rec, proc, livenessProbe, "liveness", signal);
}

/**
 * Runs one probe every period while this attempt runs. Readiness flips `ready`; liveness and startup kill the
 * attempt after `failureThreshold` failures (the restart policy then applies). Startup resolves true on its
 * first success.
 */
async function probeLoop(
  ctx: PodContext,
  rec: ContainerRecord,
  proc: RunningProcess,
  probe: V1Probe,
  kind: "readiness" | "liveness" | "startup",
  signal: AbortSignal,
): Promise<boolean> {
  const period = (probe.periodSeconds ?? 10) * 1000;
  const failureThreshold = probe.failureThreshold ?? 3;
  const successThreshold = probe.successThreshold ?? 1;
  const launch = rec.launch as ContainerLaunch;
  let ok = 0;
  let bad = 0;
  await sleep((probe.initialDelaySeconds ?? 0) * 1000, signal);
  while (!signal.aborted && rec.proc === proc) {
    const success = await runProbe(probe, rec.spec, ctx.podIP(), (cmd, timeoutMs) =>
      execInContainer(launch, cmd, { stdin: null, stdout: null, stderr: null }, signal, timeoutMs).catch(
        () => 127,
      ),
    );
    if (rec.proc !== proc) return false;
    if (!success) {
      ctx.event("Warning", "Unhealthy", `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed`, rec);
    }
    if (kind === "startup" && success) return true;
    ok = success ? ok + 1 : 0;
    bad = success ? 0 : bad + 1;
    if (kind === "readiness") {
      const ready = rec.ready ? bad < failureThreshold : ok >= successThreshold;
      if (ready !== rec.ready) {
        rec.ready = ready;
        ctx.changed();
      }
    } else if (bad >= failureThreshold) {
      ctx.deps.logger.info(
        { pod: `${ctx.namespace}/${ctx.name}`, container: rec.spec.name },
        `${kind} probe failed; restarting`,
      );
      ctx.event(
        "Normal",
        "Killing",
        `Container ${rec.spec.name} failed ${kind} probe, will be restarted`,
        rec,
      );
      await stopProcess(proc, (ctx.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
      return false;
    }
    await sleep(period, signal);
  }
  return false;
}

/** Runs a container's `lifecycle.preStop` (exec, httpGet, tcpSocket, sleep) within `budgetMs`. */
export async function preStop(ctx: PodContext, rec: ContainerRecord, budgetMs: number): Promise<void> {
  const hook = rec.spec.lifecycle?.preStop;
  const launch = rec.launch;
  if (!hook || !launch || budgetMs <= 0) return;
  if (hook.sleep) {
    await new Promise((r) => setTimeout(r, Math.min(hook.sleep?.seconds ?? 0, budgetMs / 1000) * 1000));
    return;
  }
  const ok = await runProbe(
    { ...hook, timeoutSeconds: Math.max(1, Math.floor(budgetMs / 1000)) },
    rec.spec,
    ctx.podIP(),
    (cmd, timeoutMs) =>
      execInContainer(
        launch,
        cmd,
        { stdin: null, stdout: null, stderr: null },
        AbortSignal.timeout(timeoutMs),
      ).catch(() => 127),
  );
  if (!ok)
    ctx.event("Warning", "FailedPreStopHook", `PreStop hook for container ${rec.spec.name} failed`, rec);
}

export async function stopProcess(proc: RunningProcess, graceMs: number): Promise<void> {
  proc.signal("SIGTERM");
  const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
  if ((await Promise.race([proc.exited, timer])) === "timeout") {
    proc.signal("SIGKILL");
    await proc.exited;
  }
}

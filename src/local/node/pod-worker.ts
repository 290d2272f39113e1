/**
 * One pod on this node, from sandbox to teardown: the sandbox (`pod-sandbox.ts`), init containers in order
 * to completion, then every container under its restart policy (`container-loop.ts`, with its probes in
 * `container-probes.ts`), exec/attach/logs (`container-sessions.ts`), and termination with a grace period.
 * It keeps a plain view of its state (PodView); `pod-status.ts` turns that view into the Kubernetes PodStatus.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { systemClock } from "../../edge/clock.ts";
import type { ExecStreams } from "../node-connector.ts";
import { runContainer } from "./container-loop.ts";
import { preStop, stopProcess } from "./container-probes.ts";
import { attach, exec, logTarget } from "./container-sessions.ts";
import {
  type ContainerRecord,
  type ContainerView,
  type PodContext,
  type PodView,
  type PodWorkerDeps,
  type ResumeState,
  timestamp,
} from "./pod-context.ts";
import { PodSandbox } from "./pod-sandbox.ts";

export class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly pod: V1Pod;
  readonly #deps: PodWorkerDeps;
  readonly #abort = new AbortController();
  readonly #init: ContainerRecord[];
  readonly #main: ContainerRecord[];
  readonly #startTime: string;
  readonly #sandbox: PodSandbox;
  readonly #ctx: PodContext;
  #initialized: boolean;
  #initFailed = false;
  #terminating = false;
  #done: Promise<void> = Promise.resolve();

  constructor(pod: V1Pod, deps: PodWorkerDeps, resume?: ResumeState) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.namespace = pod.metadata?.namespace ?? "default";
    this.name = pod.metadata?.name ?? "";
    this.#deps = deps;
    this.#sandbox = new PodSandbox(pod, deps);
    // A pod resumed after an agent restart keeps the start time it was reported with.
    const reported = pod.status?.startTime as Date | string | undefined;
    this.#startTime = reported ? new Date(reported).toISOString().replace(/\.\d{3}Z$/, "Z") : timestamp();
    const initWaiting = { waiting: { reason: "PodInitializing" } };
    const record = (spec: V1Container, init: boolean): ContainerRecord => ({
      spec,
      init,
      state:
        init || (pod.spec?.initContainers ?? []).length > 0
          ? initWaiting
          : { waiting: { reason: "ContainerCreating" } },
      lastState: undefined,
      restartCount: resume?.restartCounts.get(`${init ? "init:" : ""}${spec.name}`) ?? 0,
      ready: false,
      started: false,
      startupPassed: false,
      containerID: undefined,
      proc: undefined,
      attachable: undefined,
      launch: undefined,
    });
    this.#init = (pod.spec?.initContainers ?? []).map((c) => record(c, true));
    this.#main = (pod.spec?.containers ?? []).map((c) => record(c, false));
    this.#initialized = this.#init.length === 0 || (resume?.initialized ?? false);
    this.#ctx = {
      pod,
      uid: this.uid,
      namespace: this.namespace,
      name: this.name,
      deps,
      clock: deps.clock ?? systemClock,
      policy: pod.spec?.restartPolicy ?? "Always",
      podIP: () => this.#sandbox.podIPs[0] ?? "",
      facts: () => this.#sandbox.facts(),
      sandboxAlive: () => this.#sandbox.alive,
      initContainers: this.#init,
      containers: this.#main,
      signal: this.#abort.signal,
      changed: () => deps.onChange(),
      event: (type, reason, message, rec) => {
        const fieldPath = rec
          ? `spec.${rec.init ? "initContainers" : "containers"}{${rec.spec.name}}`
          : undefined;
        deps.onEvent({ type, reason, message, ...(fieldPath ? { fieldPath } : {}) });
      },
    };
    if (this.#initialized && resume?.initialized) {
      for (const r of this.#init)
        r.state = { terminated: { exitCode: 0, reason: "Completed", finishedAt: timestamp() } };
    }
  }

  /** Starts the pod; returns at once (the pod runs in the background until `terminate`). */
  start(): void {
    this.#done = this.#run().catch((error: unknown) => {
      this.#deps.logger.error({ err: error, pod: `${this.namespace}/${this.name}` }, "pod worker failed");
    });
  }

  view(): PodView {
    const cv = (r: ContainerRecord): ContainerView => ({
      name: r.spec.name,
      image: r.spec.image ?? "",
      state: r.state,
      lastState: r.lastState,
      restartCount: r.restartCount,
      ready: r.ready,
      started: r.started,
      startupPassed: r.startupPassed,
      containerID: r.containerID,
    });
    return {
      uid: this.uid,
      namespace: this.namespace,
      name: this.name,
      sandbox: this.#sandbox.name,
      podIPs: this.#sandbox.podIPs,
      hostIP: this.#deps.hostIP,
      startTime: this.#startTime,
      restartPolicy: this.#ctx.policy,
      initialized: this.#initialized,
      initFailed: this.#initFailed,
      sandboxError: this.#sandbox.error,
      terminating: this.#terminating,
      initContainers: this.#init.map(cv),
      containers: this.#main.map(cv),
    };
  }

  /** The live sandbox (undefined before it exists and after a finished pod gave it back). */
  get sandbox(): string | undefined {
    return this.#sandbox.live;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    await this.#sandbox.setup(this.#ctx, signal);
    if (signal.aborted) return;
    if (!this.#initialized) {
      for (const rec of this.#init) {
        const ok = await runContainer(this.#ctx, rec, signal);
        if (!ok) {
          if (!signal.aborted) {
            this.#initFailed = true;
            this.#ctx.changed();
            await this.#sandbox.release();
          }
          return;
        }
      }
      this.#initialized = true;
      for (const r of this.#main) r.state = { waiting: { reason: "ContainerCreating" } };
      this.#ctx.changed();
    }
    await Promise.all(this.#main.map((rec) => runContainer(this.#ctx, rec, signal)));
    // Every container is done for good (Never/OnFailure): the pod keeps its status and logs, not its netns.
    if (!signal.aborted) await this.#sandbox.release();
  }

  /**
   * `kubectl exec`: runs `command` in a container as its uid with its env, streams attached, on a terminal with
   * `tty`; resolves the exit code.
   */
  exec(
    containerName: string | undefined,
    command: readonly string[],
    tty: boolean,
    streams: ExecStreams,
    signal: AbortSignal,
  ): Promise<number> {
    return exec(this.#ctx, containerName, command, tty, streams, signal);
  }

  /** `kubectl attach`: see `container-sessions.ts`. */
  attach(containerName: string | undefined, streams: ExecStreams, signal: AbortSignal): Promise<number> {
    return attach(this.#ctx, containerName, streams, signal);
  }

  /** The container a log request names (first container by default), and which attempt to read. */
  logTarget(
    containerName: string | undefined,
    previous: boolean,
  ): { container: string; attempt: number; live: boolean } {
    return logTarget(this.#ctx, containerName, previous);
  }

  /**
   * Stops the pod: SIGTERM to every container, SIGKILL after the grace period, then every process left in the
   * netns (exec sessions, escaped daemons), then the veth, netns, address and logs. Safe to call twice.
   */
  async terminate(graceSeconds: number | undefined): Promise<void> {
    if (!this.#terminating) {
      this.#terminating = true;
      this.#ctx.changed();
    }
    this.#abort.abort();
    const graceMs = (graceSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    const running = [...this.#main, ...this.#init].filter((r) => r.proc);
    for (const r of running) this.#ctx.event("Normal", "Killing", `Stopping container ${r.spec.name}`, r);
    // The grace period covers the preStop hook and the wait after SIGTERM, as in the kubelet.
    const deadline = Date.now() + graceMs;
    await Promise.all(
      running.map(async (r) => {
        const proc = r.proc;
        if (!proc) return;
        await preStop(this.#ctx, r, graceMs);
        await stopProcess(proc, Math.max(0, deadline - Date.now()));
      }),
    );
    await this.#done;
    await this.#sandbox.remove();
    this.#deps.logs.removePod(this.uid);
    this.#deps.dropPodFiles?.(this.uid);
  }
}

/**
 * One pod on this node, from sandbox to teardown: netns + addresses, init containers in order to completion,
 * then every container under its restart policy with the kubelet's back-off, readiness/liveness probes, exec,
 * and termination with a grace period. It keeps a plain view of its state (PodView); `pod-status.ts` turns that
 * view into the Kubernetes PodStatus.
 */
import { randomBytes } from "node:crypto";
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ExecStreams, TerminalResizes } from "../node-connector.ts";
import { NodeConnectorError } from "../node-connector.ts";
import { type AttachableProcess, startAttachable } from "./attachable.ts";
import {
  buildContainerLaunch,
  type ContainerLaunch,
  type EnvSources,
  envSourceNames,
  type FileProbe,
  type LaunchFailure,
  NO_ENV_SOURCES,
} from "./container-launch.ts";
import type { EntrypointRegistry } from "./entrypoints.ts";
import { execInContainer } from "./exec.ts";
import type { Ipam } from "./ipam.ts";
import { formatLine, type LogStore } from "./log-store.ts";
import type { HostNetwork, SandboxRoute } from "./network.ts";
import type { PodEnvironment } from "./pod-files.ts";
import { type PodNamespaceHolder, podHostname, startPodNamespaces } from "./pod-namespaces.ts";
import { runProbe } from "./probes.ts";
import { type RunningProcess, startProcess } from "./process-group.ts";

export type ContainerStateView =
  | { readonly waiting: { readonly reason: string; readonly message?: string } }
  | { readonly running: { readonly startedAt: string } }
  | {
      readonly terminated: {
        readonly exitCode: number;
        readonly signal?: number;
        readonly reason: string;
        readonly message?: string;
        readonly startedAt?: string;
        readonly finishedAt: string;
        readonly containerID?: string;
      };
    };

export interface ContainerView {
  readonly name: string;
  readonly image: string;
  readonly state: ContainerStateView;
  readonly lastState: ContainerStateView | undefined;
  readonly restartCount: number;
  readonly ready: boolean;
  readonly started: boolean;
  /** Running and past its startupProbe (if any): the kubelet's `containerStatuses[].started`. */
  readonly startupPassed: boolean;
  readonly containerID: string | undefined;
}

export interface PodView {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly sandbox: string | undefined;
  readonly podIPs: readonly string[];
  readonly hostIP: string;
  readonly startTime: string;
  readonly restartPolicy: string;
  readonly initialized: boolean;
  /** An init container failed under restartPolicy Never: the pod is Failed. */
  readonly initFailed: boolean;
  readonly sandboxError: string | undefined;
  readonly terminating: boolean;
  readonly initContainers: readonly ContainerView[];
  readonly containers: readonly ContainerView[];
}

export interface Backoff {
  /** First restart delay (kubelet: 10 s). */
  readonly baseMs: number;
  /** Cap (kubelet: 300 s). */
  readonly maxMs: number;
}

export interface PodWorkerDeps {
  readonly network: HostNetwork;
  readonly ipam: Ipam;
  readonly logs: LogStore;
  readonly entrypoints: EntrypointRegistry;
  readonly files: FileProbe;
  readonly backoff: Backoff;
  readonly nodeName: string;
  readonly hostIP: string;
  readonly logger: Logger;
  /**
   * The kubelet-managed files and env of the pod (hosts, service account), made once its IPs are known;
   * undefined: none (the runtime alone, without an API server). `dropPodFiles` removes them at teardown.
   */
  readonly podEnvironment?: (pod: V1Pod, podIPs: readonly string[]) => Promise<PodEnvironment>;
  readonly dropPodFiles?: (uid: string) => void;
  /** Host paths hidden from the pod (the daemon's state folder), see `pod-namespaces.ts`. */
  readonly hiddenPaths: readonly string[];
  /** Routes every sandbox gets (external hosts), read when the sandbox is made. */
  readonly routes: () => readonly SandboxRoute[];
  readonly onChange: () => void;
  /** A kubelet-style event about this pod (Created, Started, BackOff, Killing, Unhealthy, Failed...). */
  readonly onEvent: (event: PodEvent) => void;
  /** Reads a ConfigMap's or Secret's data (Secret values decoded); null when absent. Throws when unreachable. */
  readonly readEnvSource: (
    kind: "ConfigMap" | "Secret",
    namespace: string,
    name: string,
  ) => Promise<Record<string, string> | null>;
}

export interface PodEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
  /** `spec.containers{name}` / `spec.initContainers{name}`, as the kubelet sets involvedObject.fieldPath. */
  readonly fieldPath?: string;
}

/** Counts carried over from an earlier agent run (reconcile after restart). */
export interface ResumeState {
  readonly initialized: boolean;
  readonly restartCounts: ReadonlyMap<string, number>;
}

interface ContainerRecord {
  readonly spec: V1Container;
  readonly init: boolean;
  state: ContainerStateView;
  lastState: ContainerStateView | undefined;
  restartCount: number;
  ready: boolean;
  started: boolean;
  startupPassed: boolean;
  containerID: string | undefined;
  proc: RunningProcess | undefined;
  /** Set while the running attempt was started for attach (`stdin`/`tty` in the spec). */
  attachable: AttachableProcess | undefined;
  launch: ContainerLaunch | undefined;
}

/** A TTY session whose client sends no sizes: the terminal keeps its default size. */
const NO_RESIZES: TerminalResizes = { onResize: () => () => {} };

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

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
  #sandbox: string | undefined;
  #podIPs: string[] = [];
  #environment: PodEnvironment | undefined;
  #holder: PodNamespaceHolder | undefined;
  #initialized: boolean;
  #initFailed = false;
  #sandboxError: string | undefined;
  #terminating = false;
  /** The sandbox was given back when the pod finished; its name may belong to another pod by now. */
  #released = false;
  #done: Promise<void> = Promise.resolve();

  constructor(pod: V1Pod, deps: PodWorkerDeps, resume?: ResumeState) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.namespace = pod.metadata?.namespace ?? "default";
    this.name = pod.metadata?.name ?? "";
    this.#deps = deps;
    // A pod resumed after an agent restart keeps the start time it was reported with.
    const reported = pod.status?.startTime as Date | string | undefined;
    this.#startTime = reported ? new Date(reported).toISOString().replace(/\.\d{3}Z$/, "Z") : now();
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
    if (this.#initialized && resume?.initialized) {
      for (const r of this.#init)
        r.state = { terminated: { exitCode: 0, reason: "Completed", finishedAt: now() } };
    }
  }

  get #policy(): string {
    return this.pod.spec?.restartPolicy ?? "Always";
  }

  #changed(): void {
    this.#deps.onChange();
  }

  #event(type: PodEvent["type"], reason: string, message: string, rec?: ContainerRecord): void {
    const fieldPath = rec
      ? `spec.${rec.init ? "initContainers" : "containers"}{${rec.spec.name}}`
      : undefined;
    this.#deps.onEvent({ type, reason, message, ...(fieldPath ? { fieldPath } : {}) });
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
      sandbox: this.#sandbox,
      podIPs: this.#podIPs,
      hostIP: this.#deps.hostIP,
      startTime: this.#startTime,
      restartPolicy: this.#policy,
      initialized: this.#initialized,
      initFailed: this.#initFailed,
      sandboxError: this.#sandboxError,
      terminating: this.#terminating,
      initContainers: this.#init.map(cv),
      containers: this.#main.map(cv),
    };
  }

  /** The live sandbox (undefined before it exists and after a finished pod gave it back). */
  get sandbox(): string | undefined {
    return this.#released ? undefined : this.#sandbox;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    await this.#setupSandbox(signal);
    if (signal.aborted) return;
    if (!this.#initialized) {
      for (const rec of this.#init) {
        const ok = await this.#runContainer(rec, signal);
        if (!ok) {
          if (!signal.aborted) {
            this.#initFailed = true;
            this.#changed();
            await this.#releaseSandbox();
          }
          return;
        }
      }
      this.#initialized = true;
      for (const r of this.#main) r.state = { waiting: { reason: "ContainerCreating" } };
      this.#changed();
    }
    await Promise.all(this.#main.map((rec) => this.#runContainer(rec, signal)));
    // Every container is done for good (Never/OnFailure): the pod keeps its status and logs, not its netns.
    if (!signal.aborted) await this.#releaseSandbox();
  }

  /** Gives back the netns and address of a finished pod, as the kubelet tears down a completed pod's sandbox. */
  async #releaseSandbox(): Promise<void> {
    if (!this.#sandbox || this.#released) return;
    this.#released = true;
    await this.#deps.network.deleteSandbox(this.#sandbox);
    this.#deps.ipam.release(this.uid);
  }

  async #setupSandbox(signal: AbortSignal): Promise<void> {
    const { ipam, backoff } = this.#deps;
    let delay = backoff.baseMs;
    while (!signal.aborted) {
      try {
        const slot = ipam.allocate({ owner: this.uid, label: `${this.namespace}/${this.name}` });
        const sandbox = await this.#freshSandbox(slot);
        this.#sandbox = sandbox.name;
        this.#podIPs = [sandbox.ip4, sandbox.ip6];
        this.#environment = await this.#deps.podEnvironment?.(this.pod, this.#podIPs);
        this.#holder = await startPodNamespaces({
          netnsPath: `/run/netns/${sandbox.name}`,
          hostname: podHostname(this.pod),
          mounts: this.#environment?.mounts ?? [],
          hidden: this.#deps.hiddenPaths,
        });
        this.#sandboxError = undefined;
        this.#changed();
        return;
      } catch (error) {
        this.#sandboxError = `failed to create pod sandbox: ${(error as Error).message}`;
        this.#event("Warning", "FailedCreatePodSandBox", this.#sandboxError);
        this.#deps.logger.warn({ pod: `${this.namespace}/${this.name}`, err: error }, "sandbox setup failed");
        this.#changed();
        await sleep(delay, signal);
        delay = Math.min(delay * 2, backoff.maxMs);
      }
    }
  }

  /** Creates the slot's sandbox; if a stale one of an earlier agent is in the way, kills its processes and retries. */
  async #freshSandbox(slot: number) {
    const { network } = this.#deps;
    try {
      return await network.createSandbox(slot, this.#deps.routes());
    } catch {
      const name = network.sandboxName(slot);
      await network.deleteSandbox(name);
      return network.createSandbox(slot, this.#deps.routes());
    }
  }

  /** Fetches the ConfigMaps and Secrets the container's env reads (a failure to reach the API is retried). */
  async #envSources(spec: V1Container): Promise<EnvSources | LaunchFailure> {
    const names = envSourceNames(spec);
    if (names.configMaps.length === 0 && names.secrets.length === 0) return NO_ENV_SOURCES;
    try {
      const read = (kind: "ConfigMap" | "Secret", list: string[]) =>
        Promise.all(
          list.map(async (n) => [n, await this.#deps.readEnvSource(kind, this.namespace, n)] as const),
        );
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

  #facts() {
    return {
      podIP: this.#podIPs[0] ?? "",
      podIPs: this.#podIPs,
      hostIP: this.#deps.hostIP,
      nodeName: this.#deps.nodeName,
      netnsPath: `/run/netns/${this.#sandbox ?? ""}`,
      holderPid: this.#holder?.pid ?? 0,
      serviceEnv: this.#environment?.env ?? {},
    };
  }

  /** Runs one container to completion under the restart policy. True when it ended successfully for good. */
  async #runContainer(rec: ContainerRecord, signal: AbortSignal): Promise<boolean> {
    const { backoff } = this.#deps;
    let delay = backoff.baseMs;
    let attempted = false;
    while (!signal.aborted) {
      if (attempted) rec.restartCount += 1;
      attempted = true;
      const sources = await this.#envSources(rec.spec);
      const launch: ContainerLaunch | LaunchFailure =
        "reason" in sources
          ? sources
          : !this.#holder?.alive
            ? { reason: "StartError", message: "the pod sandbox is gone (its namespace holder exited)" }
            : buildContainerLaunch(
                this.pod,
                rec.spec,
                this.#facts(),
                this.#deps.entrypoints,
                this.#deps.files,
                sources,
              );
      const startedAt = now();
      const startedMs = Date.now();
      let exitCode: number;
      if ("reason" in launch && launch.reason === "CreateContainerConfigError") {
        // The kubelet keeps such a container waiting and retries; it never counts as a restart.
        rec.state = { waiting: { reason: launch.reason, message: launch.message } };
        this.#changed();
        this.#event("Warning", "Failed", `Error: ${launch.message}`, rec);
        attempted = false;
        await sleep(delay, signal);
        delay = Math.min(delay * 2, backoff.maxMs);
        continue;
      }
      const exit = await this.#attempt(rec, launch, startedAt, signal);
      if (exit === undefined) return false;
      exitCode = exit;
      if (signal.aborted) return false;
      const policy = this.#policy;
      if (rec.init) {
        if (exitCode === 0) return true;
        if (policy === "Never") return false;
      } else if (policy === "Never" || (policy === "OnFailure" && exitCode === 0)) {
        return exitCode === 0;
      }
      // A container that ran long enough earns a fresh back-off (the kubelet forgets after 10 minutes).
      if (Date.now() - startedMs > 2 * backoff.maxMs) delay = backoff.baseMs;
      rec.lastState = rec.state;
      this.#event(
        "Warning",
        "BackOff",
        `Back-off restarting failed container ${rec.spec.name} in pod ${this.name}_${this.namespace}(${this.uid})`,
        rec,
      );
      rec.state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${rec.spec.name} pod=${this.name}_${this.namespace}(${this.uid})`,
        },
      };
      this.#changed();
      await sleep(delay, signal);
      delay = Math.min(delay * 2, backoff.maxMs);
    }
    return false;
  }

  /** One attempt: start, run probes, wait for the exit. Resolves with the exit code (undefined when aborted first). */
  async #attempt(
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
          finishedAt: now(),
          containerID,
        },
      };
      rec.containerID = containerID;
      this.#changed();
      this.#event("Warning", "Failed", `Error: ${message}`, rec);
      return 128;
    };
    if ("reason" in launch) return fail(launch.message);
    const writer = this.#deps.logs.open(this.uid, rec.spec.name, rec.restartCount);
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
    this.#changed();
    this.#event(
      "Normal",
      "Pulled",
      `Container image "${rec.spec.image ?? ""}" already present on machine (images are not pulled: commands resolve on the host)`,
      rec,
    );
    this.#event("Normal", "Created", `Created container ${rec.spec.name}`, rec);
    this.#event("Normal", "Started", `Started container ${rec.spec.name}`, rec);
    if (!rec.init) void this.#probes(rec, proc, signal);
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
        finishedAt: now(),
        containerID,
      },
    };
    this.#changed();
    return exit.exitCode;
  }

  /** startupProbe first (readiness and liveness wait for it, as in the kubelet), then the other two. */
  async #probes(rec: ContainerRecord, proc: RunningProcess, signal: AbortSignal): Promise<void> {
    const { startupProbe, readinessProbe, livenessProbe } = rec.spec;
    if (startupProbe) {
      if (!(await this.#probeLoop(rec, proc, startupProbe, "startup", signal))) return;
      rec.startupPassed = true;
      if (!readinessProbe) rec.ready = true;
      this.#changed();
    }
    if (readinessProbe) void this.#probeLoop(rec, proc, readinessProbe, "readiness", signal);
    if (livenessProbe) void this.#probeLoop(rec, proc, livenessProbe, "liveness", signal);
  }

  /**
   * Runs one probe every period while this attempt runs. Readiness flips `ready`; liveness and startup kill the
   * attempt after `failureThreshold` failures (the restart policy then applies). Startup resolves true on its
   * first success.
   */
  async #probeLoop(
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
      const success = await runProbe(probe, rec.spec, this.#podIPs[0] ?? "", (cmd, timeoutMs) =>
        execInContainer(launch, cmd, { stdin: null, stdout: null, stderr: null }, signal, timeoutMs).catch(
          () => 127,
        ),
      );
      if (rec.proc !== proc) return false;
      if (!success) {
        this.#event("Warning", "Unhealthy", `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed`, rec);
      }
      if (kind === "startup" && success) return true;
      ok = success ? ok + 1 : 0;
      bad = success ? 0 : bad + 1;
      if (kind === "readiness") {
        const ready = rec.ready ? bad < failureThreshold : ok >= successThreshold;
        if (ready !== rec.ready) {
          rec.ready = ready;
          this.#changed();
        }
      } else if (bad >= failureThreshold) {
        this.#deps.logger.info(
          { pod: `${this.namespace}/${this.name}`, container: rec.spec.name },
          `${kind} probe failed; restarting`,
        );
        this.#event(
          "Normal",
          "Killing",
          `Container ${rec.spec.name} failed ${kind} probe, will be restarted`,
          rec,
        );
        await this.#stopProcess(proc, this.#grace());
        return false;
      }
      await sleep(period, signal);
    }
    return false;
  }

  #grace(): number {
    return (this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
  }

  /** Runs a container's `lifecycle.preStop` (exec, httpGet, tcpSocket, sleep) within `budgetMs`. */
  async #preStop(rec: ContainerRecord, budgetMs: number): Promise<void> {
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
      this.#podIPs[0] ?? "",
      (cmd, timeoutMs) =>
        execInContainer(
          launch,
          cmd,
          { stdin: null, stdout: null, stderr: null },
          AbortSignal.timeout(timeoutMs),
        ).catch(() => 127),
    );
    if (!ok)
      this.#event("Warning", "FailedPreStopHook", `PreStop hook for container ${rec.spec.name} failed`, rec);
  }

  async #stopProcess(proc: RunningProcess, graceMs: number): Promise<void> {
    proc.signal("SIGTERM");
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([proc.exited, timer])) === "timeout") {
      proc.signal("SIGKILL");
      await proc.exited;
    }
  }

  #running(containerName: string | undefined): ContainerRecord {
    const rec =
      containerName === undefined ? this.#main[0] : this.#main.find((r) => r.spec.name === containerName);
    if (!rec) {
      throw new NodeConnectorError(400, `container ${containerName ?? ""} is not valid for pod ${this.name}`);
    }
    if (!rec.proc || !rec.launch) {
      throw new NodeConnectorError(400, `container ${rec.spec.name} is not running in pod ${this.name}`);
    }
    return rec;
  }

  /**
   * `kubectl exec`: runs `command` in a container as its uid with its env, streams attached, on a terminal with
   * `tty`; resolves the exit code.
   */
  async exec(
    containerName: string | undefined,
    command: readonly string[],
    tty: boolean,
    streams: ExecStreams,
    signal: AbortSignal,
  ): Promise<number> {
    const rec = this.#running(containerName);
    if (command.length === 0) {
      throw new NodeConnectorError(400, "you must specify at least one command for the container");
    }
    try {
      // Ends with the pod too: terminate() aborts the worker's signal.
      return await execInContainer(
        rec.launch as ContainerLaunch,
        command,
        { ...streams, resize: tty ? (streams.resize ?? NO_RESIZES) : null },
        AbortSignal.any([signal, this.#abort.signal]),
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
  async attach(
    containerName: string | undefined,
    streams: ExecStreams,
    signal: AbortSignal,
  ): Promise<number> {
    const rec = this.#running(containerName);
    const both = AbortSignal.any([signal, this.#abort.signal]);
    if (rec.attachable) return (await rec.attachable.attach(streams, both))?.exitCode ?? 0;
    const proc = rec.proc as RunningProcess;
    const off = this.#deps.logs.subscribe(this.uid, rec.spec.name, rec.restartCount, (line) => {
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
  logTarget(
    containerName: string | undefined,
    previous: boolean,
  ): { container: string; attempt: number; live: boolean } {
    const all = [...this.#main, ...this.#init];
    const rec = containerName === undefined ? this.#main[0] : all.find((r) => r.spec.name === containerName);
    if (!rec) {
      const names = all.map((r) => r.spec.name).join(" ");
      throw new NodeConnectorError(
        400,
        `container ${containerName ?? ""} is not valid for pod ${this.name}; choose one of: [${names}]`,
      );
    }
    if (!rec.started && !("terminated" in rec.state)) {
      const reason = "waiting" in rec.state ? rec.state.waiting.reason : "not started";
      throw new NodeConnectorError(
        400,
        `container "${rec.spec.name}" in pod "${this.name}" is waiting to start: ${reason}`,
      );
    }
    // Attempt k writes log k; restartCount is the newest attempt (running, or ended and waiting to restart).
    if (previous) {
      if (rec.restartCount < 1) {
        throw new NodeConnectorError(
          400,
          `previous terminated container "${rec.spec.name}" in pod "${this.name}" not found`,
        );
      }
      return { container: rec.spec.name, attempt: rec.restartCount - 1, live: false };
    }
    return { container: rec.spec.name, attempt: rec.restartCount, live: "running" in rec.state };
  }

  /**
   * Stops the pod: SIGTERM to every container, SIGKILL after the grace period, then every process left in the
   * netns (exec sessions, escaped daemons), then the veth, netns, address and logs. Safe to call twice.
   */
  async terminate(graceSeconds: number | undefined): Promise<void> {
    if (!this.#terminating) {
      this.#terminating = true;
      this.#changed();
    }
    this.#abort.abort();
    const graceMs = (graceSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    const running = [...this.#main, ...this.#init].filter((r) => r.proc);
    for (const r of running) this.#event("Normal", "Killing", `Stopping container ${r.spec.name}`, r);
    // The grace period covers the preStop hook and the wait after SIGTERM, as in the kubelet.
    const deadline = Date.now() + graceMs;
    await Promise.all(
      running.map(async (r) => {
        const proc = r.proc;
        if (!proc) return;
        await this.#preStop(r, graceMs);
        await this.#stopProcess(proc, Math.max(0, deadline - Date.now()));
      }),
    );
    await this.#done;
    const { network, ipam, logs } = this.#deps;
    if (this.#sandbox && !this.#released) {
      await network.deleteSandbox(this.#sandbox);
    }
    ipam.release(this.uid);
    logs.removePod(this.uid);
    this.#deps.dropPodFiles?.(this.uid);
  }
}

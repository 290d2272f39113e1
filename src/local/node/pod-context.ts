/**
 * What the parts of a pod worker share: the views it reports (PodView, read by `pod-status.ts`), its
 * dependencies, one container's record, and `PodContext`, the pod as its parts see it (identity, sandbox
 * facts, change and event callbacks). No behaviour beyond the two small helpers at the end.
 */
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Clock } from "../../edge/clock.ts";
import type { AttachableProcess } from "./attachable.ts";
import type { ContainerLaunch, FileProbe, PodFacts } from "./container-launch.ts";
import type { EntrypointRegistry } from "./entrypoints.ts";
import type { Ipam } from "./ipam.ts";
import type { LogStore } from "./log-store.ts";
import type { HostNetwork, SandboxRoute } from "./network.ts";
import type { PodEnvironment } from "./pod-files.ts";
import type { RunningProcess } from "./process-group.ts";

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
  /** The clock restart back-off reads (default: the machine's); tests pass their own. */
  readonly clock?: Clock;
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

export interface ContainerRecord {
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

/** The pod as the worker's parts (container loop, probes, sessions) see it. */
export interface PodContext {
  readonly pod: V1Pod;
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly deps: PodWorkerDeps;
  /** The clock of restart back-off decisions (`deps.clock`, else the machine's). */
  readonly clock: Clock;
  /** `spec.restartPolicy` (default Always). */
  readonly policy: string;
  /** The pod's first IP ("" before the sandbox exists). */
  podIP(): string;
  /** Where a container of this pod runs: its netns, the holder's namespaces, the pod's addresses and env. */
  facts(): PodFacts;
  /** False once the pod's namespace holder exited (then no container can start). */
  sandboxAlive(): boolean;
  readonly initContainers: readonly ContainerRecord[];
  readonly containers: readonly ContainerRecord[];
  /** Ends with the pod (terminate aborts it). */
  readonly signal: AbortSignal;
  changed(): void;
  event(type: PodEvent["type"], reason: string, message: string, rec?: ContainerRecord): void;
}

/** An RFC 3339 timestamp to the second, as container states carry them. */
export const timestamp = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

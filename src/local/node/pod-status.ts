/**
 * PodView → Kubernetes PodStatus, as the kubelet computes it (pkg/kubelet/kubelet_pods.go: getPhase,
 * generateAPIPodStatus; pkg/kubelet/status/generate.go). Pure. The API server's Table printer derives
 * `READY 2/2`, `STATUS Running | Init:Error | Init:CrashLoopBackOff | CrashLoopBackOff` and `RESTARTS` from it.
 */
import type {
  V1ContainerState,
  V1ContainerStatus,
  V1PodCondition,
  V1PodStatus,
} from "@kubernetes/client-node";
import type { ContainerStateView, ContainerView, PodView } from "./pod-context.ts";

function toState(s: ContainerStateView): V1ContainerState {
  if ("waiting" in s)
    return {
      waiting: { reason: s.waiting.reason, ...(s.waiting.message ? { message: s.waiting.message } : {}) },
    };
  if ("running" in s) return { running: { startedAt: new Date(s.running.startedAt) } };
  const t = s.terminated;
  return {
    terminated: {
      exitCode: t.exitCode,
      ...(t.signal !== undefined ? { signal: t.signal } : {}),
      reason: t.reason,
      ...(t.message ? { message: t.message } : {}),
      ...(t.startedAt ? { startedAt: new Date(t.startedAt) } : {}),
      finishedAt: new Date(t.finishedAt),
      ...(t.containerID ? { containerID: t.containerID } : {}),
    },
  };
}

function toContainerStatus(c: ContainerView): V1ContainerStatus {
  return {
    name: c.name,
    image: c.image,
    imageID: "",
    ready: c.ready,
    started: "running" in c.state && c.startupPassed,
    restartCount: c.restartCount,
    state: toState(c.state),
    lastState: c.lastState ? toState(c.lastState) : {},
    ...(c.containerID ? { containerID: c.containerID } : {}),
  };
}

/** The pod phase from the kubelet's rules. */
export function podPhase(view: PodView): "Pending" | "Running" | "Succeeded" | "Failed" {
  if (view.initFailed) return "Failed";
  if (!view.initialized || !view.sandbox) return "Pending";
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of view.containers) {
    if ("running" in c.state) running++;
    else if ("terminated" in c.state) {
      stopped++;
      if (c.state.terminated.exitCode === 0) succeeded++;
    } else if (c.lastState && "terminated" in c.lastState) stopped++;
    else waiting++;
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped === view.containers.length && stopped > 0) {
    if (view.restartPolicy === "Always") return "Running";
    if (succeeded === stopped) return "Succeeded";
    return view.restartPolicy === "Never" ? "Failed" : "Running";
  }
  return "Pending";
}

function condition(type: string, ok: boolean, time: Date, reason?: string): V1PodCondition {
  return {
    type,
    status: ok ? "True" : "False",
    lastTransitionTime: time,
    ...(reason && !ok ? { reason } : {}),
  };
}

/** The full `status` to write for a pod. `previous` keeps transition times of unchanged conditions. */
export function buildPodStatus(view: PodView, now: Date, previous?: V1PodStatus): V1PodStatus {
  const phase = podPhase(view);
  const containersReady = view.containers.length > 0 && view.containers.every((c) => c.ready);
  const before = new Map((previous?.conditions ?? []).map((c) => [c.type, c]));
  const keep = (c: V1PodCondition): V1PodCondition => {
    const old = before.get(c.type);
    return old && old.status === c.status && old.lastTransitionTime
      ? { ...c, lastTransitionTime: old.lastTransitionTime }
      : c;
  };
  const notReady = view.containers.filter((c) => !c.ready).map((c) => c.name);
  const conditions = [
    condition("PodReadyToStartContainers", view.sandbox !== undefined, now),
    condition("Initialized", view.initialized, now, "ContainersNotInitialized"),
    condition("Ready", containersReady && phase === "Running", now, "ContainersNotReady"),
    condition("ContainersReady", containersReady, now, "ContainersNotReady"),
    condition("PodScheduled", true, now),
  ].map(keep);
  for (const c of conditions) {
    if ((c.type === "Ready" || c.type === "ContainersReady") && c.status === "False") {
      c.message = `containers with unready status: [${notReady.join(" ")}]`;
    }
    if (c.type === "Initialized" && c.status === "False") {
      const pending = view.initContainers.filter(
        (i) => !("terminated" in i.state && i.state.terminated.exitCode === 0),
      );
      c.message = `containers with incomplete status: [${pending.map((i) => i.name).join(" ")}]`;
    }
  }
  const status: V1PodStatus = {
    phase,
    conditions,
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    startTime: new Date(view.startTime),
    // The API server sets the QoS class when it admits the pod and refuses to change it; keep its value.
    qosClass: previous?.qosClass ?? "BestEffort",
    initContainerStatuses: view.initContainers.map(toContainerStatus),
    containerStatuses: view.containers.map(toContainerStatus),
  };
  if (view.podIPs.length > 0) {
    status.podIP = view.podIPs[0];
    status.podIPs = view.podIPs.map((ip) => ({ ip }));
  }
  if (view.sandboxError) status.message = view.sandboxError;
  if (view.initContainers.length === 0) delete status.initContainerStatuses;
  return status;
}

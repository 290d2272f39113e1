/**
 * The pod's own PID, mount, IPC and UTS namespaces (the network one is the sandbox's netns), shared by all its
 * containers as a pod's infra ("pause") container holds them on a cluster. A small holder process is started
 * per pod: `nsenter --net=<netns> -- unshare --pid --fork --mount-proc --mount --uts --ipc -- sh -c <script>`.
 * Its script, as PID 1 of the pod, bind-mounts the kubelet-managed files read-only, lays an empty read-only
 * tmpfs over each hidden host path (the daemon's state folder: API server PKI, other pods' files, logs), sets
 * the hostname, says `ready`, then waits forever reaping orphans. The pod's `/proc` shows only its own
 * processes. Containers and exec sessions join these namespaces through `/proc/<holder>/ns/*` (`joinArgv`).
 * When PID 1 dies the kernel kills every process of the pod; the holder also lives in the netns, so the
 * sandbox teardown (`ip netns pids` → SIGKILL) ends it with the rest.
 */
import { spawn } from "node:child_process";
import type { V1Pod } from "@kubernetes/client-node";

/** A file or directory given to the pod: bind-mounted read-only over `target` in the pod's mount namespace. */
export interface PodMount {
  readonly source: string;
  readonly target: string;
}

export interface PodNamespaceSpec {
  readonly netnsPath: string;
  readonly hostname: string;
  readonly mounts: readonly PodMount[];
  /** Host paths pods must not see (each must exist): covered by an empty read-only tmpfs. */
  readonly hidden: readonly string[];
  /** `spec.hostPID` / `spec.hostIPC`: the pod shares the host's PID (and /proc) or IPC namespace. */
  readonly host?: HostNamespaces;
}

/** The namespaces a pod shares with the host instead of having its own (`spec.hostPID`, `spec.hostIPC`). */
export interface HostNamespaces {
  readonly pid?: boolean;
  readonly ipc?: boolean;
}

/** What `spec.hostPID` and `spec.hostIPC` ask for. `hostNetwork` is not supported (pod-sandbox.ts refuses it). */
export function hostNamespacesOf(pod: V1Pod): HostNamespaces {
  return { pid: pod.spec?.hostPID === true, ipc: pod.spec?.hostIPC === true };
}

/**
 * PID 1 of the pod. Fixed text; paths and the hostname travel as arguments. Bind mounts come before the
 * tmpfs layers, since their sources lie under a hidden path. `wait` (dash, bash) reaps any child, so orphans
 * re-parented to PID 1 never stay zombies; PID 1 only gets signals it handles, hence the TERM trap.
 */
export const HOLDER_SCRIPT = [
  'h=$1; shift; while [ "$1" != -- ]; do mount -o bind,ro -- "$1" "$2" || exit 127; shift 2; done; shift',
  'for d; do mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=0755 osm-hidden "$d" || exit 127; done',
  'printf %s "$h" > /proc/sys/kernel/hostname || exit 127',
  "echo ready; exec >/dev/null 2>&1 </dev/null",
  "trap 'exit 0' TERM",
  "while :; do sleep 2147483647 & wait; done",
].join("\n");

/**
 * The joining side, run outside the pod's PID namespace (nsenter `--no-fork`) so that it outlives the
 * container and reports its exit as a code. It ignores the terminal and termination signals, which are
 * meant for the container (a process group signal reaches both; Ctrl-C of an exec TTY too), and resets them
 * to their defaults for the container (`env --default-signal`), which starts as on a cluster. On a terminal
 * the container becomes the session leader with it as its controlling tty (`setsid --ctty`, before setpriv
 * drops the capability to take it over): a shell's job control then sees process groups of its own PID
 * namespace (a session led from outside it shows as group 0, and dash exits 2 failing to give it back).
 */
export const JOIN_SCRIPT =
  'trap "" HUP INT QUIT TERM; if [ -t 0 ]; then setsid --ctty "$@"; else "$@"; fi; exit $?';

/**
 * The argv of the holder process. With `host.pid` it is no PID 1: the pod's processes live in the host's PID
 * namespace and see the host's /proc, as `hostPID: true` gives them on a cluster (the sandbox teardown still
 * finds them all in the pod's netns).
 */
export function holderArgv(spec: PodNamespaceSpec): string[] {
  return [
    "nsenter",
    `--net=${spec.netnsPath}`,
    "--",
    "unshare",
    ...(spec.host?.pid ? [] : ["--pid", "--fork", "--kill-child", "--mount-proc"]),
    "--mount",
    "--uts",
    ...(spec.host?.ipc ? [] : ["--ipc"]),
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    HOLDER_SCRIPT,
    "osm-pod",
    spec.hostname,
    ...spec.mounts.flatMap((m) => [m.source, m.target]),
    "--",
    ...spec.hidden,
  ];
}

/**
 * The wrapper that puts a command into the pod: its netns, the holder's PID (for children), mount, UTS and
 * IPC namespaces, working directory `cwd` (inside the pod's mount namespace), default signal dispositions.
 * `holderPid` is the `unshare` process (it made the namespaces; its PID namespace for children is the pod's).
 */
export function joinArgv(
  netnsPath: string,
  holderPid: number,
  cwd: string,
  host: HostNamespaces = {},
): string[] {
  const ns = (kind: string) => `/proc/${holderPid}/ns/${kind}`;
  return [
    "nsenter",
    `--net=${netnsPath}`,
    ...(host.pid ? [] : [`--pid=${ns("pid_for_children")}`]),
    `--mount=${ns("mnt")}`,
    `--uts=${ns("uts")}`,
    ...(host.ipc ? [] : [`--ipc=${ns("ipc")}`]),
    `--wd=${cwd}`,
    "--no-fork",
    "--",
    "sh",
    "-c",
    JOIN_SCRIPT,
    "osm-pod",
    "env",
    "--default-signal",
    "--",
  ];
}

/** The pod's hostname as the kubelet sets it: `spec.hostname` or the name, at most 63 characters, no trailing `-`/`.`. */
export function podHostname(pod: V1Pod): string {
  const name = pod.spec?.hostname || pod.metadata?.name || "pod";
  return name.slice(0, 63).replace(/[-.]+$/, "") || "pod";
}

export interface PodNamespaceHolder {
  /** The `unshare` process whose namespaces the pod's containers join. */
  readonly pid: number;
  /** False once the holder exited (then the pod's processes are gone and no container can join). */
  readonly alive: boolean;
}

/** Starts the holder and resolves once its mounts and hostname are in place; rejects with its error output. */
export function startPodNamespaces(spec: PodNamespaceSpec, timeoutMs = 10_000): Promise<PodNamespaceHolder> {
  const [file, ...args] = holderArgv(spec);
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    let alive = true;
    let out = "";
    let err = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      if (alive) child.kill("SIGKILL");
      reject(new Error(`pod namespaces: ${why}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    child.once("error", (e) => fail(e.message));
    child.once("exit", (code, sig) => {
      alive = false;
      fail(err.trim() || `holder exited (${sig ?? code}) before it was ready`);
    });
    child.stderr.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out !== "ready\n") return;
      clearTimeout(timer);
      child.unref();
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        pid: child.pid as number,
        get alive() {
          return alive;
        },
      });
    });
  });
}

/**
 * A pod's sandbox: its network namespace and addresses (a slot from the IPAM), its kubelet-managed files and
 * env, and the holder process whose PID, mount, UTS and IPC namespaces its containers join. Set up with the
 * kubelet's back-off until it works or the pod is stopped; given back when the pod finishes or is deleted.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { PodFacts } from "./container-launch.ts";
import { type PodContext, type PodWorkerDeps, sleep } from "./pod-context.ts";
import type { PodEnvironment } from "./pod-files.ts";
import {
  hostNamespacesOf,
  type PodNamespaceHolder,
  podHostname,
  startPodNamespaces,
} from "./pod-namespaces.ts";

export class PodSandbox {
  readonly #pod: V1Pod;
  readonly #uid: string;
  readonly #label: string;
  readonly #deps: PodWorkerDeps;
  #name: string | undefined;
  #podIPs: string[] = [];
  #environment: PodEnvironment | undefined;
  #holder: PodNamespaceHolder | undefined;
  #error: string | undefined;
  /** Given back when the pod finished; its name may belong to another pod by now. */
  #released = false;

  constructor(pod: V1Pod, deps: PodWorkerDeps) {
    this.#pod = pod;
    this.#uid = pod.metadata?.uid ?? "";
    this.#label = `${pod.metadata?.namespace ?? "default"}/${pod.metadata?.name ?? ""}`;
    this.#deps = deps;
  }

  /** The sandbox's name once made (kept after release, for the pod's status). */
  get name(): string | undefined {
    return this.#name;
  }

  /** The live sandbox (undefined before it exists and after a finished pod gave it back). */
  get live(): string | undefined {
    return this.#released ? undefined : this.#name;
  }

  get podIPs(): string[] {
    return this.#podIPs;
  }

  /** Why the last setup attempt failed, until one succeeds. */
  get error(): string | undefined {
    return this.#error;
  }

  /** False once the namespace holder exited (then the pod's processes are gone and no container can join). */
  get alive(): boolean {
    return this.#holder?.alive === true;
  }

  /** Where a container of this pod runs. */
  facts(): PodFacts {
    return {
      podIP: this.#podIPs[0] ?? "",
      podIPs: this.#podIPs,
      hostIP: this.#deps.hostIP,
      nodeName: this.#deps.nodeName,
      netnsPath: `/run/netns/${this.#name ?? ""}`,
      holderPid: this.#holder?.pid ?? 0,
      serviceEnv: this.#environment?.env ?? {},
    };
  }

  /** Makes the sandbox, retrying with back-off (a Warning event each time) until it works or `signal` aborts. */
  async setup(ctx: Pick<PodContext, "changed" | "event">, signal: AbortSignal): Promise<void> {
    const { ipam, backoff } = this.#deps;
    let delay = backoff.baseMs;
    while (!signal.aborted) {
      try {
        if (this.#pod.spec?.hostNetwork === true) {
          throw new Error(
            "spec.hostNetwork: true is not supported by the local node agent (every pod gets a network namespace of its own)",
          );
        }
        const slot = ipam.allocate({ owner: this.#uid, label: this.#label });
        const sandbox = await this.#fresh(slot);
        this.#name = sandbox.name;
        this.#podIPs = [sandbox.ip4, sandbox.ip6];
        this.#environment = await this.#deps.podEnvironment?.(this.#pod, this.#podIPs);
        this.#holder = await startPodNamespaces({
          netnsPath: `/run/netns/${sandbox.name}`,
          hostname: podHostname(this.#pod),
          mounts: this.#environment?.mounts ?? [],
          hidden: this.#deps.hiddenPaths,
          host: hostNamespacesOf(this.#pod),
        });
        this.#error = undefined;
        ctx.changed();
        return;
      } catch (error) {
        this.#error = `failed to create pod sandbox: ${(error as Error).message}`;
        ctx.event("Warning", "FailedCreatePodSandBox", this.#error);
        this.#deps.logger.warn({ pod: this.#label, err: error }, "sandbox setup failed");
        ctx.changed();
        await sleep(delay, signal);
        delay = Math.min(delay * 2, backoff.maxMs);
      }
    }
  }

  /** Creates the slot's sandbox; if a stale one of an earlier agent is in the way, kills its processes and retries. */
  async #fresh(slot: number) {
    const { network } = this.#deps;
    try {
      return await network.createSandbox(slot, this.#deps.routes());
    } catch {
      const name = network.sandboxName(slot);
      await network.deleteSandbox(name);
      return network.createSandbox(slot, this.#deps.routes());
    }
  }

  /** Gives back the netns and address of a finished pod, as the kubelet tears down a completed pod's sandbox. */
  async release(): Promise<void> {
    if (!this.#name || this.#released) return;
    this.#released = true;
    await this.#deps.network.deleteSandbox(this.#name);
    this.#deps.ipam.release(this.#uid);
  }

  /** Removes what is left at the pod's deletion: the netns (unless released already) and the address. */
  async remove(): Promise<void> {
    if (this.#name && !this.#released) await this.#deps.network.deleteSandbox(this.#name);
    this.#deps.ipam.release(this.#uid);
  }
}

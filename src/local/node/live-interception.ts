/**
 * Live interception updates (opt-in: the `osm-ts.io/live-interception-updates: "true"` annotation on the
 * `osm-mesh-config` MeshConfig). The node agent recomputes each running meshed pod's effective policy with the
 * injector's code whenever the MeshConfig, its namespace or the pod changes, and brings the pod's rules to it
 * in its network namespace in one transaction (`syncInterception`: nft set elements, else the backend's atomic
 * replace of our own rules). Then the pod's recorded policy is what is really applied, with the time. A
 * failure leaves the previous rules (the transaction is all or nothing), is reported (Warning Event, the
 * `osm-ts.io/interception-live-failed` annotation) and retried with backoff. Every few seconds each pod is
 * checked for drift (a hand-deleted rule or set element), which is repaired and reported: nothing to do while
 * the namespace's nf_tables generation has not moved, else its chains and set digests are compared, and its
 * rules read back whole only when that cannot tell; an agent restart checks every pod at once. Without the annotation nothing here acts: pods keep what osm-init programmed (STALE).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
  type V1Namespace,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import {
  buildEffectivePolicy,
  describeSource,
  diffPolicyRecords,
  type MeshConfig,
  type PolicyRecording,
  recordedOn,
  recordingAnnotations,
  recordPolicy,
  validateMeshConfig,
} from "../../config/index.ts";
import type { EffectiveTrafficPolicy } from "../../config/policy-types.ts";
import {
  ANNOTATION_INTERCEPTION_LIVE_FAILED,
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_SOURCE,
  ANNOTATION_INTERCEPTION_UPDATED_LIVE,
  ANNOTATION_LIVE_INTERCEPTION_UPDATES,
  MESH_CONFIG_GROUP,
  MESH_CONFIG_NAME,
} from "../../constants.ts";
import { type CommandRunner, createProcessRunner } from "../../edge/command-runner.ts";
import { NftBatch, nftBatchNetlink, nftBatchRunner } from "../../edge/nft-batch.ts";
import {
  type BackendVariant,
  buildPlan,
  checkDriftCheaply,
  detectBackend,
  ElementSyncCache,
  type EngineOptions,
  type InterceptionPlan,
  type LiveSyncOutcome,
  NFT_TABLE,
  parseResolvConf,
  skeletonDrift,
  syncInterception,
} from "../../interception/index.ts";
import { createLiveInterceptionMetrics, type LiveInterceptionMetrics } from "./live-metrics.ts";
import type { PodEvent } from "./pod-context.ts";
import type { NodeRuntime } from "./runtime.ts";

/** Where a running pod's interception lives: its network namespace (a path), its IPs, its resolv.conf. */
export interface InterceptionTarget {
  readonly netns: string;
  readonly podIPs: readonly string[];
  readonly resolvConf: string;
}

/**
 * Where each pod's network namespace is, the one thing the two node agents know differently: the embedded
 * agent made it (`runtimeLocator`); the osm-node DaemonSet finds it on a node it did not start
 * (`netns-locator.ts`). Undefined while the pod is not ready for an update (osm-init not finished, no sandbox
 * yet, on its way out).
 */
export interface PodLocator {
  locate(pod: V1Pod): Promise<InterceptionTarget | undefined>;
  /** An update of the pod failed (its namespace may be gone) or it was deleted: look it up afresh. */
  forget?(uid: string): void;
}

/** The embedded agent's pods: the runtime that started them knows their namespace. */
export function runtimeLocator(runtime: Pick<NodeRuntime, "view" | "interceptionTarget">): PodLocator {
  return {
    async locate(pod) {
      const uid = pod.metadata?.uid ?? "";
      const view = runtime.view(uid);
      if (!view?.initialized || view.terminating) return undefined;
      return runtime.interceptionTarget(uid);
    },
  };
}

/** Retry delay after the n-th consecutive failure (1 s, 2 s, 4 s, … capped at 30 s). Pure. */
export function liveRetryDelayMs(failures: number): number {
  return Math.min(1000 * 2 ** Math.max(0, failures - 1), 30_000);
}

/** Whether a MeshConfig object opts in to live updates (the exact annotation value "true"). Pure. */
export function liveUpdatesOn(meshConfig: KubernetesObject): boolean {
  return meshConfig.metadata?.annotations?.[ANNOTATION_LIVE_INTERCEPTION_UPDATES] === "true";
}

export interface LiveInterceptionOptions {
  readonly kubeConfig: KubeConfig;
  readonly locator: PodLocator;
  readonly logger: Logger;
  /** The pods bound to this node, as the agent's informer last saw them. */
  readonly pods: () => Iterable<V1Pod>;
  readonly postEvent: (pod: V1Pod, event: PodEvent) => void;
  /** How often every pod's chains and set declarations are read back (drift; cheap whatever the list size). */
  readonly driftCheckMs?: number;
  /** How often every pod's rules are read back whole, set elements included (a list's size at a time). */
  readonly fullDriftCheckMs?: number;
  /** How many pods' kernels are changed at once. */
  readonly parallel?: number;
  /** How often due pods are looked at. */
  readonly tickMs?: number;
  readonly runnerFor?: (netns: string) => CommandRunner;
  readonly now?: () => Date;
  /** Watch the MeshConfigs of this namespace only (the DaemonSet's Role); default: every namespace. */
  readonly meshConfigNamespace?: string;
  /**
   * Where the recorded policy is patched: `pods` (default), or `pods/status`, which may change a pod's
   * annotations too and is the narrower grant (the DaemonSet's ClusterRole).
   */
  readonly recordThrough?: "pods" | "pods/status";
}

/** A policy computed once for every pod with the same inputs, and its plans per pod environment. */
interface Desired {
  readonly policy: EffectiveTrafficPolicy;
  readonly recording: PolicyRecording;
  readonly plans: Map<string, InterceptionPlan>;
}

/** The inputs of a pod's policy besides the MeshConfig: OSM's pod (and namespace) annotations. Pure. */
export function policyInputsKey(
  podAnnotations: Readonly<Record<string, string>>,
  namespaceAnnotations: Readonly<Record<string, string>>,
): string {
  const osm = (a: Readonly<Record<string, string>>) =>
    Object.keys(a)
      .filter((k) => k.startsWith("openservicemesh.io/"))
      .sort()
      .map((k) => [k, a[k]]);
  return JSON.stringify([osm(podAnnotations), osm(namespaceAnnotations)]);
}

interface PodState {
  dirty: boolean;
  lastCheck: number;
  lastFullCheck: number;
  failures: number;
  nextAttempt: number;
  variant?: BackendVariant;
  /** The plan last brought into the pod's namespace (an nft element change then skips the read-back). */
  applied?: InterceptionPlan;
  /**
   * The namespace's nf_tables generation when its rules were last known to be `applied`: while it has not
   * moved, nobody committed anything there, and a drift check has nothing to look at.
   */
  cleanGeneration?: number;
  /** The hash last written to the pod's record (the informer may not have delivered the patch yet). */
  patchedHash?: string;
  reportedFailure?: string;
}

/** How many pods' kernels the agent changes at once (each is an `nsenter` + `nft` process). */
export const LIVE_PARALLEL = 8;

/** What a sync of one pod does: apply a change, or look for drift (cheaply, or element by element). */
type SyncKind = "change" | "skeleton" | "full";

export class LiveInterception {
  readonly #o: LiveInterceptionOptions;
  readonly #core: CoreV1Api;
  readonly #states = new Map<string, PodState>();
  /** Pods being synced (kernel, then record). */
  readonly #inFlight = new Set<string>();
  /** Pods whose kernel is being changed now (at most `parallel`). */
  #inKernel = 0;
  #mesh: { config: MeshConfig; version: string; live: boolean } | undefined;
  #namespaces = new Map<string, V1Namespace>();
  readonly #shared = new Map<string, Desired>();
  #sharedVersion = "";
  readonly #elementSyncs = new ElementSyncCache();
  /** One process that runs nft in every pod's namespace (none per change). */
  readonly #nft = new NftBatch();
  /** Failures, changes made, failing pods (Prometheus). */
  readonly metrics: LiveInterceptionMetrics = createLiveInterceptionMetrics(
    () => [...this.#states.values()].filter((s) => s.reportedFailure !== undefined).length,
  );
  #watches: ListWatch<KubernetesObject>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: LiveInterceptionOptions) {
    this.#o = options;
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Starts watching the MeshConfigs and namespaces; returns at once (the watches retry until the CRD exists). */
  start(): void {
    const custom = this.#o.kubeConfig.makeApiClient(CustomObjectsApi);
    const namespace = this.#o.meshConfigNamespace;
    const plural = { group: MESH_CONFIG_GROUP, version: "v1alpha2", plural: "meshconfigs" };
    const meshConfigs = this.#watch(
      `/apis/${MESH_CONFIG_GROUP}/v1alpha2/${namespace ? `namespaces/${namespace}/` : ""}meshconfigs`,
      async () =>
        (await (namespace
          ? custom.listNamespacedCustomObject({ ...plural, namespace })
          : custom.listClusterCustomObject(plural))) as { items: KubernetesObject[] },
    );
    const onMesh = () => this.#meshChanged(meshConfigs.list());
    for (const verb of ["add", "update", "delete"] as const) meshConfigs.on(verb, onMesh);
    const namespaces = this.#watch("/api/v1/namespaces", () => this.#core.listNamespace());
    const onNamespace = () => {
      this.#namespaces = new Map(
        (namespaces.list() as V1Namespace[]).map((ns) => [ns.metadata?.name ?? "", ns]),
      );
      this.#markAll();
    };
    for (const verb of ["add", "update", "delete"] as const) namespaces.on(verb, onNamespace);
    this.#timer = setInterval(() => this.#tick(), this.#o.tickMs ?? 100);
    this.#timer.unref();
  }

  /** The informer saw the pod (added or changed): look at it on the next tick. */
  podChanged(uid: string): void {
    this.#state(uid).dirty = true;
  }

  podDeleted(uid: string): void {
    this.#states.delete(uid);
    this.#o.locator.forget?.(uid);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all(this.#watches.map((w) => w.stop()));
    this.#nft.close();
  }

  #watch<T extends KubernetesObject>(path: string, list: () => Promise<{ items: T[] }>): ListWatch<T> {
    const lw = new ListWatch<T>(path, new Watch(this.#o.kubeConfig), list, false);
    // The MeshConfig CRD may not exist yet (before `osm install`): the list fails and is retried.
    let retry: NodeJS.Timeout | undefined;
    const again = (error: unknown) => {
      this.#o.logger.debug({ err: error, path }, "live interception: list or watch failed; restarting");
      if (this.#stopped || retry) return;
      retry = setTimeout(() => {
        retry = undefined;
        begin();
      }, 1000);
      retry.unref();
    };
    const begin = (): void => {
      if (!this.#stopped) lw.start().catch(again);
    };
    lw.on("error", again);
    begin();
    this.#watches.push(lw as unknown as ListWatch<KubernetesObject>);
    return lw;
  }

  #state(uid: string): PodState {
    let s = this.#states.get(uid);
    if (!s) {
      s = { dirty: true, lastCheck: 0, lastFullCheck: 0, failures: 0, nextAttempt: 0 };
      this.#states.set(uid, s);
    }
    return s;
  }

  #markAll(): void {
    for (const s of this.#states.values()) s.dirty = true;
  }

  #meshChanged(objects: readonly KubernetesObject[]): void {
    const named = objects.filter((o) => o.metadata?.name === MESH_CONFIG_NAME);
    if (named.length !== 1) {
      if (named.length > 1)
        this.#o.logger.warn(
          { count: named.length },
          `live interception: more than one ${MESH_CONFIG_NAME}; off`,
        );
      this.#mesh = undefined;
      return;
    }
    const object = named[0]! as KubernetesObject & { spec?: unknown };
    const version = object.metadata?.resourceVersion ?? "";
    if (this.#mesh?.version === version) return;
    try {
      const config = validateMeshConfig({
        apiVersion: object.apiVersion,
        kind: object.kind,
        metadata: {
          name: object.metadata?.name,
          namespace: object.metadata?.namespace,
          ...(object.metadata?.generation === undefined ? {} : { generation: object.metadata.generation }),
        },
        spec: object.spec ?? {},
      });
      this.#mesh = { config, version, live: liveUpdatesOn(object) };
      this.#markAll();
    } catch (error) {
      this.#o.logger.warn(
        { err: error },
        "live interception: the MeshConfig does not validate; keeping the last one",
      );
    }
  }

  /** Starts the due pods, `parallel` at a time; called on a timer and whenever a pod's kernel step ends. */
  #tick(): void {
    if (this.#stopped || !this.#mesh?.live) return;
    const now = Date.now();
    const drift = this.#o.driftCheckMs ?? 5000;
    const fullDrift = this.#o.fullDriftCheckMs ?? 60_000;
    for (const pod of this.#o.pods()) {
      if (this.#inKernel >= (this.#o.parallel ?? LIVE_PARALLEL)) return;
      const uid = pod.metadata?.uid ?? "";
      if (!uid || this.#inFlight.has(uid)) continue;
      const s = this.#state(uid);
      const due = now >= s.nextAttempt && (s.dirty || now - s.lastCheck >= drift);
      if (!due) continue;
      // A change goes the fast way; the periodic check reads the rules back (drift).
      const kind: SyncKind = s.dirty ? "change" : now - s.lastFullCheck >= fullDrift ? "full" : "skeleton";
      s.dirty = false;
      if (kind !== "change") s.lastCheck = now;
      if (kind === "full") s.lastFullCheck = now;
      this.#inFlight.add(uid);
      this.#inKernel++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.#inKernel--;
        setImmediate(() => this.#tick());
      };
      void this.#sync(pod, s, kind, release)
        .catch((error: unknown) => this.#failed(pod, s, error))
        .finally(() => {
          release();
          this.#inFlight.delete(uid);
        });
    }
  }

  /**
   * The pod's policy, shared by every pod with the same inputs: built once per MeshConfig version (about a
   * second per 50,000 entries), not once per pod.
   */
  #desired(pod: V1Pod, mesh: { config: MeshConfig; version: string }): Desired {
    if (this.#sharedVersion !== mesh.version) {
      this.#shared.clear();
      this.#sharedVersion = mesh.version;
    }
    const podAnnotations = pod.metadata?.annotations ?? {};
    const namespaceAnnotations =
      this.#namespaces.get(pod.metadata?.namespace ?? "")?.metadata?.annotations ?? {};
    const key = policyInputsKey(podAnnotations, namespaceAnnotations);
    let desired = this.#shared.get(key);
    if (!desired) {
      const policy = buildEffectivePolicy(mesh.config, { podAnnotations, namespaceAnnotations });
      desired = { policy, recording: recordPolicy(policy), plans: new Map() };
      this.#shared.set(key, desired);
    }
    return desired;
  }

  /** Brings one pod's kernel to its policy (then `kernelDone`), then its record and Events. */
  async #sync(pod: V1Pod, s: PodState, kind: SyncKind, kernelDone: () => void): Promise<void> {
    const mesh = this.#mesh;
    const recorded = recordedOn(pod.metadata?.annotations ?? {});
    if (!mesh?.live || !recorded) return;
    // osm-init programs a pod first; a pod on its way out keeps what it has.
    const target = await this.#o.locator.locate(pod);
    if (!target) return;
    const { policy, recording, plans } = this.#desired(pod, mesh);
    const runnerFor =
      this.#o.runnerFor ??
      ((netns: string) => nftBatchRunner(this.#nft, netns, createProcessRunner({ netns })));
    const runner = runnerFor(target.netns);
    s.variant ??= await installedVariant(runner);
    const ipv6 = target.podIPs.some((ip) => ip.includes(":"));
    const planKey = `${ipv6}|${target.resolvConf}`;
    let plan = plans.get(planKey);
    if (!plan) {
      plan = buildPlan(policy, { ipv6, resolvers: parseResolvConf(target.resolvConf) });
      plans.set(planKey, plan);
    }
    const netlink = this.#o.runnerFor ? undefined : nftBatchNetlink(this.#nft, target.netns);
    const engine = { runner, variant: s.variant, podIp: target.podIPs[0], netlink };
    const outcome = await this.#syncKernel(plan, engine, s, kind);
    kernelDone();
    s.applied = plan;
    const changedPolicy = recording.hash !== recorded.hash && s.patchedHash !== recording.hash;
    if (changedPolicy) {
      const at = (this.#o.now?.() ?? new Date()).toISOString();
      await this.#patch(pod, {
        [ANNOTATION_INTERCEPTION_POLICY]: null,
        [ANNOTATION_INTERCEPTION_POLICY_SOURCE]: null,
        ...recordingAnnotations(recording, describeSource(mesh.config)),
        [ANNOTATION_INTERCEPTION_UPDATED_LIVE]: at,
        [ANNOTATION_INTERCEPTION_LIVE_FAILED]: null,
      });
      s.patchedHash = recording.hash;
      s.reportedFailure = undefined;
      this.metrics.updates.inc({ how: outcome.how === "unchanged" ? "recorded" : outcome.how });
      const what = recorded.text === undefined ? [] : diffPolicyRecords(recorded.text, recording.text);
      this.#o.postEvent(pod, {
        type: "Normal",
        reason: "InterceptionUpdated",
        message: `interception updated live (${s.variant}, ${describeOutcome(outcome)})${what.length > 0 ? `: ${what.slice(0, 10).join(" ")}` : ""}`,
      });
      this.#o.logger.info({ pod: podKey(pod), how: outcome.how, diff: what }, "interception updated live");
    } else if (outcome.how !== "unchanged") {
      this.metrics.updates.inc({ how: "drift-repaired" });
      const diff = outcome.how === "replaced" || outcome.how === "restored" ? outcome.diff : [];
      this.#o.postEvent(pod, {
        type: "Warning",
        reason: "InterceptionDriftRepaired",
        message: `the rules in the pod's network namespace differed from its policy and were restored (${s.variant}, ${describeOutcome(outcome)})${diff.length > 0 ? `: ${diff.slice(0, 5).join("; ")}` : ""}`,
      });
      this.#o.logger.warn({ pod: podKey(pod), diff }, "interception drift repaired");
    }
    if (s.reportedFailure !== undefined) {
      await this.#patch(pod, { [ANNOTATION_INTERCEPTION_LIVE_FAILED]: null });
      s.reportedFailure = undefined;
    }
    s.failures = 0;
    s.nextAttempt = 0;
  }

  /**
   * A change with the plan last applied known: its element difference alone. A drift check first reads the
   * namespace's nf_tables generation: unmoved since the rules were known to be the plan's, nothing was
   * committed there and there is nothing to look at. Else the cheap check (skeleton and set digests: restores
   * changed sets), and only when that cannot tell, or for the periodic full check, everything read back; also
   * every pod whose applied plan is unknown. iptables-legacy has no generation: its rules are read back at
   * every check.
   */
  async #syncKernel(
    plan: InterceptionPlan,
    engine: EngineOptions,
    s: PodState,
    kind: SyncKind,
  ): Promise<LiveSyncOutcome> {
    const generation = async () =>
      s.variant === "iptables-legacy" ? undefined : await engine.netlink?.generation();
    if (kind === "change" && s.applied) {
      const before = await generation();
      const outcome = await syncInterception(plan, engine, { applied: s.applied, cache: this.#elementSyncs });
      const after = await generation();
      // Only this transaction was committed in between: the kernel holds the plan (else the next check looks).
      s.cleanGeneration =
        outcome.how === "elements" && before !== undefined && after === before + 1 ? after : undefined;
      return outcome;
    }
    const clean = s.cleanGeneration;
    s.cleanGeneration = undefined;
    const at = await generation();
    if (s.applied === plan) {
      if (at !== undefined && at === clean) {
        s.cleanGeneration = at;
        return { how: "unchanged" };
      }
      // The full check reads everything back: also the interval ends, which the digests leave out.
      const cheap = kind === "full" ? undefined : await checkDriftCheaply(plan, engine);
      if (cheap?.how === "unchanged") s.cleanGeneration = at;
      if (cheap !== undefined) return cheap;
      if (
        kind === "skeleton" &&
        engine.netlink === undefined &&
        (await skeletonDrift(plan, engine)).length === 0
      )
        return { how: "unchanged" };
    }
    // Read back whole: when nothing differed, the rules at generation `at` were the plan's.
    const outcome = await syncInterception(plan, engine);
    if (outcome.how === "unchanged") s.cleanGeneration = at;
    return outcome;
  }

  #failed(pod: V1Pod, s: PodState, error: unknown): void {
    if (this.#stopped) return;
    s.failures++;
    this.metrics.failures.inc({ namespace: pod.metadata?.namespace ?? "", pod: pod.metadata?.name ?? "" });
    const delay = liveRetryDelayMs(s.failures);
    s.nextAttempt = Date.now() + delay;
    s.dirty = true;
    s.variant = undefined;
    s.applied = undefined;
    this.#o.locator.forget?.(pod.metadata?.uid ?? "");
    s.cleanGeneration = undefined;
    const reason = (error instanceof Error ? error.message : String(error)).split("\n")[0]!.slice(0, 300);
    this.#o.logger.warn(
      { pod: podKey(pod), err: error, attempt: s.failures },
      "live interception update failed",
    );
    this.#o.postEvent(pod, {
      type: "Warning",
      reason: "InterceptionUpdateFailed",
      message: `live interception update failed (attempt ${s.failures}, retrying in ${delay / 1000} s); the pod keeps its previous rules: ${reason}`,
    });
    if (s.reportedFailure === reason) return;
    s.reportedFailure = reason;
    void this.#patch(pod, { [ANNOTATION_INTERCEPTION_LIVE_FAILED]: reason }).catch((e: unknown) =>
      this.#o.logger.debug({ err: e, pod: podKey(pod) }, "could not record the failure on the pod"),
    );
  }

  async #patch(pod: V1Pod, annotations: Record<string, string | null>): Promise<void> {
    const request = {
      name: pod.metadata?.name ?? "",
      namespace: pod.metadata?.namespace ?? "",
      body: { metadata: { annotations } },
    };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    await (this.#o.recordThrough === "pods/status"
      ? this.#core.patchNamespacedPodStatus(request, merge)
      : this.#core.patchNamespacedPod(request, merge));
  }
}

const podKey = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

function describeOutcome(outcome: LiveSyncOutcome): string {
  switch (outcome.how) {
    case "unchanged":
      return "rules already in place";
    case "elements":
      return `one set-element transaction: ${outcome.added} added, ${outcome.removed} removed`;
    case "restored":
      return "the changed sets flushed and filled again in one transaction";
    case "replaced":
      return "our rules replaced in one transaction";
  }
}

/** The backend holding the pod's rules: our nft table, else the iptables variant osm-init used. */
async function installedVariant(runner: CommandRunner): Promise<BackendVariant> {
  const nft = await runner.run(["nft", "list", "table", "inet", NFT_TABLE]);
  if (nft.code === 0) return "nftables";
  return (await detectBackend(runner, "iptables")).variant;
}

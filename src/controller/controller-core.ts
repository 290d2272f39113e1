/**
 * The controller's reconcile loop: on any change in the watched resources, recompute every meshed pod's
 * sidecar config (into the ConfigHub, which wakes long-polls) and staleness verdict (into the report and
 * the pod annotation). All state is derived from the informer caches, so a restart loses nothing.
 */
import { createHash } from "node:crypto";
import type { KubernetesObject, V1Endpoints, V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { evaluateStaleness, type PolicyRecording } from "../config/policy-record.ts";
import type { MeshConfig } from "../config/schema.ts";
import { hasSidecarToken } from "../config/sidecar-token.ts";
import { validateMeshConfig } from "../config/validate.ts";
import { ANNOTATION_INTERCEPTION_STALE, MESH_CONFIG_NAME } from "../constants.ts";
import { egressPolicyFor } from "../egress/rules.ts";
import type { Egress } from "../egress/schema.ts";
import { podIdentity } from "../smi/access.ts";
import type { HttpRouteGroup } from "../smi/http-route-group.ts";
import type { TCPRoute, TrafficTarget } from "../smi/schema.ts";
import { validObjects } from "../smi/validate.ts";
import { createAccessPolicy, isLive, sourcePods } from "./access-policy.ts";
import type { ConfigHub, SidecarConfigContent } from "./config-hub.ts";
import { EgressBypassReporter, type RecordPodEvent } from "./egress-bypass-events.ts";
import type { StalePodReport } from "./http-api.ts";
import { buildMeshEndpoints } from "./mesh-endpoints.ts";
import type { ControllerMetrics } from "./metrics.ts";
import type { ResourceSource } from "./resource-source.ts";
import type { PatchStaleAnnotation } from "./stale-annotator.ts";
import { StaleAnnotator } from "./stale-annotator.ts";

/** Recomputes a pod's policy record from the current MeshConfig and the pod's and namespace's annotations. */
export type PolicyRecompute = (input: {
  readonly podAnnotations: Readonly<Record<string, string>>;
  readonly namespaceAnnotations: Readonly<Record<string, string>>;
}) => PolicyRecording;

export interface ControllerSources {
  readonly meshConfigs: ResourceSource<KubernetesObject>;
  readonly namespaces: ResourceSource<V1Namespace>;
  readonly pods: ResourceSource<V1Pod>;
  readonly services: ResourceSource<V1Service>;
  readonly endpoints: ResourceSource<V1Endpoints>;
  /**
   * SMI TrafficTargets and TCPRoutes. Not needed for readiness (permissive mode does not read them); with
   * permissive mode off, what is not listed yet allows nothing (fail closed).
   */
  readonly trafficTargets?: ResourceSource<KubernetesObject>;
  readonly tcpRoutes?: ResourceSource<KubernetesObject>;
  /** Egress policies and the HTTPRouteGroups they name: likewise optional, and fail closed until listed. */
  readonly egresses?: ResourceSource<KubernetesObject>;
  readonly httpRouteGroups?: ResourceSource<KubernetesObject>;
}

/** The sources every config depends on: the controller is ready once these have listed. */
const REQUIRED_SOURCES = ["meshConfigs", "namespaces", "pods", "services", "endpoints"] as const;

export interface ControllerCoreOptions {
  readonly sources: ControllerSources;
  readonly hub: ConfigHub;
  readonly osmNamespace: string;
  readonly meshName: string;
  readonly logger: Logger;
  readonly metrics: ControllerMetrics;
  /** How a pod's policy is recomputed under a given MeshConfig (config/'s buildEffectivePolicy). */
  readonly recomputeFor: (meshConfig: MeshConfig) => PolicyRecompute;
  /** Writes the stale annotation; omit to only report through the API. */
  readonly patchStale?: PatchStaleAnnotation;
  /** Records the EgressBypassPossible Warning Event on pods; omit to record none. */
  readonly recordEvent?: RecordPodEvent;
  /** Coalesces bursts of informer events into one reconcile (ms). */
  readonly debounceMs?: number;
  /** Reconciles this often even without events, which retries failed annotation patches (ms). */
  readonly resyncMs?: number;
}

/** Annotations osm-ts writes (policy record, token hash, stale verdict): never inputs of the policy. */
const OWN_ANNOTATION_PREFIX = "osm-ts.io/";
/** Distinct annotation sets remembered; beyond this the memo starts over (bounded memory). */
const MEMO_LIMIT = 10_000;

function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
}

export class ControllerCore {
  readonly #o: ControllerCoreOptions;
  readonly #annotator: StaleAnnotator | undefined;
  readonly #bypassReporter: EgressBypassReporter | undefined;
  #meshConfig: MeshConfig | undefined;
  #meshConfigKey = "";
  #stale: StalePodReport[] = [];
  /** hash → canonical text of every pod's recorded policy this controller has seen current (no copies). */
  #policies = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;
  #reconciles = 0;
  #lastReconcileMs = 0;
  readonly #memo = new Map<string, { ok: true; policy: PolicyRecording } | { ok: false; error: unknown }>();
  /** Pods whose policy could not be recomputed at the last reconcile (logged once, when they start to). */
  #failing = new Set<string>();
  #memoFor: MeshConfig | undefined;
  /** SMI objects found invalid at the last reconcile (each logged once, when it becomes invalid). */
  readonly #invalidSmi = new Set<string>();

  constructor(options: ControllerCoreOptions) {
    this.#o = options;
    this.#annotator = options.patchStale
      ? new StaleAnnotator(options.patchStale, options.logger, (result) =>
          options.metrics.podPatches.inc({ result }),
        )
      : undefined;
    this.#bypassReporter = options.recordEvent
      ? new EgressBypassReporter(options.recordEvent, options.logger)
      : undefined;
    for (const source of Object.values(options.sources) as ResourceSource<KubernetesObject>[]) {
      source.onChange((kind) => {
        options.metrics.informerEvents.inc({ resource: source.name, kind });
        this.schedule();
      });
    }
  }

  /** Starts every informer; resolves when each has listed once (or failed and is retrying). */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#resync = setInterval(() => this.schedule(), this.#o.resyncMs ?? 30_000);
    this.#resync.unref();
    await Promise.all(Object.values(this.#o.sources).map((s: ResourceSource<KubernetesObject>) => s.start()));
    this.reconcile();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#resync) clearInterval(this.#resync);
    this.#timer = undefined;
    this.#resync = undefined;
    await Promise.all(Object.values(this.#o.sources).map((s: ResourceSource<KubernetesObject>) => s.stop()));
    await this.idle();
  }

  /** Every informer has listed and a valid MeshConfig has been seen: configs are complete. */
  isReady(): boolean {
    return REQUIRED_SOURCES.every((name) => this.#o.sources[name].synced) && this.#meshConfig !== undefined;
  }

  /** The MeshConfig in force (the last valid one seen). */
  get meshConfig(): MeshConfig | undefined {
    return this.#meshConfig;
  }

  /** How many reconciles ran (tests wait on it). */
  get reconciles(): number {
    return this.#reconciles;
  }

  lookupPod(namespace: string, name: string): V1Pod | undefined {
    return this.#o.sources.pods.get(name, namespace);
  }

  stalePods(): readonly StalePodReport[] {
    return this.#stale;
  }

  /**
   * The canonical policy text whose sha256 is `hash`, if a pod runs (or is about to start with) it: the current
   * MeshConfig's, or the one a stale pod was admitted with while this controller saw it current. What osm-init
   * fetches when its policy was too large for the pod object.
   */
  interceptionPolicy(hash: string): string | undefined {
    return this.#policies.get(hash);
  }

  /** Runs a reconcile soon, once per burst of events. */
  schedule(): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (!this.#stopped) this.reconcile();
        // Wait at least as long as the last reconcile took: under constant churn in a large mesh the loop
        // then uses at most about half a core instead of all of it.
      },
      Math.max(this.#o.debounceMs ?? 20, this.#lastReconcileMs),
    );
  }

  #refreshMeshConfig(): void {
    const { sources, osmNamespace, logger, metrics } = this.#o;
    const raw = sources.meshConfigs.get(MESH_CONFIG_NAME, osmNamespace);
    if (!raw) {
      if (this.#meshConfig)
        logger.warn({ osmNamespace }, "MeshConfig is gone; the last valid one stays in force");
      return;
    }
    const key = JSON.stringify((raw as { spec?: unknown }).spec ?? null);
    if (key === this.#meshConfigKey) return;
    this.#meshConfigKey = key;
    try {
      this.#meshConfig = validateMeshConfig(raw);
      metrics.meshConfigInvalid.set(0);
    } catch (error) {
      // Stored before the validating webhook existed, or written around it: do not push garbage to pods.
      metrics.meshConfigInvalid.set(1);
      logger.error({ err: error }, "MeshConfig is invalid; the last valid one stays in force");
    }
  }

  /**
   * The policy computation, memoised on its inputs: replicas share annotations, and a reconcile runs on
   * every pod status change, so without it a large mesh would recompute every pod's policy each time.
   * Our own `osm-ts.io/` annotations are outputs, not inputs, and are left out of the key.
   */
  #memoizedRecompute(meshConfig: MeshConfig): PolicyRecompute {
    if (this.#memoFor !== meshConfig) {
      this.#memo.clear();
      this.#memoFor = meshConfig;
    }
    const compute = this.#o.recomputeFor(meshConfig);
    return (input) => {
      const inputs = Object.entries(input.podAnnotations).filter(
        ([k]) => !k.startsWith(OWN_ANNOTATION_PREFIX),
      );
      const key = JSON.stringify([inputs, input.namespaceAnnotations]);
      let entry = this.#memo.get(key);
      if (!entry) {
        try {
          entry = { ok: true, policy: compute(input) };
        } catch (error) {
          // Remembered too: the same bad input fails the same way, and throwing is not cheap.
          entry = { ok: false, error };
        }
        if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
        this.#memo.set(key, entry);
      }
      if (!entry.ok) throw entry.error;
      return entry.policy;
    };
  }

  /** Recomputes everything from the caches. Synchronous and idempotent. */
  reconcile(): void {
    if (this.#stopped) return;
    const started = performance.now();
    try {
      this.#reconcile();
    } finally {
      this.#lastReconcileMs = performance.now() - started;
    }
  }

  #reconcile(): void {
    this.#reconciles += 1;
    const { sources, hub, metrics, meshName } = this.#o;
    this.#refreshMeshConfig();
    const meshConfig = this.#meshConfig;
    if (!meshConfig || !this.isReady()) return;

    const pods = sources.pods.list();
    const namespaces = sources.namespaces.list();
    const meshEndpoints = buildMeshEndpoints(
      { namespaces, services: sources.services.list(), endpoints: sources.endpoints.list(), pods },
      meshName,
    );
    metrics.meshEndpoints.set(meshEndpoints.length);
    const contentFor = this.#contentFor(meshConfig, meshEndpoints, pods);
    const namespaceByName = new Map(namespaces.map((ns) => [ns.metadata?.name ?? "", ns]));
    const recompute = this.#memoizedRecompute(meshConfig);
    const seen = new Set<string>();
    const stale: StalePodReport[] = [];
    const failing = new Set<string>();
    const meshedLive: V1Pod[] = [];
    const policies = new Map<string, string>();
    for (const pod of pods) {
      const key = podKey(pod);
      const annotations = pod.metadata?.annotations ?? {};
      if (hasSidecarToken(pod)) {
        seen.add(key);
        const { content, contentKey } = contentFor(pod);
        if (hub.set(key, content, contentKey)) metrics.configVersions.inc();
      }
      const namespace = namespaceByName.get(pod.metadata?.namespace ?? "");
      let recording: PolicyRecording | undefined;
      const verdict = evaluateStaleness(annotations, () => {
        recording = recompute({
          podAnnotations: annotations,
          namespaceAnnotations: namespace?.metadata?.annotations ?? {},
        });
        return recording;
      });
      if (verdict === undefined) continue;
      if (verdict.state === "current" && recording) policies.set(recording.hash, recording.text);
      // A pod admitted just before a MeshConfig change may not have run osm-init yet: keep serving the policy
      // it was admitted with for as long as a pod records it (it runs stale, reported as such).
      const kept = verdict.state === "stale" ? this.#policies.get(verdict.recordedHash) : undefined;
      if (verdict.state === "stale" && kept !== undefined) policies.set(verdict.recordedHash, kept);
      if (isLive(pod)) meshedLive.push(pod);
      if (verdict.state === "stale") {
        stale.push({
          namespace: pod.metadata?.namespace ?? "",
          name: pod.metadata?.name ?? "",
          recordedHash: verdict.recordedHash,
          currentHash: verdict.currentHash,
          diff: verdict.diff,
        });
      } else if (verdict.state === "error") {
        failing.add(key);
        if (!this.#failing.has(key)) {
          this.#o.logger.warn({ pod: key, reason: verdict.reason }, "cannot recompute the pod's policy");
        }
      }
      // A verdict of "error" leaves the annotation as it is: we do not know better than before.
      if (verdict.state !== "error" && pod.metadata?.deletionTimestamp === undefined) {
        this.#annotator?.reconcile(
          pod.metadata?.namespace ?? "",
          pod.metadata?.name ?? "",
          annotations[ANNOTATION_INTERCEPTION_STALE],
          verdict.state === "stale" ? verdict.diff.join(" ") : undefined,
        );
      }
    }
    // The proxy uid is a way out only while egress is disabled (with it enabled, everything goes out anyway).
    if (!meshConfig.spec.traffic.enableEgress) this.#bypassReporter?.reconcile(meshedLive);
    for (const key of hub.keys()) if (!seen.has(key)) hub.delete(key);
    stale.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
    this.#stale = stale;
    this.#policies = policies;
    this.#failing = failing;
    metrics.meshedPods.set(seen.size);
    metrics.stalePods.set(stale.length);
  }

  /**
   * Each meshed pod's sidecar config, one per service account. Permissive mode: every mesh endpoint, no inbound
   * rules; otherwise from the valid TrafficTargets and TCPRoutes (src/smi/access.ts). With egress disabled,
   * the Egress rules naming the account (src/egress/rules.ts).
   * The key is a digest, not the JSON itself: the hub compares it once per pod, and the JSON grows with the mesh.
   */
  #contentFor(
    meshConfig: MeshConfig,
    meshEndpoints: SidecarConfigContent["meshEndpoints"],
    pods: readonly V1Pod[],
  ): (pod: V1Pod) => { content: SidecarConfigContent; contentKey: string } {
    const base = {
      enableEgress: meshConfig.spec.traffic.enableEgress,
      maxDataPlaneConnections: meshConfig.spec.sidecar.maxDataPlaneConnections ?? 0,
    };
    const keyed = (content: SidecarConfigContent) => ({
      content,
      contentKey: createHash("sha256").update(JSON.stringify(content)).digest("base64"),
    });
    const access = meshConfig.spec.traffic.enablePermissiveTrafficPolicyMode
      ? () => ({ meshEndpoints })
      : createAccessPolicy({
          trafficTargets: this.#validSmi(this.#o.sources.trafficTargets, "TrafficTarget") as TrafficTarget[],
          tcpRoutes: this.#validSmi(this.#o.sources.tcpRoutes, "TCPRoute") as TCPRoute[],
          httpRouteGroups: this.#validSmi(
            this.#o.sources.httpRouteGroups,
            "HTTPRouteGroup",
          ) as HttpRouteGroup[],
          services: this.#o.sources.services.list(),
          meshEndpoints,
          pods,
          sourcePods: sourcePods(pods),
        });
    // Egress rules (src/egress/rules.ts) only while egress is disabled: OSM ignores Egress policies otherwise.
    const egressInput = meshConfig.spec.traffic.enableEgress
      ? undefined
      : {
          enableEgress: false,
          egresses: this.#validSmi(this.#o.sources.egresses, "Egress") as Egress[],
          httpRouteGroups: this.#validSmi(
            this.#o.sources.httpRouteGroups,
            "HTTPRouteGroup",
          ) as HttpRouteGroup[],
        };
    const byIdentity = new Map<string, { content: SidecarConfigContent; contentKey: string }>();
    return (pod) => {
      const identity = podIdentity(pod);
      let entry = byIdentity.get(identity);
      if (!entry) {
        const [namespace = "", name = ""] = identity.split("/");
        const egress = egressInput && egressPolicyFor({ namespace, name }, egressInput);
        entry = keyed({ ...base, ...access(identity), ...(egress ? { egress } : {}) });
        byIdentity.set(identity, entry);
      }
      return entry;
    };
  }

  /** The valid objects of an SMI source; an invalid one (stored around the webhook) is skipped, logged once. */
  #validSmi(source: ResourceSource<KubernetesObject> | undefined, kind: string): unknown[] {
    const { valid, invalid } = validObjects(source?.list() ?? [], kind);
    for (const [name, issues] of invalid) {
      if (!this.#invalidSmi.has(name)) {
        this.#o.logger.warn({ object: name, issues }, "invalid SMI object ignored: it allows nothing");
      }
    }
    for (const name of this.#invalidSmi)
      if (name.startsWith(`${kind} `) && !invalid.has(name)) this.#invalidSmi.delete(name);
    for (const name of invalid.keys()) this.#invalidSmi.add(name);
    return valid;
  }

  /** Resolves when annotation patches and events started so far are done (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([this.#annotator?.idle(), this.#bypassReporter?.idle()]);
  }
}

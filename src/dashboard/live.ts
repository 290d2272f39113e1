/**
 * The dashboard's live feed, over the API server only (the user's kubeconfig, any cluster): informers on the
 * MeshConfig, pods, namespaces and the control plane's Deployments rebuild the state on every change, and
 * each running meshed pod's sidecar log is followed (`pods/log?follow=true`, container `envoy`) for its
 * access-log lines, the sidecar's decisions. The last decisions are kept in a bounded ring for new pages.
 */
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Deployment,
  type V1Namespace,
  type V1Pod,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { MESH_CONFIG_GROUP, MESH_CONFIG_NAME, SIDECAR_CONTAINER_NAME } from "../constants.ts";
import { createInformerSource, type ResourceSource } from "../controller/resource-source.ts";
import { parseDecisionLine } from "./decisions.ts";
import { followPodLog } from "./pod-log.ts";
import { buildDashboardState } from "./state.ts";
import type { DashboardState, DecisionEvent } from "./wire.ts";

/** How many decisions a new page gets (and the server keeps). */
export const DECISION_HISTORY = 500;
/** Of each sidecar's log, read when its follow starts (then only new lines). */
const TAIL_LINES = 50;
/** Wait before following a pod's log again after its stream ended (a restarting container). */
const REFOLLOW_MS = 2_000;

export interface LiveFeedOptions {
  readonly kubeConfig: KubeConfig;
  readonly osmNamespace: string;
  readonly logger: Logger;
}

export interface LiveFeed {
  /** The latest state (undefined until the first lists are in). */
  readonly state: DashboardState | undefined;
  /** The decisions kept, oldest first. */
  readonly decisions: readonly DecisionEvent[];
  onState(listener: (state: DashboardState) => void): void;
  onDecision(listener: (decision: DecisionEvent) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Follower {
  readonly uid: string;
  readonly abort: AbortController;
  ended: boolean;
  endedAt: number;
}

export function createLiveFeed(options: LiveFeedOptions): LiveFeed {
  const { kubeConfig, osmNamespace, logger } = options;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const meshConfigs = createInformerSource<KubernetesObject>({
    name: "meshconfigs",
    kubeConfig,
    path: `/apis/${MESH_CONFIG_GROUP}/v1alpha2/namespaces/${osmNamespace}/meshconfigs`,
    list: async () =>
      (await custom.listNamespacedCustomObject({
        group: MESH_CONFIG_GROUP,
        version: "v1alpha2",
        namespace: osmNamespace,
        plural: "meshconfigs",
      })) as KubernetesListObject<KubernetesObject>,
    logger,
  });
  const pods = createInformerSource<V1Pod>({
    name: "pods",
    kubeConfig,
    path: "/api/v1/pods",
    list: () => core.listPodForAllNamespaces(),
    logger,
  });
  const namespaces = createInformerSource<V1Namespace>({
    name: "namespaces",
    kubeConfig,
    path: "/api/v1/namespaces",
    list: () => core.listNamespace(),
    logger,
  });
  const deployments = createInformerSource<V1Deployment>({
    name: "deployments",
    kubeConfig,
    path: `/apis/apps/v1/namespaces/${osmNamespace}/deployments`,
    list: () => apps.listNamespacedDeployment({ namespace: osmNamespace }),
    logger,
  });
  const sources: ResourceSource<KubernetesObject>[] = [meshConfigs, pods, namespaces, deployments];

  let state: DashboardState | undefined;
  const decisions: DecisionEvent[] = [];
  const stateListeners: ((s: DashboardState) => void)[] = [];
  const decisionListeners: ((d: DecisionEvent) => void)[] = [];
  const followers = new Map<string, Follower>();
  /** Per pod uid: the time of the last decision shown (ISO times of one clock compare as strings). */
  const lastSeen = new Map<string, string>();
  let seq = 0;
  let stopped = false;
  let pending: NodeJS.Timeout | undefined;

  const emitDecision = (decision: DecisionEvent): void => {
    decisions.push(decision);
    if (decisions.length > DECISION_HISTORY) decisions.splice(0, decisions.length - DECISION_HISTORY);
    for (const l of decisionListeners) l(decision);
  };

  /** Follows one pod's sidecar log until it ends (container gone) or the follower is dropped. */
  const follow = (namespace: string, name: string, follower: Follower): void => {
    const target = { namespace, pod: name, container: SIDECAR_CONTAINER_NAME, tailLines: TAIL_LINES };
    const onLine = (line: string): void => {
      const decision = parseDecisionLine(line, namespace, name, seq + 1);
      // A follow started again (after a dropped stream) re-reads the tail: skip what was already shown.
      if (decision === undefined || decision.time < (lastSeen.get(follower.uid) ?? "")) return;
      lastSeen.set(follower.uid, decision.time);
      seq += 1;
      emitDecision(decision);
    };
    followPodLog(kubeConfig, target, onLine, follower.abort.signal)
      .catch((error: unknown) =>
        logger.debug({ pod: `${namespace}/${name}`, err: error }, "sidecar log not readable yet"),
      )
      .finally(() => {
        follower.ended = true;
        follower.endedAt = Date.now();
      });
  };

  /** Follows the sidecar of every running meshed pod whose sidecar has started; drops the others. */
  const syncFollowers = (s: DashboardState): void => {
    const wanted = new Map<string, string>();
    for (const row of s.pods) {
      const pod = pods.get(row.pod, row.namespace) as V1Pod | undefined;
      const started = (pod?.status?.containerStatuses ?? []).some(
        (c) => c.name === SIDECAR_CONTAINER_NAME && c.state?.running !== undefined,
      );
      if (pod && started) wanted.set(`${row.namespace}/${row.pod}`, pod.metadata?.uid ?? "");
    }
    for (const [key, follower] of followers) {
      if (wanted.get(key) !== follower.uid) {
        follower.abort.abort();
        lastSeen.delete(follower.uid);
        followers.delete(key);
      }
    }
    for (const [key, uid] of wanted) {
      const existing = followers.get(key);
      if (existing && !(existing.ended && Date.now() - existing.endedAt > REFOLLOW_MS)) continue;
      const follower: Follower = { uid, abort: new AbortController(), ended: false, endedAt: 0 };
      followers.set(key, follower);
      const [namespace = "", name = ""] = key.split("/");
      follow(namespace, name, follower);
    }
  };

  const rebuild = (): void => {
    pending = undefined;
    if (stopped || !sources.every((s) => s.synced)) return;
    const meshConfig = meshConfigs.get(MESH_CONFIG_NAME, osmNamespace) as Record<string, unknown> | undefined;
    state = buildDashboardState(
      {
        osmNamespace,
        meshConfig,
        pods: pods.list(),
        namespaces: namespaces.list(),
        deployments: deployments.list(),
      },
      new Date().toISOString(),
    );
    syncFollowers(state);
    for (const l of stateListeners) l(state);
  };
  // Changes come in bursts (a rollout touches pods many times): one rebuild per burst.
  const schedule = (): void => {
    pending ??= setTimeout(rebuild, 50);
  };
  for (const source of sources) source.onChange(schedule);
  // A follower whose stream ended is retried on the next change, or by this timer when nothing changes.
  const refollow = setInterval(() => {
    if (state && [...followers.values()].some((f) => f.ended)) syncFollowers(state);
  }, REFOLLOW_MS);
  refollow.unref();

  return {
    get state() {
      return state;
    },
    decisions,
    onState: (l) => {
      stateListeners.push(l);
    },
    onDecision: (l) => {
      decisionListeners.push(l);
    },
    start: async () => {
      await Promise.all(sources.map((s) => s.start()));
      rebuild();
    },
    stop: async () => {
      stopped = true;
      clearInterval(refollow);
      if (pending) clearTimeout(pending);
      for (const f of followers.values()) f.abort.abort();
      followers.clear();
      await Promise.all(sources.map((s) => s.stop()));
    },
  };
}

/**
 * The node agent (a small kubelet): a client of the Kubernetes API through @kubernetes/client-node, watching
 * the pods bound to this node (`spec.nodeName`), running them through the NodeRuntime and writing
 * `pods/status` back. Deletion follows the API server's graceful protocol: a started pod gets a
 * `deletionTimestamp`; the agent stops it within `deletionGracePeriodSeconds`, then deletes it with grace 0.
 * On start it reconciles: pods still in the API are (re)started on their old address; every sandbox,
 * address or process that no pod owns any more is removed.
 */
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  ListWatch,
  type V1Endpoints,
  type V1Pod,
  type V1PodStatus,
  type V1Service,
  Watch,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../../edge/kube-client.ts";
import { LiveInterception, runtimeLocator } from "./live-interception.ts";
import type { ResumeState } from "./pod-context.ts";
import { createPodEventPoster } from "./pod-events.ts";
import { buildPodStatus } from "./pod-status.ts";
import type { NodeRuntime } from "./runtime.ts";
import { ServiceAccountTokens } from "./service-account-tokens.ts";

export interface NodeAgentOptions {
  readonly kubeConfig: KubeConfig;
  /**
   * Who watches Services and Endpoints (default: `kubeConfig`). On a real cluster a node's own identity may
   * not list Endpoints: that is kube-proxy's (`system:kube-proxy`, bound to `system:node-proxier`).
   */
  readonly serviceKubeConfig?: KubeConfig;
  /**
   * Who live interception updates act as (default: `kubeConfig`): they read MeshConfigs and namespaces and
   * patch a pod's recorded policy, which a node's own identity may not.
   */
  readonly interceptionKubeConfig?: KubeConfig;
  readonly runtime: NodeRuntime;
  readonly nodeName: string;
  readonly logger: Logger;
  /** Coalescing window of status writes. */
  readonly statusDelayMs?: number;
  /** How often live interception updates read every meshed pod's rules back (drift); default 5 s. */
  readonly interceptionDriftCheckMs?: number;
  /**
   * False: this agent never changes a running pod's interception; the osm-node DaemonSet does it for this
   * node (`osm mesh up --no-live-interception`). Default true.
   */
  readonly liveInterception?: boolean;
}

export interface NodeAgent {
  /** Stops watching; pods keep running (the daemon decides whether to stop them). */
  stop(): Promise<void>;
  /** The agent's Prometheus metrics (text exposition format): live interception updates. */
  metrics(): Promise<string>;
}

function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** What an earlier agent run reported, so restart counts continue and finished init containers are not rerun. */
export function resumeStateOf(pod: V1Pod): ResumeState | undefined {
  const status = pod.status;
  if (!status?.containerStatuses && !status?.initContainerStatuses) return undefined;
  const counts = new Map<string, number>();
  const initialized =
    status.conditions?.some((c) => c.type === "Initialized" && c.status === "True") ?? false;
  for (const c of status.initContainerStatuses ?? []) counts.set(`init:${c.name}`, c.restartCount ?? 0);
  for (const c of status.containerStatuses ?? []) {
    const ran =
      c.state?.running !== undefined ||
      c.state?.terminated !== undefined ||
      c.lastState?.terminated !== undefined;
    // Its process died with the old agent: starting it again is a restart.
    counts.set(c.name, (c.restartCount ?? 0) + (ran ? 1 : 0));
  }
  return { initialized, restartCounts: counts };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the agent: lists once (retrying until the API answers), removes orphans, then watches. */
export async function startNodeAgent(options: NodeAgentOptions): Promise<NodeAgent> {
  const { runtime, nodeName, logger } = options;
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const statusDelay = options.statusDelayMs ?? 50;
  let stopped = false;
  const known = new Map<string, V1Pod>();
  const lastStatus = new Map<string, V1PodStatus>();

  // ---- status writer: one write in flight per pod, changes during a write coalesce into one more ------------
  const dirty = new Set<string>();
  const writing = new Set<string>();
  const writeStatus = async (uid: string): Promise<void> => {
    if (writing.has(uid)) return;
    writing.add(uid);
    let failures = 0;
    try {
      while (dirty.delete(uid) && !stopped) {
        const pod = known.get(uid);
        const view = runtime.view(uid);
        if (!pod || !view || view.terminating) return;
        const status = buildPodStatus(view, new Date(), lastStatus.get(uid) ?? pod.status);
        try {
          await core.patchNamespacedPodStatus({
            name: pod.metadata?.name ?? "",
            namespace: pod.metadata?.namespace ?? "",
            // The test op: never write this pod's status onto a new pod that took its name.
            body: [
              { op: "test", path: "/metadata/uid", value: uid },
              { op: "add", path: "/status", value: status },
            ],
          });
          lastStatus.set(uid, status);
          failures = 0;
        } catch (error) {
          const code = apiErrorCode(error);
          if (code === 404 || stopped) continue;
          // Retried a few times (API restarting, transient errors); the next change of the pod writes again.
          if (++failures >= 5) {
            logger.warn(
              { err: error, pod: pod.metadata?.name },
              "status write failed; giving up until the pod changes",
            );
            continue;
          }
          logger.debug({ err: error, pod: pod.metadata?.name }, "status write failed; retrying");
          dirty.add(uid);
          await sleep(200 * failures);
        }
      }
    } finally {
      writing.delete(uid);
    }
  };
  const onRuntimeChange = (uid: string) => {
    if (stopped || dirty.has(uid)) return;
    dirty.add(uid);
    setTimeout(() => void writeStatus(uid), statusDelay).unref();
  };

  // ---- events, as the kubelet posts them (kubectl describe pod / get events); bounded, best effort ----------
  const postEvent = createPodEventPoster({
    core,
    component: "kubelet",
    host: nodeName,
    logger,
    stopped: () => stopped,
  });

  // ---- reconcile one pod ----------------------------------------------------------------------------------
  const finalizing = new Set<string>();
  const reconcile = async (pod: V1Pod): Promise<void> => {
    const uid = pod.metadata?.uid ?? "";
    const name = pod.metadata?.name ?? "";
    const namespace = pod.metadata?.namespace ?? "";
    if (pod.spec?.nodeName !== nodeName || !uid) return;
    if (pod.metadata?.deletionTimestamp) {
      if (finalizing.has(uid)) return;
      finalizing.add(uid);
      try {
        await runtime.killPod(
          uid,
          pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30,
        );
        await core
          .deleteNamespacedPod({
            name,
            namespace,
            // In the body too: kube-apiserver reads a DeleteOptions body instead of the query parameters.
            gracePeriodSeconds: 0,
            body: { gracePeriodSeconds: 0, preconditions: { uid } },
          })
          .catch((error: unknown) => {
            if (apiErrorCode(error) !== 404 && apiErrorCode(error) !== 409) throw error;
          });
        logger.info({ pod: `${namespace}/${name}` }, "pod deleted");
      } catch (error) {
        logger.warn({ err: error, pod: `${namespace}/${name}` }, "pod deletion failed");
      } finally {
        finalizing.delete(uid);
      }
      return;
    }
    if (runtime.has(uid) || isFinished(pod)) return;
    logger.info({ pod: `${namespace}/${name}`, uid }, "starting pod");
    runtime.runPod(pod, resumeStateOf(pod));
  };

  const handle = (pod: V1Pod) => {
    const uid = pod.metadata?.uid;
    if (!uid || pod.spec?.nodeName !== nodeName) return;
    known.set(uid, pod);
    live?.podChanged(uid);
    void reconcile(pod);
  };
  const handleDelete = (pod: V1Pod) => {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    known.delete(uid);
    live?.podDeleted(uid);
    lastStatus.delete(uid);
    if (runtime.has(uid)) {
      void runtime.killPod(
        uid,
        pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30,
      );
    }
  };

  // ---- live interception updates (opt-in on the MeshConfig): rules of running pods follow their policy ------
  const live =
    options.liveInterception === false
      ? undefined
      : new LiveInterception({
          kubeConfig: options.interceptionKubeConfig ?? options.kubeConfig,
          locator: runtimeLocator(runtime),
          logger: logger.child({ component: "live-interception" }),
          pods: () => known.values(),
          postEvent,
          ...(options.interceptionDriftCheckMs === undefined
            ? {}
            : { driftCheckMs: options.interceptionDriftCheckMs }),
        });

  // ---- first list: reconcile against what the host still has ----------------------------------------------
  let list: V1Pod[] | undefined;
  for (let attempt = 0; list === undefined; attempt++) {
    try {
      list = (await core.listPodForAllNamespaces({ fieldSelector })).items.filter(
        (p) => p.spec?.nodeName === nodeName,
      );
    } catch (error) {
      if (attempt >= 50) throw error;
      await sleep(200);
    }
  }
  const keep = new Set(
    list.filter((p) => !isFinished(p) && !p.metadata?.deletionTimestamp).map((p) => p.metadata?.uid ?? ""),
  );
  const removed = await runtime.removeOrphans(keep);
  if (removed.length > 0) logger.info({ removed }, "removed orphaned pod sandboxes");

  runtime.onChange = onRuntimeChange;
  runtime.onEvent = (pod, event) => postEvent(pod, event);
  // Each pod's own token, bound to it, where the API server serves TokenRequest.
  const tokens = new ServiceAccountTokens(core, runtime.podApiAccess?.caPem ?? "", logger);
  runtime.podCredentials = (pod, tokenFile) => tokens.credentials(pod, tokenFile);
  runtime.projectToken = (pod, source, tokenFile, owner) => tokens.project(pod, source, tokenFile, owner);
  runtime.readEnvSource = async (kind, namespace, name) => {
    try {
      if (kind === "ConfigMap")
        return { ...((await core.readNamespacedConfigMap({ name, namespace })).data ?? {}) };
      const secret = await core.readNamespacedSecret({ name, namespace });
      const out: Record<string, string> = { ...(secret.stringData ?? {}) };
      for (const [k, v] of Object.entries(secret.data ?? {}))
        out[k] = Buffer.from(v, "base64").toString("utf8");
      return out;
    } catch (error) {
      if (apiErrorCode(error) === 404) return null;
      throw error;
    }
  };
  // ---- Services and Endpoints (before any pod starts): ClusterIP table and cluster DNS names --------------
  const serviceKubeConfig = options.serviceKubeConfig ?? options.kubeConfig;
  const proxyCore = serviceKubeConfig.makeApiClient(CoreV1Api);
  const watchAll = <T extends KubernetesObject>(path: string, list: () => Promise<{ items: T[] }>) => {
    const lw = new ListWatch<T>(path, new Watch(serviceKubeConfig), list, false);
    lw.on("add", () => scheduleServices());
    lw.on("update", () => scheduleServices());
    lw.on("delete", () => scheduleServices());
    lw.on("error", (error) => {
      if (stopped) return;
      logger.warn({ err: error, path }, "watch failed; restarting");
      setTimeout(() => {
        if (!stopped) void lw.start();
      }, 1000).unref();
    });
    return lw;
  };
  let servicesTimer: NodeJS.Timeout | undefined;
  const scheduleServices = () => {
    if (stopped || servicesTimer) return;
    servicesTimer = setTimeout(() => {
      servicesTimer = undefined;
      void runtime.updateServices(services.list(), endpoints.list());
    }, 50);
    servicesTimer.unref();
  };
  const services = watchAll<V1Service>("/api/v1/services", () => proxyCore.listServiceForAllNamespaces());
  const endpoints = watchAll<V1Endpoints>("/api/v1/endpoints", () =>
    proxyCore.listEndpointsForAllNamespaces(),
  );
  await Promise.all([services.start(), endpoints.start()]);

  const informer = new ListWatch<V1Pod>(
    "/api/v1/pods",
    new Watch(options.kubeConfig),
    async () => {
      const res = await core.listPodForAllNamespaces({ fieldSelector });
      return res;
    },
    false,
    undefined,
    fieldSelector,
  );
  informer.on("add", handle);
  informer.on("update", handle);
  informer.on("delete", handleDelete);
  informer.on("error", (error) => {
    if (stopped) return;
    logger.warn({ err: error }, "pod watch failed; restarting");
    setTimeout(() => {
      if (!stopped) void informer.start();
    }, 1000).unref();
  });
  await informer.start();
  live?.start();

  return {
    metrics: async () => (live ? live.metrics.registry.metrics() : ""),
    async stop() {
      stopped = true;
      if (servicesTimer) clearTimeout(servicesTimer);
      runtime.onChange = undefined;
      runtime.onEvent = undefined;
      runtime.readEnvSource = undefined;
      runtime.podCredentials = undefined;
      runtime.projectToken = undefined;
      tokens.stop();
      await Promise.all([live?.stop(), informer.stop(), services.stop(), endpoints.stop()]);
    },
  };
}

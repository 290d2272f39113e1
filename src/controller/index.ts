/**
 * The osm-ts controller: watches the Kubernetes API (client-node informers) and serves the sidecar watch
 * API, the stale-pod report, metrics and health. Same code on a real cluster and the embedded API server.
 */

import { hostname } from "node:os";
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Endpoints,
  type V1Namespace,
  type V1Pod,
  type V1Service,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { buildEffectivePolicy, type MeshConfig, recordPolicy } from "../config/index.ts";
import { MESH_CONFIG_GROUP } from "../constants.ts";
import { EGRESS, HTTP_ROUTE_GROUP, type SmiKind, TCP_ROUTE, TRAFFIC_TARGET } from "../smi/validate.ts";
import { ConfigHub } from "./config-hub.ts";
import { ControllerCore, type ControllerSources, type PolicyRecompute } from "./controller-core.ts";
import { kubeRecordPodEvent } from "./egress-bypass-events.ts";
import { type RunningHttpApi, startHttpApi } from "./http-api.ts";
import { ensureMeshConfig, MESH_CONFIG_PLURAL, MESH_CONFIG_VERSION } from "./mesh-config-bootstrap.ts";
import { type ControllerMetrics, createControllerMetrics } from "./metrics.ts";
import { createInformerSource } from "./resource-source.ts";
import { cachedReviewer, kubeTokenReviewer } from "./sidecar-auth.ts";
import { kubePatchStaleAnnotation } from "./stale-annotator.ts";

export { ConfigHub } from "./config-hub.ts";
export { ControllerCore } from "./controller-core.ts";
export { STALE_PODS_PATH, STALE_REPORT_API_VERSION, type StalePodReport } from "./http-api.ts";
export { cachedReviewer, kubeTokenReviewer, type TokenReviewer } from "./sidecar-auth.ts";

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly osmNamespace: string;
  readonly meshName: string;
  /** Address to serve on; port 0 picks a free port. */
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** Require sidecars to connect from their pod's IP (see README: off where NAT sits in between). */
  readonly requireSourceIp?: boolean;
  /**
   * Write to pods (default true): the `osm-ts.io/interception-stale` annotation and the
   * EgressBypassPossible Event.
   */
  readonly annotatePods?: boolean;
}

export interface RunningController {
  /** `http://host:port` of the API. */
  readonly url: string;
  readonly core: ControllerCore;
  readonly hub: ConfigHub;
  readonly metrics: ControllerMetrics;
  /** Resolves when caches are synced and the MeshConfig is known; rejects after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** How the injector computes a pod's policy (src/injector/inject.ts), so hashes compare equal. */
export function recomputeWith(meshConfig: MeshConfig): PolicyRecompute {
  return ({ podAnnotations, namespaceAnnotations }) =>
    recordPolicy(buildEffectivePolicy(meshConfig, { podAnnotations, namespaceAnnotations }));
}

function buildSources(kubeConfig: KubeConfig, osmNamespace: string, logger: Logger): ControllerSources {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const log = logger.child({ component: "informer" });
  const smiSource = (kind: SmiKind) => {
    const [group, version] = kind.apiVersion.split("/") as [string, string];
    return createInformerSource<KubernetesObject>({
      name: kind.plural,
      kubeConfig,
      path: `/apis/${group}/${version}/${kind.plural}`,
      list: async () =>
        (await custom.listClusterCustomObject({
          group,
          version,
          plural: kind.plural,
        })) as KubernetesListObject<KubernetesObject>,
      logger: log,
    });
  };
  return {
    meshConfigs: createInformerSource<KubernetesObject>({
      name: "meshconfigs",
      kubeConfig,
      path: `/apis/${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}/namespaces/${osmNamespace}/${MESH_CONFIG_PLURAL}`,
      list: async () =>
        (await custom.listNamespacedCustomObject({
          group: MESH_CONFIG_GROUP,
          version: MESH_CONFIG_VERSION,
          namespace: osmNamespace,
          plural: MESH_CONFIG_PLURAL,
        })) as KubernetesListObject<KubernetesObject>,
      logger: log,
    }),
    namespaces: createInformerSource<V1Namespace>({
      name: "namespaces",
      kubeConfig,
      path: "/api/v1/namespaces",
      list: () => core.listNamespace(),
      logger: log,
    }),
    pods: createInformerSource<V1Pod>({
      name: "pods",
      kubeConfig,
      path: "/api/v1/pods",
      list: () => core.listPodForAllNamespaces(),
      logger: log,
    }),
    services: createInformerSource<V1Service>({
      name: "services",
      kubeConfig,
      path: "/api/v1/services",
      list: () => core.listServiceForAllNamespaces(),
      logger: log,
    }),
    endpoints: createInformerSource<V1Endpoints>({
      name: "endpoints",
      kubeConfig,
      path: "/api/v1/endpoints",
      list: () => core.listEndpointsForAllNamespaces(),
      logger: log,
    }),
    trafficTargets: smiSource(TRAFFIC_TARGET),
    tcpRoutes: smiSource(TCP_ROUTE),
    egresses: smiSource(EGRESS),
    httpRouteGroups: smiSource(HTTP_ROUTE_GROUP),
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Starts the controller: HTTP API first (health answers at once), then bootstrap and informers. */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { kubeConfig, osmNamespace, meshName, logger } = options;
  const metrics = createControllerMetrics();
  const hub = new ConfigHub();
  const core = new ControllerCore({
    sources: buildSources(kubeConfig, osmNamespace, logger),
    hub,
    osmNamespace,
    meshName,
    logger,
    metrics,
    recomputeFor: recomputeWith,
    ...(options.annotatePods === false
      ? {}
      : {
          patchStale: kubePatchStaleAnnotation(kubeConfig.makeApiClient(CoreV1Api)),
          recordEvent: kubeRecordPodEvent(kubeConfig.makeApiClient(CoreV1Api), hostname()),
        }),
  });
  const http: RunningHttpApi = await startHttpApi({
    host: options.host,
    port: options.port,
    logger: logger.child({ component: "http" }),
    metrics,
    requireSourceIp: options.requireSourceIp ?? false,
    review: cachedReviewer(kubeTokenReviewer(kubeConfig)),
    state: {
      hub,
      lookupPod: (namespace, name) => core.lookupPod(namespace, name),
      isReady: () => core.isReady(),
      stalePods: () => core.stalePods(),
      interceptionPolicy: (hash) => core.interceptionPolicy(hash),
    },
  });
  logger.info({ url: http.url, osmNamespace, meshName }, "controller API listening");

  let closed = false;
  const closing = new AbortController();
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  // Bootstrap retries until it succeeds (the CRD or the namespace may not exist yet), bounded by close().
  const bootstrap = (async () => {
    let delayMs = 250;
    while (!closed) {
      try {
        await ensureMeshConfig(custom, osmNamespace, logger);
        return;
      } catch (error) {
        logger.warn({ err: error, retryInMs: delayMs }, "could not ensure the MeshConfig; retrying");
        await sleep(delayMs, closing.signal);
        delayMs = Math.min(delayMs * 2, 10_000);
      }
    }
  })();
  const started = core.start();

  return {
    url: http.url,
    core,
    hub,
    metrics,
    whenReady: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      while (!core.isReady()) {
        if (closed) throw new Error("controller closed before it was ready");
        if (Date.now() > deadline) throw new Error(`controller not ready after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      closing.abort();
      hub.close();
      await Promise.allSettled([bootstrap, started]);
      await core.stop();
      await http.close();
    },
  };
}

/**
 * The osm-node DaemonSet's process (`osm node-agent --node NAME`): the live interception reconciler of the
 * embedded node agent (`live-interception.ts`, the same code), for the meshed pods of a node it did not start.
 * It watches only the pods bound to its node (`fieldSelector spec.nodeName=NAME`), finds each pod's network
 * namespace through /proc (`netns-locator.ts`), reads the MeshConfigs of the control plane's namespace only,
 * records what it applied through `pods/status` (the narrower grant) and posts Events as `osm-node`. Serves
 * `/metrics` (the reconciler's Prometheus metrics) and `/healthz` (200 once the pods are listed).
 */
import { createServer, type Server } from "node:http";
import { CoreV1Api, type KubeConfig, ListWatch, type V1Pod, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { LiveInterception } from "./live-interception.ts";
import { ProcNetnsLocator } from "./netns-locator.ts";
import { createPodEventPoster } from "./pod-events.ts";

export interface DaemonSetAgentOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  /** The control plane's namespace: where `osm-mesh-config` lives. */
  readonly osmNamespace: string;
  readonly logger: Logger;
  /** The metrics and health endpoint. */
  readonly host: string;
  readonly port: number;
  /** The host's /proc (default `/proc`: the pod runs with `hostPID: true`). */
  readonly proc?: string;
  readonly driftCheckMs?: number;
}

export interface DaemonSetAgent {
  /** Where `/metrics` and `/healthz` are served. */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startDaemonSetAgent(o: DaemonSetAgentOptions): Promise<DaemonSetAgent> {
  const core = o.kubeConfig.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${o.nodeName}`;
  let stopped = false;
  let listed = false;
  const pods = new Map<string, V1Pod>();
  const live = new LiveInterception({
    kubeConfig: o.kubeConfig,
    locator: new ProcNetnsLocator(o.proc === undefined ? {} : { proc: o.proc }),
    logger: o.logger.child({ component: "live-interception" }),
    pods: () => pods.values(),
    postEvent: createPodEventPoster({
      core,
      component: "osm-node",
      host: o.nodeName,
      logger: o.logger,
      stopped: () => stopped,
    }),
    meshConfigNamespace: o.osmNamespace,
    recordThrough: "pods/status",
    ...(o.driftCheckMs === undefined ? {} : { driftCheckMs: o.driftCheckMs }),
  });

  const informer = new ListWatch<V1Pod>(
    "/api/v1/pods",
    new Watch(o.kubeConfig),
    () => core.listPodForAllNamespaces({ fieldSelector }),
    false,
    undefined,
    fieldSelector,
  );
  const seen = (pod: V1Pod) => {
    const uid = pod.metadata?.uid;
    if (!uid || pod.spec?.nodeName !== o.nodeName) return;
    pods.set(uid, pod);
    live.podChanged(uid);
  };
  informer.on("add", seen);
  informer.on("update", seen);
  informer.on("delete", (pod) => {
    const uid = pod.metadata?.uid ?? "";
    pods.delete(uid);
    live.podDeleted(uid);
  });
  const restart = (error: unknown) => {
    if (stopped) return;
    o.logger.warn({ err: error }, "pod list or watch failed; restarting");
    setTimeout(() => {
      if (!stopped) informer.start().then(() => (listed = true), restart);
    }, 1000).unref();
  };
  informer.on("error", restart);

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://node").pathname;
    if (req.method === "GET" && path === "/metrics") {
      void live.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { "Content-Type": live.metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    if (req.method === "GET" && (path === "/healthz" || path === "/readyz")) {
      res.writeHead(listed ? 200 : 503, { "Content-Type": "text/plain" });
      res.end(listed ? "ok\n" : "pods of the node not listed yet\n");
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : o.port;
  const url = `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`;

  await informer.start().then(() => (listed = true), restart);
  live.start();
  o.logger.info(
    { node: o.nodeName, fieldSelector },
    "osm-node: reconciling the interception of this node's pods",
  );
  return {
    url,
    async stop() {
      stopped = true;
      await Promise.all([live.stop(), informer.stop()]);
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

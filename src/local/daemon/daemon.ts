/**
 * The daemon behind `osm mesh up`: the embedded API server and the node agent in one process, with a control
 * endpoint (HTTP over `<stateDir>/daemon.sock`: `GET /healthz`, `POST /shutdown`, `POST|DELETE /external-hosts`),
 * a pidfile and the kubeconfig context. `stop()` removes everything it made on the host: pods' processes,
 * namespaces, veths, external hosts, routes and the bridge.
 */
import { chmodSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { NODE_NAME } from "../apiserver/defaults.ts";
import { writeKubeconfig } from "../apiserver/kubeconfig.ts";
import { type NodeAgent, startNodeAgent } from "../node/agent.ts";
import { type Kubelet, startKubelet } from "../node/kubelet/index.ts";
import { checkHostPrerequisites } from "../node/prerequisites.ts";
import { NodeRuntime } from "../node/runtime.ts";
import { claimBridge, releaseBridge } from "./bridge-claim.ts";
import { type DaemonConfig, type Engine, statePaths } from "./config.ts";
import { kubeConfigFor, type RunningEngine, serviceCidrOf, startEngine } from "./engines.ts";

export interface Health {
  readonly status: "ok" | "stopping";
  readonly pid: number;
  readonly engine: Engine;
  /** The real control plane (engine `kubernetes`): kube-apiserver's version and each component's state. */
  readonly kubernetes?: { readonly version: string; readonly components: Record<string, string> };
  readonly apiServer: string;
  readonly kubeconfig: string;
  readonly context: string;
  readonly bridge: string;
  readonly gateway4: string;
  readonly gateway6: string;
  readonly pods: number;
  readonly externalHosts: readonly string[];
  readonly startedAt: string;
}

export interface RunningDaemon {
  readonly health: () => Health;
  /** Stops everything; `purge` also deletes the stored state. Resolves when done. */
  stop(purge: boolean): Promise<void>;
  /** Resolves once stopped (by `stop`, the control endpoint or a signal handler). */
  readonly stopped: Promise<void>;
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        const text = Buffer.concat(chunks).toString();
        resolve(text ? JSON.parse(text) : {});
      } catch (error) {
        reject(error);
      }
    });
    req.on("error", reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(`${JSON.stringify(body)}\n`);
}

/** Starts the daemon in this process. Throws MeshError (not root, missing tool, port taken...). */
export async function startDaemon(config: DaemonConfig, logger: Logger): Promise<RunningDaemon> {
  const paths = statePaths(config.stateDir);
  await checkHostPrerequisites();
  claimBridge(config.network.bridge, config.stateDir);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  chmodSync(config.stateDir, 0o700);
  const serviceCidr = serviceCidrOf(config);
  const runtime = new NodeRuntime({
    stateDir: paths.node,
    network: config.network,
    nodeName: NODE_NAME,
    logger: logger.child({ component: "node" }),
    services: true,
    containerPath: config.containerPath,
    // Pods see none of it (API server PKI and token, other pods' files, logs).
    hiddenPaths: [config.stateDir],
  });
  await runtime.start();
  let engine: RunningEngine | undefined;
  let agent: NodeAgent | undefined;
  let kubelet: Kubelet | undefined;
  let control: Server | undefined;
  let stopping: Promise<void> | undefined;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  const startedAt = new Date().toISOString();

  const stop = (purge: boolean): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ purge }, "stopping");
      await kubelet?.stop().catch((e: unknown) => logger.warn({ err: e }, "kubelet stop failed"));
      await agent?.stop().catch((e: unknown) => logger.warn({ err: e }, "agent stop failed"));
      await runtime.shutdown({ graceSeconds: config.shutdownGraceSeconds, removeBridge: true });
      await engine?.close().catch((e: unknown) => logger.warn({ err: e }, "API server close failed"));
      await new Promise<void>((r) => (control ? control.close(() => r()) : r()));
      for (const f of [paths.socket, paths.pidfile]) rmSync(f, { force: true });
      releaseBridge(config.network.bridge, config.stateDir);
      if (purge) {
        rmSync(paths.apiserver, { recursive: true, force: true });
        rmSync(paths.kubernetes, { recursive: true, force: true });
        rmSync(paths.node, { recursive: true, force: true });
      }
      logger.info("stopped");
      resolveStopped();
    })();
    return stopping;
  };

  try {
    engine = await startEngine(config, runtime, serviceCidr, NODE_NAME, logger);
    writeKubeconfig({
      path: config.kubeconfig,
      context: config.context,
      server: engine.apiUrl,
      caPem: engine.caPem,
      ...engine.user,
      setCurrent: true,
    });
    runtime.podApiAccess = engine.podApiAccess;
    const nodeKubeConfig = kubeConfigFor(engine, engine.node, config.context);
    agent = await startNodeAgent({
      kubeConfig: nodeKubeConfig,
      serviceKubeConfig: kubeConfigFor(engine, engine.serviceProxy, config.context),
      interceptionKubeConfig: kubeConfigFor(engine, engine.interceptionUpdater, config.context),
      runtime,
      nodeName: NODE_NAME,
      logger: logger.child({ component: "agent" }),
      liveInterception: config.liveInterception,
    });
    // The real API server needs a registered Node (the scheduler binds pods to it) and a kubelet API.
    if (engine.kubernetes) {
      kubelet = await startKubelet({
        kubeConfig: nodeKubeConfig,
        nodeName: NODE_NAME,
        address: runtime.plan.gateway4,
        port: engine.kubernetes.kubeletPort,
        tls: { ...engine.kubernetes.kubeletServing, clientCaPem: engine.caPem },
        connector: runtime,
        logger: logger.child({ component: "kubelet" }),
      });
    }
  } catch (error) {
    await stop(false);
    throw error;
  }
  const apiUrl = engine.apiUrl;
  const running = engine;

  const health = (): Health => ({
    status: stopping ? "stopping" : "ok",
    pid: process.pid,
    engine: config.engine,
    ...(running.kubernetes
      ? {
          kubernetes: {
            version: running.kubernetes.version,
            components: running.kubernetes.components(),
          },
        }
      : {}),
    apiServer: apiUrl,
    kubeconfig: config.kubeconfig,
    context: config.context,
    bridge: config.network.bridge,
    gateway4: `${runtime.plan.gateway4}/${runtime.plan.subnet4.prefixLength}`,
    gateway6: `${runtime.plan.gateway6}/${runtime.plan.subnet6.prefixLength}`,
    pods: runtime.uids().length,
    externalHosts: runtime.externalHosts().map((h) => h.name),
    startedAt,
  });

  control = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://daemon");
    void (async () => {
      try {
        if (req.method === "GET" && url.pathname === "/healthz") return reply(res, 200, health());
        if (req.method === "GET" && url.pathname === "/metrics") {
          res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
          res.end((await agent?.metrics()) ?? "");
          return;
        }
        if (req.method === "POST" && url.pathname === "/shutdown") {
          const body = (await readBody(req)) as { purge?: boolean };
          reply(res, 202, { status: "stopping" });
          void stop(body.purge === true);
          return;
        }
        if (req.method === "POST" && url.pathname === "/external-hosts") {
          const body = (await readBody(req)) as { name?: string; addresses?: string[]; hostnames?: string[] };
          const host = await runtime.addExternalHost(
            body.name ?? "",
            body.addresses ?? [],
            body.hostnames ?? [],
          );
          return reply(res, 200, host);
        }
        const del = /^\/external-hosts\/([a-z0-9-]+)$/.exec(url.pathname);
        if (req.method === "DELETE" && del?.[1]) {
          await runtime.removeExternalHost(del[1]);
          return reply(res, 200, { removed: del[1] });
        }
        reply(res, 404, { error: `no such endpoint: ${req.method} ${url.pathname}` });
      } catch (error) {
        reply(res, 400, { error: (error as Error).message });
      }
    })();
  });
  rmSync(paths.socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    control?.once("error", reject);
    control?.listen(paths.socket, () => resolve());
  });
  chmodSync(paths.socket, 0o600);
  writeFileSync(paths.pidfile, `${process.pid}\n`);
  logger.info(
    { apiServer: apiUrl, bridge: config.network.bridge, kubeconfig: config.kubeconfig },
    "osm-local is up",
  );
  return { health, stop, stopped };
}

/** Removes the pidfile if it names this process (used on abnormal exit). */
export function removeOwnPidfile(stateDir: string): void {
  try {
    unlinkSync(statePaths(stateDir).pidfile);
  } catch {
    // Not there: nothing to remove.
  }
}

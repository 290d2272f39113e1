/**
 * Test helpers: the API server as a child process on a random port with a temp state dir, the real
 * kubectl with an isolated KUBECONFIG/cache/HOME, and a client-node "node stand-in" that marks pods Ready
 * (and finishes graceful deletions) as the node agent would.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as k8s from "@kubernetes/client-node";
import { kubectlEnv, type Ran, run } from "../../support/run.ts";

const RUN_SERVER = new URL("./fixtures/run-server.ts", import.meta.url).pathname;

export interface ServerProcess {
  readonly url: string;
  readonly stateDir: string;
  readonly kubeconfig: string;
  readonly child: ChildProcess;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
}

export async function startServerProcess(
  stateDir: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [RUN_SERVER, stateDir], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error("API server did not start within 20 s")), 20_000);
    rl.once("line", (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once("exit", (code) => reject(new Error(`API server exited with ${code}`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    url,
    stateDir,
    kubeconfig: join(stateDir, "kubeconfig"),
    child,
    stop: () => signal("SIGTERM"),
    kill9: () => signal("SIGKILL"),
  };
}

/** Runs the real kubectl against `kubeconfig` with its own cache dir and HOME (no shared state). */
export function kubectlFor(kubeconfig: string, home: string) {
  const env = kubectlEnv(kubeconfig, home);
  return (args: string[], input?: string, timeoutMs = 30_000): Promise<Ran> =>
    run("kubectl", args, { env, input, timeoutMs, killSignal: "SIGKILL" });
}

/** kubectl's stdout, asserting that it succeeded. */
export function ok(r: Ran): string {
  assert.equal(r.code, 0, `kubectl failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `osmt-api-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function kubeConfigFrom(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/**
 * Stands in for the node agent: every pod gets a Running/Ready status with one running status per
 * container; a pod being deleted is finished with gracePeriodSeconds=0. Returns the stop function.
 */
export async function startNodeStandIn(kc: k8s.KubeConfig, namespace: string): Promise<() => void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let ip = 10;
  const handle = async (pod: k8s.V1Pod) => {
    const name = pod.metadata?.name ?? "";
    if (pod.metadata?.deletionTimestamp) {
      await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
      return;
    }
    if (pod.status?.containerStatuses) return;
    const now = new Date();
    const status: k8s.V1PodStatus = {
      phase: "Running",
      podIP: `198.51.100.${ip++}`,
      conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }],
      containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? "",
        imageID: "",
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: now } },
      })),
    };
    await core
      .patchNamespacedPodStatus(
        { name, namespace, body: { status } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      )
      .catch(() => undefined);
  };
  const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/pods`, () =>
    core.listNamespacedPod({ namespace }),
  );
  informer.on("add", (p) => void handle(p));
  informer.on("update", (p) => void handle(p));
  let stopped = false;
  informer.on("error", () => {
    if (!stopped) setTimeout(() => void (stopped ? undefined : informer.start()), 200);
  });
  await informer.start();
  return () => {
    stopped = true;
    void informer.stop();
  };
}

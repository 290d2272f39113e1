/**
 * Pod create → Running → delete cycles through the Kubernetes API (client-node), against a running daemon:
 * used by the e2e test (a few cycles) and by `bench/node/api-churn.ts` (1,000). Returns latencies; the caller
 * checks the host for leftovers.
 */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";

export interface ChurnResult {
  readonly runningMs: number[];
  readonly goneMs: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What the churn pods' `sleep` is given: a year in seconds, plus this process's pid so that a leak check
 * (`countSleepers`) counts this run's containers only, not those of a test lane running beside it.
 */
export const CHURN_SLEEP = String(365 * 86_400 + process.pid);

function code(error: unknown): number | undefined {
  const e = error as { code?: unknown };
  return typeof e.code === "number" ? e.code : undefined;
}

/** Runs `cycles` cycles in `namespace` (which must exist), each bounded by `timeoutMs`. */
export async function apiChurn(
  kubeconfig: string,
  namespace: string,
  cycles: number,
  timeoutMs = 30_000,
): Promise<ChurnResult> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const runningMs: number[] = [];
  const goneMs: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const name = `churn-${i}`;
    const t0 = performance.now();
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels: { app: "churn" } },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [{ name: "c", image: "busybox", command: ["sleep", CHURN_SLEEP] }],
        },
      },
    });
    for (;;) {
      const pod = await core.readNamespacedPod({ name, namespace });
      if (pod.status?.phase === "Running" && pod.status.containerStatuses?.every((c) => c.ready)) break;
      if (performance.now() - t0 > timeoutMs)
        throw new Error(`pod ${name} not Running after ${timeoutMs} ms`);
      await sleep(10);
    }
    const t1 = performance.now();
    runningMs.push(t1 - t0);
    await core.deleteNamespacedPod({ name, namespace });
    for (;;) {
      try {
        await core.readNamespacedPod({ name, namespace });
      } catch (error) {
        if (code(error) === 404) break;
        throw error;
      }
      if (performance.now() - t1 > timeoutMs) throw new Error(`pod ${name} not gone after ${timeoutMs} ms`);
      await sleep(10);
    }
    goneMs.push(performance.now() - t1);
  }
  return { runningMs, goneMs };
}

/**
 * One watched Kubernetes resource: a client-node informer (list, then watch from the list's
 * resourceVersion; re-list on 410) plus what client-node leaves out: restart after an error with bounded
 * backoff, and a `synced` flag that is true once the first list has landed in the cache.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode, apiErrorMessage } from "../edge/kube-client.ts";

/** `sync`: a list landed in the cache (it may have changed nothing, yet the source may now be synced). */
export type ChangeKind = "add" | "update" | "delete" | "sync";

/** What the controller needs from a watched resource; a fake implements it in unit tests. */
export interface ResourceSource<T extends KubernetesObject> {
  readonly name: string;
  /** True once the initial list is in the cache (and stays true across later watch restarts). */
  readonly synced: boolean;
  list(): readonly T[];
  get(name: string, namespace?: string): T | undefined;
  onChange(listener: (kind: ChangeKind, object: T | undefined) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface InformerSourceOptions<T extends KubernetesObject> {
  /** Names the resource in logs and metrics, e.g. `pods`. */
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  /** The watch path, e.g. `/api/v1/pods`. */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly logger: Logger;
  /** Backoff bounds for restarting a failed list/watch (ms). */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
}

/** Builds a ResourceSource on client-node's informer. */
export function createInformerSource<T extends KubernetesObject>(
  options: InformerSourceOptions<T>,
): ResourceSource<T> {
  const { name, logger } = options;
  const minRetryMs = options.minRetryMs ?? 500;
  const maxRetryMs = options.maxRetryMs ?? 15_000;
  let listed = false;
  let synced = false;
  let stopped = true;
  let retryMs = minRetryMs;
  let retryTimer: NodeJS.Timeout | undefined;
  const listeners: ((kind: ChangeKind, object: T | undefined) => void)[] = [];

  const informer = makeInformer<T>(options.kubeConfig, options.path, async () => {
    const result = await options.list();
    listed = true;
    return result;
  });
  const emit = (kind: ChangeKind) => (object: T) => {
    for (const listener of listeners) listener(kind, object);
  };
  informer.on("add", emit("add"));
  informer.on("update", emit("update"));
  informer.on("delete", emit("delete"));

  const run = async (): Promise<void> => {
    listed = false;
    try {
      await informer.start();
    } catch (error) {
      // The watch request itself can reject (connection refused) without calling the error callbacks.
      if (!stopped) logger.warn({ resource: name, err: error }, "watch failed to start; restarting");
      scheduleRestart();
      return;
    }
    // start() resolves after list + watch; `listed` tells a successful list from an error path.
    if (listed && !stopped) {
      synced = true;
      retryMs = minRetryMs;
      for (const listener of listeners) listener("sync", undefined);
    }
  };
  const scheduleRestart = (): void => {
    if (stopped || retryTimer) return;
    const delay = retryMs;
    retryMs = Math.min(retryMs * 2, maxRetryMs);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (!stopped) void run();
    }, delay);
  };
  informer.on("error", (error: unknown) => {
    if (stopped) return;
    // An API refusal is said in the server's words (e.g. RBAC's "cannot list resource ..."), without the
    // client's stack and headers; anything else keeps its stack.
    const code = apiErrorCode(error);
    logger.warn(
      code === undefined
        ? { resource: name, err: error }
        : { resource: name, code, reason: apiErrorMessage(error) },
      "list/watch failed; restarting",
    );
    scheduleRestart();
  });

  return {
    name,
    get synced() {
      return synced;
    },
    list: () => informer.list(),
    get: (objectName, namespace) => informer.get(objectName, namespace),
    onChange: (listener) => {
      listeners.push(listener);
    },
    start: async () => {
      stopped = false;
      await run();
    },
    stop: async () => {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      await informer.stop();
    },
  };
}

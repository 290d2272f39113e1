/**
 * Keeps the `osm-ts.io/interception-stale` annotation of each pod equal to the controller's verdict, with
 * JSON merge patches (the annotation alone; nothing else of the pod is touched). One patch in flight per
 * pod; a failed patch is retried by the next reconcile.
 */

import { type CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { ANNOTATION_INTERCEPTION_STALE } from "../constants.ts";
import { apiErrorCode } from "../edge/kube-client.ts";

/** Sets (string) or removes (undefined) the annotation on one pod. */
export type PatchStaleAnnotation = (
  namespace: string,
  name: string,
  value: string | undefined,
) => Promise<void>;

/** The client-node implementation: a merge patch of `metadata.annotations`. */
export function kubePatchStaleAnnotation(api: CoreV1Api): PatchStaleAnnotation {
  return async (namespace, name, value) => {
    await api.patchNamespacedPod(
      {
        namespace,
        name,
        body: { metadata: { annotations: { [ANNOTATION_INTERCEPTION_STALE]: value ?? null } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  };
}

export interface StaleAnnotatorResult {
  readonly result: "ok" | "error" | "gone";
}

/** Serialises patches per pod and skips ones already in flight. */
export class StaleAnnotator {
  readonly #patch: PatchStaleAnnotation;
  readonly #logger: Logger;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #onResult: (result: StaleAnnotatorResult["result"]) => void;

  constructor(
    patch: PatchStaleAnnotation,
    logger: Logger,
    onResult: (result: StaleAnnotatorResult["result"]) => void = () => {},
  ) {
    this.#patch = patch;
    this.#logger = logger;
    this.#onResult = onResult;
  }

  /** Ensures the pod's annotation is `desired`, given what the cache shows as `actual`. */
  reconcile(namespace: string, name: string, actual: string | undefined, desired: string | undefined): void {
    if (actual === desired) return;
    const key = `${namespace}/${name}`;
    if (this.#inFlight.has(key)) return;
    const run = this.#patch(namespace, name, desired)
      .then(() => this.#onResult("ok"))
      .catch((error: unknown) => {
        if (apiErrorCode(error) === 404) {
          this.#onResult("gone");
          return;
        }
        this.#onResult("error");
        this.#logger.warn({ pod: key, err: error }, "could not patch the interception-stale annotation");
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, run);
  }

  /** Resolves when every patch started so far has finished. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight.values()]);
  }
}

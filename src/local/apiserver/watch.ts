/**
 * The watch hub: a bounded history of store events (so a watch can start from a recent resourceVersion,
 * as client-go's list-then-watch does) and live fan-out. The history keeps at most `capacity` events and, as
 * kube-apiserver's watch cache (eventFreshDuration), none older than 75 s: each event holds a whole object
 * version, and a count bound alone kept thousands of old pod versions alive (the daemon's RSS grew with
 * churn). A watch from a resourceVersion older than the history (or from before this process started) gets
 * 410 Gone, and the client re-lists. As kube-apiserver's
 * watch cache: a watch from a future resourceVersion is opened and gets the events after it; a read that
 * must be at least that fresh waits up to 3 s, then gets 504 "Too large resource version".
 */
import type { KubeObject, Store, StoreEvent } from "../store/store.ts";
import { ApiError } from "./status.ts";

export interface WatchFilter {
  readonly groupResource: string;
  /** undefined: all namespaces. */
  readonly namespace: string | undefined;
  readonly matches: (object: KubeObject) => boolean;
}

export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: KubeObject;
}

interface Watcher {
  filter: WatchFilter;
  /** Events at or below this resourceVersion are not for this watcher (a watch from the future). */
  after: number;
  send: (event: WatchEvent) => void;
}

/** How long a read waits for the store to reach a future resourceVersion (kube-apiserver's blockTimeout). */
export const FRESHNESS_WAIT_MS = 3000;

export function goneError(requested: number, oldest: number): ApiError {
  return new ApiError(410, "Expired", `too old resource version: ${requested} (${oldest})`);
}

export function tooLargeError(requested: number, current: number): ApiError {
  return new ApiError(
    504,
    "Timeout",
    `Timeout: Too large resource version: ${requested}, current: ${current}`,
    {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
  );
}

/** How long an event stays in the history (kube-apiserver's watch cache: eventFreshDuration). */
export const HISTORY_FRESH_MS = 75_000;

export class WatchHub {
  private readonly history: { event: StoreEvent; at: number }[] = [];
  private readonly capacity: number;
  /** Events with resourceVersion > oldest are all in `history`. */
  private oldest: number;
  private readonly watchers = new Set<Watcher>();
  private readonly unsubscribe: () => void;
  private readonly store: Store;

  private readonly now: () => number;

  constructor(store: Store, capacity = 5000, now: () => number = Date.now) {
    this.store = store;
    this.capacity = capacity;
    this.now = now;
    this.oldest = store.resourceVersion;
    this.unsubscribe = store.subscribe((event) => this.onEvent(event));
  }

  private onEvent(event: StoreEvent): void {
    const now = this.now();
    this.history.push({ event, at: now });
    for (;;) {
      const first = this.history[0];
      if (!first || (this.history.length <= this.capacity && now - first.at <= HISTORY_FRESH_MS)) break;
      this.history.shift();
      this.oldest = first.event.resourceVersion;
    }
    for (const w of this.watchers) {
      if (event.resourceVersion <= w.after) continue;
      const e = translate(event, w.filter);
      if (e) w.send(e);
    }
  }

  /**
   * Starts a watch after `fromResourceVersion` (history replayed first), or, with undefined, from now.
   * Throws 410 Gone when the history no longer reaches back that far. Returns the stop function.
   */
  watch(
    filter: WatchFilter,
    fromResourceVersion: number | undefined,
    send: (event: WatchEvent) => void,
  ): () => void {
    if (fromResourceVersion !== undefined) {
      if (fromResourceVersion < this.oldest) throw goneError(fromResourceVersion, this.oldest);
      for (const { event } of this.history) {
        if (event.resourceVersion <= fromResourceVersion) continue;
        const e = translate(event, filter);
        if (e) send(e);
      }
    }
    const watcher: Watcher = { filter, after: fromResourceVersion ?? 0, send };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  /** Resolves once the store has reached `resourceVersion`; 504 Too large after `FRESHNESS_WAIT_MS`. */
  async waitUntilFresh(resourceVersion: number): Promise<void> {
    if (this.store.resourceVersion >= resourceVersion) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(tooLargeError(resourceVersion, this.store.resourceVersion));
      }, FRESHNESS_WAIT_MS);
      const unsubscribe = this.store.subscribe(() => {
        if (this.store.resourceVersion < resourceVersion) return;
        clearTimeout(timer);
        unsubscribe();
        resolve();
      });
    });
  }

  close(): void {
    this.unsubscribe();
    this.watchers.clear();
  }
}

/**
 * What one store event means to one watcher: an object that stops matching its selectors is DELETED for
 * it, one that starts matching is ADDED (as the real watch cache does).
 */
function translate(event: StoreEvent, filter: WatchFilter): WatchEvent | undefined {
  if (event.groupResource !== filter.groupResource) return undefined;
  if (filter.namespace !== undefined && event.namespace !== filter.namespace) return undefined;
  const now = event.type !== "DELETED" && filter.matches(event.object);
  const before = event.previous !== undefined && filter.matches(event.previous);
  if (event.type === "DELETED") return before ? { type: "DELETED", object: event.object } : undefined;
  if (now && before) return { type: "MODIFIED", object: event.object };
  if (now) return { type: "ADDED", object: event.object };
  if (before) {
    const gone = structuredClone(event.object);
    return { type: "DELETED", object: gone };
  }
  return undefined;
}

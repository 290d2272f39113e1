/**
 * Holds the current sidecar config of every meshed pod, numbers its versions, and wakes long-polls when a
 * pod's config changes. No I/O: the HTTP layer and the informers drive it.
 */
import { SIDECAR_API_VERSION, type SidecarConfig } from "../config/sidecar-api.ts";

/** A config without the fields the hub owns (`apiVersion`, `version`). */
export type SidecarConfigContent = Omit<SidecarConfig, "apiVersion" | "version">;

interface Entry {
  readonly config: SidecarConfig;
  readonly contentKey: string;
}

interface Waiter {
  readonly sinceVersion: number;
  readonly resolve: (config: SidecarConfig | undefined) => void;
}

export interface ConfigHubOptions {
  /** Milliseconds since the epoch; injected for tests. */
  readonly now?: () => number;
}

/**
 * Versions are a hybrid clock, `max(last + 1, now in ms)`: they increase within one controller and also
 * across restarts (a restarted controller starts at the wall clock, above anything it issued before), so a
 * sidecar that remembers `sinceVersion` is never told "nothing newer" by a controller that forgot.
 */
export class ConfigHub {
  readonly #entries = new Map<string, Entry>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #now: () => number;
  #lastVersion = 0;

  constructor(options: ConfigHubOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  #nextVersion(): number {
    this.#lastVersion = Math.max(this.#lastVersion + 1, Math.floor(this.#now()));
    return this.#lastVersion;
  }

  /**
   * Sets a pod's config; returns true when the content changed (a new version was issued). `contentKey`
   * identifies the content (its JSON, or a digest of it): callers setting one content for many pods pass a
   * digest computed once.
   */
  set(podKey: string, content: SidecarConfigContent, contentKey: string = JSON.stringify(content)): boolean {
    const existing = this.#entries.get(podKey);
    if (existing && existing.contentKey === contentKey) return false;
    const config: SidecarConfig = {
      apiVersion: SIDECAR_API_VERSION,
      version: this.#nextVersion(),
      ...content,
    };
    this.#entries.set(podKey, { config, contentKey });
    const waiters = this.#waiters.get(podKey);
    if (waiters) {
      for (const waiter of [...waiters]) {
        if (config.version > waiter.sinceVersion) {
          waiters.delete(waiter);
          waiter.resolve(config);
        }
      }
    }
    return true;
  }

  /** Forgets a pod (deleted); its pending long-polls end with no config. */
  delete(podKey: string): void {
    this.#entries.delete(podKey);
    const waiters = this.#waiters.get(podKey);
    this.#waiters.delete(podKey);
    for (const waiter of waiters ?? []) waiter.resolve(undefined);
  }

  get(podKey: string): SidecarConfig | undefined {
    return this.#entries.get(podKey)?.config;
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Number of long-polls waiting right now. */
  get waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }

  /**
   * Resolves with the pod's config as soon as its version is greater than `sinceVersion` (at once when it
   * already is), or with undefined when `timeoutMs` passes, the signal aborts or the pod is deleted.
   */
  wait(
    podKey: string,
    sinceVersion: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<SidecarConfig | undefined> {
    const current = this.get(podKey);
    if (current && current.version > sinceVersion) return Promise.resolve(current);
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const set = this.#waiters.get(podKey) ?? new Set<Waiter>();
      this.#waiters.set(podKey, set);
      const finish = (config: SidecarConfig | undefined): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.#waiters.get(podKey) === set) this.#waiters.delete(podKey);
        resolve(config);
      };
      const waiter: Waiter = { sinceVersion, resolve: finish };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      set.add(waiter);
    });
  }

  /** Ends every pending long-poll with no config (shutdown). */
  close(): void {
    for (const [key, set] of [...this.#waiters]) {
      this.#waiters.delete(key);
      for (const waiter of set) waiter.resolve(undefined);
    }
  }
}

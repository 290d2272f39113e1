/**
 * The config in force. Accepts only a newer version (monotonic, so a late long-poll answer or a stale file
 * never rolls the sidecar back) and tells subscribers after each change. No I/O.
 */
import type { SidecarConfig } from "../config/sidecar-api.ts";
import { buildRoutingTable, type RoutingTable } from "./decide.ts";

export type ApplyResult =
  | { readonly applied: true; readonly previousVersion: number | undefined }
  | { readonly applied: false; readonly reason: string };

export class ConfigStore {
  #table: RoutingTable | undefined;
  #source = "";
  #appliedAt: Date | undefined;
  readonly #listeners = new Set<(table: RoutingTable) => void>();

  /** The compiled config in force, or undefined before the first one (fail closed). */
  get table(): RoutingTable | undefined {
    return this.#table;
  }

  get version(): number | undefined {
    return this.#table?.config.version;
  }

  /** Where the config in force came from (a file path or control-plane URL) and when it was applied. */
  get provenance(): { source: string; appliedAt: Date | undefined } {
    return { source: this.#source, appliedAt: this.#appliedAt };
  }

  /** Applies `config` when its version is newer than the one in force. */
  apply(config: SidecarConfig, source: string, now: Date = new Date()): ApplyResult {
    const previousVersion = this.version;
    if (previousVersion !== undefined && config.version <= previousVersion) {
      return {
        applied: false,
        reason: `version ${config.version} is not newer than version ${previousVersion} in force`,
      };
    }
    this.#table = buildRoutingTable(config);
    this.#source = source;
    this.#appliedAt = now;
    for (const listener of this.#listeners) listener(this.#table);
    return { applied: true, previousVersion };
  }

  /** Calls `listener` after every applied config; returns the unsubscribe function. */
  subscribe(listener: (table: RoutingTable) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

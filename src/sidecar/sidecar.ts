/**
 * Puts the sidecar together: config store and source, data plane, admin. `startSidecar` resolves once the
 * listeners the config calls for are open; `drain` is the SIGTERM path.
 */
import type { Server } from "node:http";
import type { ForwardedProbe } from "../config/health-probes.ts";
import { ENVOY_ADMIN_PORT, ENVOY_INBOUND_LISTENER_PORT, ENVOY_OUTBOUND_LISTENER_PORT } from "../constants.ts";
import { startAdminServer } from "./admin.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { watchConfigFile, watchControlPlane } from "./config-source.ts";
import { ConfigStore } from "./config-store.ts";
import { DataPlane } from "./data-plane.ts";
import type { Destination } from "./decide.ts";
import type { AccessLog, SidecarLogger } from "./log.ts";
import { createSidecarMetrics, type SidecarMetrics } from "./metrics.ts";
import { originalDestination } from "./native/index.ts";

export type ConfigSourceOption =
  | { readonly kind: "file"; readonly path: string }
  | {
      readonly kind: "control-plane";
      readonly url: string;
      readonly pod: string;
      readonly tokenFile?: string;
      readonly backoff?: BackoffPolicy;
    };

export interface SidecarOptions {
  readonly logger: SidecarLogger;
  /** One line per connection, whatever the log level. */
  readonly accessLog: AccessLog;
  readonly source: ConfigSourceOption;
  readonly adminHost?: string;
  readonly adminPort?: number;
  readonly outboundPort?: number;
  readonly inboundPort?: number;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** `splice` (default): payload relayed by splice(2) in the addon's thread; `js`: Node streams. */
  readonly relayMode?: "js" | "splice";
  /** `native`: the relay threads accept and decide (splice relay only); `js` (default here): Node accepts. */
  readonly acceptMode?: "js" | "native";
  /** Splice relay threads (default 1). */
  readonly relayThreads?: number;
  /** The app's httpGet probes to serve and forward (probe-listeners.ts); none: no probe listener. */
  readonly probes?: readonly ForwardedProbe[];
  /** Replaces SO_ORIGINAL_DST (tests without netfilter). */
  readonly originalDestination?: (socket: import("node:net").Socket, family: 4 | 6) => Destination;
  readonly onFatal: (error: Error) => void;
}

export interface Sidecar {
  readonly store: ConfigStore;
  readonly dataPlane: DataPlane;
  readonly metrics: SidecarMetrics;
  /** Re-reads the config file (file mode; no-op otherwise). */
  reload(): Promise<void>;
  /** Stops accepting, lets connections finish up to `timeoutMs`, stops the config watch and admin. */
  drain(timeoutMs: number): Promise<void>;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_RELAY_MODE: "js" | "splice" = "splice";
/** Envoy's tcp_proxy default idle timeout is 1 hour. */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { logger } = options;
  const metrics = createSidecarMetrics();
  metrics.configVersion.set(-1);
  const store = new ConfigStore();
  const dataPlane = new DataPlane({
    logger,
    accessLog: options.accessLog,
    metrics,
    store,
    outboundPort: options.outboundPort ?? ENVOY_OUTBOUND_LISTENER_PORT,
    inboundPort: options.inboundPort ?? ENVOY_INBOUND_LISTENER_PORT,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    originalDestination: options.originalDestination ?? originalDestination,
    onFatal: options.onFatal,
    relayMode: options.relayMode ?? DEFAULT_RELAY_MODE,
    ...(options.acceptMode === undefined ? {} : { acceptMode: options.acceptMode }),
    ...(options.relayThreads === undefined ? {} : { relayThreads: options.relayThreads }),
  });
  // Listeners first (outbound stays closed: no config yet, fail closed), then the config that opens them.
  await dataPlane.start();
  const probes = options.probes ?? [];
  // Probes need no config: they are forwarded from the start, as Envoy's bootstrap listeners are.
  const probeListeners =
    probes.length === 0
      ? undefined
      : await (await import("./probe-listeners.ts")).startProbeListeners({
          probes,
          logger,
          connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
          idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        });
  const admin: Server = await startAdminServer({
    host: options.adminHost ?? "127.0.0.1",
    port: options.adminPort ?? ENVOY_ADMIN_PORT,
    store,
    dataPlane,
    metrics,
  });
  let stopSource: () => void = () => {};
  let reload = async (): Promise<void> => {};
  try {
    if (options.source.kind === "file") {
      const watcher = await watchConfigFile(options.source.path, store, logger, metrics);
      stopSource = watcher.stop;
      reload = watcher.reload;
    } else {
      stopSource = watchControlPlane({
        url: options.source.url,
        pod: options.source.pod,
        ...(options.source.tokenFile ? { tokenFile: options.source.tokenFile } : {}),
        ...(options.source.backoff ? { backoff: options.source.backoff } : {}),
        store,
        logger,
        metrics,
      }).stop;
    }
  } catch (error) {
    // A bad --config file: release the ports before reporting, so the process can exit.
    await dataPlane.drain(0);
    probeListeners?.close();
    await new Promise((resolve) => admin.close(resolve));
    throw error;
  }
  await dataPlane.settled();
  return {
    store,
    dataPlane,
    metrics,
    reload,
    async drain(timeoutMs: number): Promise<void> {
      stopSource();
      probeListeners?.close();
      await dataPlane.drain(timeoutMs);
      admin.closeAllConnections();
      await new Promise((resolve) => admin.close(resolve));
    },
  };
}

/**
 * Where the config comes from: a file (standalone use, tests) or the controller's watch API (HTTP/JSON
 * long-poll, see src/config/sidecar-api.ts). Both validate with the one schema and hand the result to the
 * ConfigStore, which keeps the last good config whatever happens here.
 */
import { readFile as readFileCallback, watch } from "node:fs";
import type * as Http from "node:http";
import { createRequire } from "node:module";
import { basename, dirname } from "node:path";
import {
  parseSidecarConfig,
  SIDECAR_CONFIG_PATH,
  SIDECAR_LONG_POLL_SECONDS,
  type SidecarConfig,
} from "../config/sidecar-api.ts";
import { ConfigError, ErrorCode, MeshError } from "../errors.ts";
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
import type { ConfigStore } from "./config-store.ts";
import type { SidecarLogger } from "./log.ts";
import type { SidecarMetrics } from "./metrics.ts";

/** fs.readFile as a promise: node:fs/promises costs every pod ~1 MB of RSS (it loads readline, streams). */
function readFile(path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    readFileCallback(path, "utf8", (error, text) => (error ? reject(error) : resolve(text))),
  );
}

/** JSON first; the YAML parser (~10 MB of idle RSS) is loaded only for a file that is not JSON. */
async function parseJsonOrYaml(text: string): Promise<unknown> {
  try {
    return JSON.parse(text);
  } catch {
    const { parse } = await import("yaml");
    return parse(text);
  }
}

/** Reads and validates a config file (JSON or YAML). Throws ConfigError naming the file and each field. */
export async function readConfigFile(path: string): Promise<SidecarConfig> {
  let text: string;
  try {
    text = await readFile(path);
  } catch (cause) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `--config: cannot read ${path}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  let document: unknown;
  try {
    document = await parseJsonOrYaml(text);
  } catch (cause) {
    throw new ConfigError([
      { path, value: undefined, reason: `is not JSON or YAML: ${(cause as Error).message}` },
    ]);
  }
  const parsed = parseSidecarConfig(document);
  if (!parsed.ok) {
    throw new ConfigError(
      parsed.problems.map((problem) => ({
        path: `${path}: ${problem.path}`,
        value: problem.value,
        reason: problem.message,
      })),
    );
  }
  return parsed.config;
}

function recordApply(
  store: ConfigStore,
  config: SidecarConfig,
  source: string,
  logger: SidecarLogger,
  metrics: SidecarMetrics,
): void {
  const result = store.apply(config, source);
  if (result.applied) {
    metrics.configUpdates.inc({ result: "applied" });
    metrics.configVersion.set(config.version);
    logger.info(
      {
        source,
        version: config.version,
        previousVersion: result.previousVersion,
        enableEgress: config.enableEgress,
        meshEndpoints: config.meshEndpoints.length,
      },
      "config applied",
    );
  } else {
    metrics.configUpdates.inc({ result: "stale" });
    logger.warn({ source, version: config.version, reason: result.reason }, "config ignored");
  }
}

/**
 * Loads `path` once (throwing on a bad file: a standalone sidecar must not start on a typo), then re-reads
 * it whenever it changes (inotify on the directory, so editors' atomic renames are seen). A bad edit is
 * logged and the last good config stays. Returns a stop function.
 */
export async function watchConfigFile(
  path: string,
  store: ConfigStore,
  logger: SidecarLogger,
  metrics: SidecarMetrics,
): Promise<{ reload: () => Promise<void>; stop: () => void }> {
  recordApply(store, await readConfigFile(path), path, logger, metrics);
  let timer: NodeJS.Timeout | undefined;
  const reload = async (): Promise<void> => {
    try {
      recordApply(store, await readConfigFile(path), path, logger, metrics);
    } catch (error) {
      metrics.configUpdates.inc({ result: "invalid" });
      logger.error({ source: path, err: error }, "config file rejected; keeping the config in force");
    }
  };
  const watcher = watch(dirname(path), (_event, name) => {
    if (name !== null && name !== basename(path)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), 20); // editors write in several steps
  });
  return {
    reload,
    stop: () => {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

export interface ControlPlaneWatchOptions {
  /** Base URL of the controller, e.g. `http://127.0.0.1:15128`. */
  readonly url: string;
  /** `<namespace>/<name>` of this pod. */
  readonly pod: string;
  /**
   * The projected token file (`src/config/sidecar-token.ts`): read before every request, so a token the
   * kubelet renewed is sent at once. Missing or empty: no Authorization header (the controller answers 401).
   */
  readonly tokenFile?: string;
  readonly store: ConfigStore;
  readonly logger: SidecarLogger;
  readonly metrics: SidecarMetrics;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  readonly longPollSeconds?: number;
}

/** The token in `file`, or "" when there is none yet (the node writes it before the containers start). */
async function readToken(file: string): Promise<string> {
  try {
    return (await readFile(file)).trim();
  } catch {
    return "";
  }
}

/** The long-poll URL for the next request. */
export function buildWatchUrl(
  base: string,
  pod: string,
  sinceVersion: number | undefined,
  timeoutSeconds: number,
): URL {
  const url = new URL(SIDECAR_CONFIG_PATH, base);
  url.searchParams.set("pod", pod);
  if (sinceVersion !== undefined) url.searchParams.set("sinceVersion", String(sinceVersion));
  url.searchParams.set("timeoutSeconds", String(timeoutSeconds));
  return url;
}

/** A GET's status and body (the watch's documents are small). */
interface GetResult {
  readonly status: number;
  readonly body: string;
}

/**
 * GET with node:http (or node:https), loaded with require(): fetch (undici) and an ES import of node:http
 * each cost every pod ~13 MB of RSS, require("node:http") ~2 MB.
 */
function httpGet(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<GetResult> {
  const client = createRequire(import.meta.url)(
    url.protocol === "https:" ? "node:https" : "node:http",
  ) as typeof Http;
  return new Promise((resolve, reject) => {
    const request = client.get(url, { headers, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      response.on("error", reject);
    });
    request.on("error", reject);
  });
}

/**
 * Watches the controller until stopped: long-poll for a newer version, apply it, ask again. Any failure
 * (network, HTTP status, invalid document) keeps the config in force and retries after a jittered backoff.
 */
export function watchControlPlane(options: ControlPlaneWatchOptions): { stop: () => void } {
  const { store, logger, metrics } = options;
  const policy = options.backoff ?? DEFAULT_BACKOFF;
  const random = options.random ?? Math.random;
  const longPoll = options.longPollSeconds ?? SIDECAR_LONG_POLL_SECONDS;
  const headers = async (): Promise<Record<string, string>> => {
    const token = options.tokenFile ? await readToken(options.tokenFile) : "";
    return { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
  };
  const abort = new AbortController();
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      abort.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });

  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!abort.signal.aborted) {
      const url = buildWatchUrl(options.url, options.pod, store.version, longPoll);
      let problem: string | undefined;
      try {
        // The request may be held up to longPoll seconds; allow some slack before calling it dead.
        const signal = AbortSignal.any([abort.signal, AbortSignal.timeout((longPoll + 10) * 1000)]);
        const response = await httpGet(url, await headers(), signal);
        if (response.status === 200) {
          const parsed = parseSidecarConfig(JSON.parse(response.body));
          if (parsed.ok) {
            recordApply(store, parsed.config, options.url, logger, metrics);
          } else {
            metrics.configUpdates.inc({ result: "invalid" });
            problem = `invalid config: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`;
          }
        } else if (response.status !== 204) {
          problem = `HTTP ${response.status}`;
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        problem = (error as Error).cause ? String((error as Error).cause) : String(error);
      }
      if (problem === undefined) {
        failures = 0;
        continue;
      }
      const delay = backoffDelay(failures, policy, random);
      failures += 1;
      logger.warn(
        { controlPlane: options.url, problem, retryInMs: delay, versionInForce: store.version ?? null },
        "config watch failed; keeping the config in force",
      );
      await sleep(delay);
    }
  };
  void loop();
  return { stop: () => abort.abort() };
}

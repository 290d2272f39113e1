import { type Command, InvalidArgumentError, Option } from "commander";
import { pino } from "pino";
import { SIDECAR_TOKEN_FILE } from "../../config/sidecar-token.ts";
import {
  ENVOY_ADMIN_PORT,
  ENVOY_INBOUND_LISTENER_PORT,
  ENVOY_OUTBOUND_LISTENER_PORT,
  ENVOY_UID,
} from "../../constants.ts";
import { ErrorCode, MeshError } from "../../errors.ts";
import { DEFAULT_BACKOFF } from "../../sidecar/backoff.ts";
import { releaseStartupMemory } from "../../sidecar/native/index.ts";
import { type ConfigSourceOption, DEFAULT_RELAY_MODE, startSidecar } from "../../sidecar/sidecar.ts";

interface RunOptions {
  config?: string;
  controlPlane?: string;
  controller?: string;
  pod?: string;
  tokenFile: string;
  adminPort: number;
  outboundPort: number;
  inboundPort: number;
  connectTimeout: number;
  idleTimeout: number;
  drainTimeout: number;
  logLevel: string;
  allowAnyUid?: boolean;
  reconnectMaxDelay: number;
  relay: "js" | "splice";
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}

function resolveSource(options: RunOptions): ConfigSourceOption {
  if (options.controller !== undefined && options.controlPlane !== undefined) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "give one of --control-plane or --controller (the same flag)",
    );
  }
  options.controlPlane ??= options.controller;
  if ((options.config === undefined) === (options.controlPlane === undefined)) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "give exactly one of --config FILE or --control-plane URL",
    );
  }
  if (options.config !== undefined) return { kind: "file", path: options.config };
  const url = options.controlPlane!;
  try {
    new URL(url);
  } catch {
    throw new MeshError(ErrorCode.InvalidArgument, `--control-plane: "${url}" is not a URL`, {
      hint: "e.g. --control-plane http://osm-controller.osm-system:15128",
    });
  }
  // The downward API sets these in a PodSpec; a flag wins.
  const envPod =
    process.env["POD_NAMESPACE"] && process.env["POD_NAME"]
      ? `${process.env["POD_NAMESPACE"]}/${process.env["POD_NAME"]}`
      : undefined;
  const pod = options.pod ?? envPod;
  if (pod === undefined || !/^[^/\s]+\/[^/\s]+$/.test(pod)) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `--pod: ${pod === undefined ? "missing" : `"${pod}" is not <namespace>/<name>`} (needed with --control-plane)`,
      { hint: "pass --pod NAMESPACE/NAME, or set POD_NAMESPACE and POD_NAME" },
    );
  }
  return {
    kind: "control-plane",
    url,
    pod,
    backoff: {
      baseMs: Math.min(DEFAULT_BACKOFF.baseMs, options.reconnectMaxDelay),
      maxMs: options.reconnectMaxDelay,
    },
    tokenFile: options.tokenFile,
  };
}

/**
 * Log lines reach stdout in batches, at most LOG_BATCH_MS after the first line of a batch: one asynchronous
 * write (a libuv thread-pool job and two thread wake-ups) per batch rather than per connection, which cost
 * ~50 µs of CPU per connection, a third of the proxy's (bench/README.md). Envoy's access log also flushes on
 * an interval (1 s by default).
 */
export const LOG_BATCH_MS = 10;

interface BatchedLog {
  /** pino's stream. */
  write(line: string): boolean;
  /** Writes the batch now; resolves once everything handed over so far is written (or the log broke). */
  flush(): Promise<void>;
}

function batchedLog(destination: ReturnType<typeof pino.destination>, isBroken: () => boolean): BatchedLog {
  let lines: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let unwritten = 0; // bytes handed to the destination and not yet reported written
  let waiters: Array<() => void> = [];
  const settle = (): void => {
    if (unwritten > 0 && !isBroken()) return;
    const done = waiters;
    waiters = [];
    for (const resolve of done) resolve();
  };
  destination.on("write", (bytes: number) => {
    unwritten -= bytes;
    settle();
  });
  destination.on("error", () => setImmediate(settle));
  const writeBatch = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const text = lines.join("");
    lines = [];
    unwritten += Buffer.byteLength(text);
    destination.write(text);
  };
  return {
    write(line: string): boolean {
      lines.push(line);
      timer ??= setTimeout(writeBatch, LOG_BATCH_MS);
      return true;
    },
    flush(): Promise<void> {
      writeBatch();
      return new Promise((resolve) => {
        waiters.push(resolve);
        settle();
      });
    },
  };
}

async function run(options: RunOptions): Promise<void> {
  const source = resolveSource(options);
  const uid = process.getuid?.();
  if (!options.allowAnyUid && uid !== ENVOY_UID) {
    // The interception rules exempt only uid 1500's traffic: as any other uid, the sidecar's own upstream
    // connections would be redirected back into it.
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `osm sidecar run must run as uid ${ENVOY_UID}, not ${uid}`,
      {
        hint: `runAsUser: ${ENVOY_UID} in the PodSpec; --allow-any-uid only where no interception rules apply`,
      },
    );
  }
  const destination = pino.destination({ dest: 1, sync: false });
  // The log must never take the proxy down: a closed stdout (EPIPE) stops logging, nothing else. (Not
  // flushSync: sonic-boom retries a failed synchronous write forever.)
  let logBroken = false;
  destination.on("error", () => {
    logBroken = true;
  });
  const log = batchedLog(destination, () => logBroken);
  const logger = pino(
    {
      level: options.logLevel,
      base: { component: "osm-sidecar", ...(source.kind === "control-plane" ? { pod: source.pod } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    log,
  );
  const flushLog = (): Promise<void> =>
    new Promise((resolve) => {
      if (logBroken) return resolve();
      const timer = setTimeout(resolve, 1000);
      void log.flush().then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  const exitNow = (code: number): void => {
    void flushLog().then(() => process.exit(code));
  };
  const sidecar = await startSidecar({
    logger,
    source,
    adminPort: options.adminPort,
    outboundPort: options.outboundPort,
    inboundPort: options.inboundPort,
    connectTimeoutMs: options.connectTimeout,
    idleTimeoutMs: options.idleTimeout * 1000,
    relayMode: options.relay,
    onFatal: (error) => {
      logger.fatal({ err: error }, "sidecar failed");
      process.stderr.write(`Error: ${error.message}\n`);
      exitNow(1);
    },
  });
  const memory = releaseStartupMemory();
  logger.info(
    {
      uid,
      rssMb: Math.round(memory.after / 1e5) / 10,
      rssBeforeTrimMb: Math.round(memory.before / 1e5) / 10,
      adminPort: options.adminPort,
      outboundOpen: sidecar.dataPlane.outboundOpen,
      version: sidecar.store.version,
    },
    "sidecar started",
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, active: sidecar.dataPlane.activeConnections }, "draining");
      void sidecar.drain(options.drainTimeout * 1000).then(() => {
        logger.info("drained; exiting");
        void flushLog().then(resolve);
      });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    process.on("SIGHUP", () => void sidecar.reload());
  });
}

/** Registers `osm sidecar run`. */
export function registerSidecar(program: Command): void {
  const sidecar = program.command("sidecar").description("the transparent proxy injected next to each app");
  sidecar
    .command("run")
    .description("run the sidecar proxy (as uid 1500) in this network namespace")
    .option(
      "--config <file>",
      "config file (JSON or YAML, osm.sidecar/v1); reloaded when it changes or on SIGHUP",
    )
    .option(
      "--control-plane <url>",
      "controller base URL to watch for config (HTTP/JSON long-poll; bearer token from --token-file)",
    )
    .option(
      "--token-file <file>",
      "the pod's projected service-account token for the controller, re-read before every request",
      SIDECAR_TOKEN_FILE,
    )
    .option("--controller <url>", "same as --control-plane (the injector's spelling)")
    .option("--pod <namespace/name>", "this pod, for --control-plane (default: $POD_NAMESPACE/$POD_NAME)")
    .option("--admin-port <port>", "admin port on 127.0.0.1", integer(1, 65535), ENVOY_ADMIN_PORT)
    .option(
      "--outbound-port <port>",
      "outbound listener port",
      integer(1, 65535),
      ENVOY_OUTBOUND_LISTENER_PORT,
    )
    .option("--inbound-port <port>", "inbound listener port", integer(1, 65535), ENVOY_INBOUND_LISTENER_PORT)
    .option(
      "--connect-timeout <ms>",
      "upstream connect timeout; the client is reset after it",
      integer(1, 600_000),
      5000,
    )
    .option(
      "--idle-timeout <seconds>",
      "reset a connection idle this long (0 = never)",
      integer(0, 86_400 * 7),
      3600,
    )
    .option(
      "--drain-timeout <seconds>",
      "on SIGTERM, how long open connections may finish",
      integer(0, 3600),
      10,
    )
    .option(
      "--reconnect-max-delay <ms>",
      "longest wait between controller reconnects (jittered exponential backoff)",
      integer(100, 600_000),
      DEFAULT_BACKOFF.maxMs,
    )
    .addOption(
      new Option(
        "--relay <mode>",
        "how bytes are relayed: splice (kernel splice(2) in the addon) or js (streams)",
      )
        .choices(["splice", "js"])
        .default(DEFAULT_RELAY_MODE),
    )
    .option("--log-level <level>", "pino level: fatal|error|warn|info|debug", "info")
    .option("--allow-any-uid", "do not insist on uid 1500 (only where no interception rules apply)")
    .action(run);
}

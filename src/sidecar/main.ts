/**
 * `osm sidecar run`: the sidecar process. Its own entry point (no CLI framework, no schema library, no pino:
 * each costs every pod megabytes of RSS), reached from `osm` (src/cli/main.ts hands it the words after
 * `sidecar`) or, as a pod runs it, from the prebuilt bundle (`bin.ts` → build/bundle/sidecar/main.cjs, see
 * README.md). Returns the exit code; prints errors as the osm CLI does.
 */
import { availableParallelism } from "node:os";
import { ENVOY_UID } from "../constants.ts";
import { ErrorCode, isMeshError, MeshError } from "../errors.ts";
import { MAX_RELAY_THREADS, parseRunArgs, type RunOptions, USAGE } from "./args.ts";
import { DEFAULT_BACKOFF } from "./backoff.ts";
import { createJsonLog } from "./log.ts";
import { releaseStartupMemory } from "./native/index.ts";
import { type ConfigSourceOption, startSidecar } from "./sidecar.ts";

function resolveSource(options: RunOptions): ConfigSourceOption {
  if ((options.config === undefined) === (options.controlPlane === undefined)) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "give exactly one of --config FILE or --control-plane URL",
    );
  }
  if (options.config !== undefined) return { kind: "file", path: options.config };
  const url = options.controlPlane!;
  if (!URL.canParse(url)) {
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

async function run(options: RunOptions): Promise<number> {
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
  const logger = createJsonLog({
    level: options.logLevel,
    accessLog: options.accessLog,
    base: { component: "osm-sidecar", ...(source.kind === "control-plane" ? { pod: source.pod } : {}) },
  });
  let exitCode = 0;
  let exit: (() => void) | undefined;
  const exited = new Promise<void>((resolve) => {
    exit = resolve;
  });
  const sidecar = await startSidecar({
    logger,
    accessLog: logger,
    source,
    adminPort: options.adminPort,
    outboundPort: options.outboundPort,
    inboundPort: options.inboundPort,
    connectTimeoutMs: options.connectTimeout,
    idleTimeoutMs: options.idleTimeout * 1000,
    relayMode: options.relay,
    acceptMode: options.accept,
    relayThreads: options.relayThreads ?? Math.min(availableParallelism(), MAX_RELAY_THREADS),
    probes: options.probes,
    onFatal: (error) => {
      logger.fatal({ err: error }, "sidecar failed");
      process.stderr.write(`Error: ${error.message}\n`);
      exitCode = 1;
      void logger.flush(1000).then(() => process.exit(1));
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
      entry: import.meta.url.endsWith(".cjs") ? "bundle" : "source",
      nodeFlags: process.execArgv,
    },
    "sidecar started",
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, active: sidecar.dataPlane.activeConnections }, "draining");
    void sidecar.drain(options.drainTimeout * 1000).then(() => {
      logger.info({}, "drained; exiting");
      void logger.flush(1000).then(exit);
    });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.on("SIGHUP", () => void sidecar.reload());
  await exited;
  return exitCode;
}

/** `osm sidecar <words>`: only `run` (and help). Returns the exit code. */
export async function sidecarMain(words: readonly string[]): Promise<number> {
  try {
    if (words[0] !== "run") {
      const help = words.length === 0 || words[0] === "--help" || words[0] === "-h" || words[0] === "help";
      (help ? process.stdout : process.stderr).write(
        `Usage: osm sidecar run [options]\n\nthe transparent proxy injected next to each app\n${help ? "" : `unknown command "${words[0]}"\n`}`,
      );
      return help ? 0 : 1;
    }
    const parsed = parseRunArgs(words.slice(1));
    if (parsed.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    return await run(parsed.options);
  } catch (error) {
    if (!isMeshError(error)) throw error;
    process.stderr.write(`Error: ${error.message}\n`);
    if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
    return 1;
  }
}

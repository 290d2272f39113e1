/**
 * What `osm mesh up | down | status` do, as functions (the CLI only parses flags and prints): start the
 * daemon detached and wait for its health endpoint, stop it and sweep the host clean, report its state.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { ErrorCode, MeshError } from "../../errors.ts";
import { removeKubeconfigContext } from "../apiserver/kubeconfig.ts";
import { stopLeftoverComponents } from "../kubernetes/control-plane.ts";
import { DEFAULT_PATH } from "../node/container-launch.ts";
import { checkHostPrerequisites } from "../node/prerequisites.ts";
import type { ExternalHost } from "../node/runtime.ts";
import { NodeRuntime } from "../node/runtime.ts";
import { assertPortFree } from "../port-check.ts";
import { otherOwner, releaseBridge } from "./bridge-claim.ts";
import { buildDaemonConfig, type DaemonConfig, statePaths } from "./config.ts";
import type { Health } from "./daemon.ts";
import { readableBinDir, removeMirror } from "./readable-install.ts";

/** This checkout: what containers run `osm` from (directly, or through a readable mirror). */
const CHECKOUT_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const DAEMON_MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/** One request to the daemon's control socket; undefined when nothing answers. */
export function callDaemon(
  stateDir: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<{ status: number; body: unknown } | undefined> {
  const socketPath = statePaths(stateDir).socket;
  if (!existsSync(socketPath)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const req = request(
      { socketPath, path, method, timeout: timeoutMs, headers: { "Content-Type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) });
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

export async function daemonHealth(stateDir: string): Promise<Health | undefined> {
  const r = await callDaemon(stateDir, "GET", "/healthz");
  return r?.status === 200 ? (r.body as Health) : undefined;
}

function pidOf(stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(statePaths(stateDir).pidfile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` runs; a zombie (exited, not yet reaped by whoever adopted it) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function readConfig(stateDir: string): DaemonConfig | undefined {
  try {
    return JSON.parse(readFileSync(statePaths(stateDir).config, "utf8")) as DaemonConfig;
  } catch {
    return undefined;
  }
}

/**
 * The end of the daemon's log as a person reads it: the plain lines its main writes on a failed start (the
 * error and its hint), not the JSON records that carry the same error with a stack.
 */
function logTail(stateDir: string, lines = 8): string {
  try {
    return readFileSync(statePaths(stateDir).log, "utf8")
      .trimEnd()
      .split("\n")
      .filter((line) => !line.startsWith("{"))
      .slice(-lines)
      .join("\n");
  } catch {
    return "";
  }
}

export interface UpResult {
  readonly alreadyRunning: boolean;
  readonly health: Health;
  readonly logFile: string;
}

/** `osm mesh up`: starts the daemon (idempotent) and waits until its health endpoint answers. */
export async function meshUp(
  options: Partial<DaemonConfig> & { stateDir: string; timeoutMs?: number },
): Promise<UpResult> {
  const requested = buildDaemonConfig(options);
  const paths = statePaths(requested.stateDir);
  await checkHostPrerequisites();
  const running = await daemonHealth(requested.stateDir);
  if (running) return { alreadyRunning: true, health: running, logFile: paths.log };
  const stale = pidOf(requested.stateDir);
  if (stale !== undefined && alive(stale)) {
    throw new MeshError(
      ErrorCode.Unavailable,
      `a daemon (pid ${stale}) holds ${requested.stateDir} but does not answer its health endpoint`,
      {
        hint: "run `osm mesh down` first",
      },
    );
  }
  const owner = otherOwner(requested.network.bridge, requested.stateDir);
  if (owner) {
    throw new MeshError(
      ErrorCode.Conflict,
      `bridge ${requested.network.bridge} is in use by the osm-local daemon of ${owner.stateDir} (pid ${owner.pid})`,
      {
        hint: `stop it with \`osm mesh down --state-dir ${owner.stateDir}\`, or use another --bridge and --name-prefix`,
      },
    );
  }
  // The real kube-apiserver listens on the pod bridge, which the daemon makes: it checks its ports there.
  if (requested.engine === "embedded")
    await assertPortFree(
      requested.host,
      requested.port,
      "the API server",
      "stop what uses it, or choose another port with --port",
    );
  // Pods run our code as non-root users: give them a checkout they can read (a mirror if this one is not).
  const config: DaemonConfig =
    options.containerPath === undefined
      ? {
          ...requested,
          containerPath: `${readableBinDir(CHECKOUT_ROOT, requested.stateDir)}:${DEFAULT_PATH}`,
        }
      : requested;
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(paths.config, JSON.stringify(config, null, 2));
  const logFd = openSync(paths.log, "a", 0o600);
  const child = spawn(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", DAEMON_MAIN, config.stateDir],
    {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: { ...process.env },
    },
  );
  closeSync(logFd);
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  // The real control plane needs etcd, kube-apiserver and the controller manager up before the node starts.
  const deadline = Date.now() + (options.timeoutMs ?? (config.engine === "kubernetes" ? 180_000 : 30_000));
  while (Date.now() < deadline) {
    const health = await daemonHealth(config.stateDir);
    if (health) return { alreadyRunning: false, health, logFile: paths.log };
    if (exited !== undefined) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (exited === undefined && child.pid) process.kill(child.pid, "SIGTERM");
  throw new MeshError(
    ErrorCode.Unavailable,
    `the osm-local daemon did not start:\n${logTail(config.stateDir)}`,
    {
      hint: `see ${paths.log}`,
    },
  );
}

export interface DownResult {
  readonly stoppedPid: number | undefined;
  readonly purged: boolean;
  /** The state directory holds no daemon config: nothing was touched. */
  readonly nothingThere?: boolean;
}

/**
 * `osm mesh down`: asks the daemon to stop (it stops pods and removes the bridge), waits for it, then sweeps
 * the host with the same config (netns, veths, processes, routes, bridge) in case the daemon was dead, and
 * removes the kubeconfig context. `purge` also deletes the state directory. Idempotent.
 */
export async function meshDown(options: {
  stateDir: string;
  purge: boolean;
  kubeconfig?: string;
  timeoutMs?: number;
}): Promise<DownResult> {
  if (process.getuid?.() !== 0) {
    throw new MeshError(ErrorCode.NotRoot, "osm mesh down must run as root (it removes network namespaces)", {
      hint: "run with sudo",
    });
  }
  const config = readConfig(options.stateDir);
  // No config: `up` never ran with this state directory (or it was purged). Sweeping by name prefix now could
  // hit another daemon's pods, so there is nothing to do.
  if (!config) return { stoppedPid: undefined, purged: options.purge, nothingThere: true };
  const pid = pidOf(options.stateDir);
  const timeoutMs = options.timeoutMs ?? (config.shutdownGraceSeconds + 30) * 1000;
  let stoppedPid: number | undefined;
  if (pid !== undefined && alive(pid)) {
    const answered = await callDaemon(options.stateDir, "POST", "/shutdown", { purge: options.purge });
    if (!answered) process.kill(pid, "SIGTERM");
    const deadline = Date.now() + timeoutMs;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) process.kill(pid, "SIGKILL");
    stoppedPid = pid;
  }
  // The sweep: what a dead daemon left (or nothing, after a clean stop).
  const runtime = new NodeRuntime({
    stateDir: statePaths(options.stateDir).node,
    network: config.network,
    nodeName: "osm-local",
    logger: pino({ level: "silent" }),
  });
  await runtime.shutdown({ graceSeconds: 0, removeBridge: true });
  if (config.kubernetes)
    await stopLeftoverComponents(statePaths(options.stateDir).kubernetes, config.kubernetes);
  removeKubeconfigContext(options.kubeconfig ?? config.kubeconfig, config.context);
  releaseBridge(config.network.bridge, options.stateDir);
  rmSync(statePaths(options.stateDir).socket, { force: true });
  rmSync(statePaths(options.stateDir).pidfile, { force: true });
  if (options.purge) {
    rmSync(options.stateDir, { recursive: true, force: true });
    removeMirror(options.stateDir);
  }
  return { stoppedPid, purged: options.purge };
}

export interface StatusResult {
  readonly running: boolean;
  readonly pid: number | undefined;
  readonly health: Health | undefined;
  readonly stateDir: string;
}

/** `osm mesh status`. */
export async function meshStatus(stateDir: string): Promise<StatusResult> {
  const health = await daemonHealth(stateDir);
  const pid = health?.pid ?? pidOf(stateDir);
  return {
    running: health !== undefined,
    pid: pid !== undefined && alive(pid) ? pid : undefined,
    health,
    stateDir,
  };
}

function requireDaemon<T>(r: { status: number; body: unknown } | undefined, stateDir: string): T {
  if (!r)
    throw new MeshError(ErrorCode.Unavailable, `no osm-local daemon answers in ${stateDir}`, {
      hint: "run `osm mesh up`",
    });
  if (r.status !== 200)
    throw new MeshError(
      ErrorCode.InvalidArgument,
      (r.body as { error?: string }).error ?? `daemon answered ${r.status}`,
    );
  return r.body as T;
}

/** `osm mesh external-host add`: a non-mesh host on the bridge answering on `addresses` (e.g. 203.0.113.10/32). */
export async function addExternalHost(
  stateDir: string,
  name: string,
  addresses: readonly string[],
  hostnames: readonly string[] = [],
): Promise<ExternalHost> {
  return requireDaemon<ExternalHost>(
    await callDaemon(stateDir, "POST", "/external-hosts", { name, addresses, hostnames }, 30_000),
    stateDir,
  );
}

export async function removeExternalHost(stateDir: string, name: string): Promise<void> {
  requireDaemon(
    await callDaemon(stateDir, "DELETE", `/external-hosts/${encodeURIComponent(name)}`, undefined, 30_000),
    stateDir,
  );
}

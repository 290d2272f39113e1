/**
 * Runs the real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) as
 * child processes of the daemon: creates its identities, starts each component in order and waits until it
 * serves, records every pid so a later `osm mesh down` can stop what a dead daemon left, and stops them in
 * reverse order. Each component logs to `<root>/logs/<name>.log`; a start failure quotes that log.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import type { Logger } from "pino";
import { ErrorCode, MeshError } from "../../errors.ts";
import { cidrRange, formatIp, parseCidr } from "../../net/index.ts";
import { writeKubeconfig } from "../apiserver/kubeconfig.ts";
import { assertPortFree } from "../port-check.ts";
import { type Component, type ComponentName, controlPlaneComponents } from "./components.ts";
import { type ControlPlanePaths, type ControlPlaneSettings, controlPlanePaths } from "./layout.ts";
import { type ControlPlanePki, ensureControlPlanePki } from "./pki.ts";

export interface RunningControlPlane {
  readonly apiUrl: string;
  readonly pki: ControlPlanePki;
  /** kube-apiserver's `/version` gitVersion, e.g. v1.36.3. */
  readonly version: string;
  /** Each component's pid, or why it is not running. */
  components(): Record<ComponentName, string>;
  stop(): Promise<void>;
}

const BUILD_HINT =
  "build them with `bash scripts/kube-binaries` (the first build takes about 10 minutes; later runs reuse the cache)";

/** The first address of the Service range: kube-apiserver gives it to the `kubernetes` Service. */
export function kubernetesServiceIp(serviceCidr: string): string {
  const cidr = parseCidr(serviceCidr);
  return formatIp(cidr.family, cidrRange(cidr).first + 1n);
}

function assertBinaries(settings: ControlPlaneSettings, components: readonly Component[]): void {
  const missing = components.filter((c) => !existsSync(c.binary)).map((c) => c.name);
  if (missing.length > 0) {
    throw new MeshError(
      ErrorCode.MissingTool,
      `the real Kubernetes control plane is not built: ${missing.join(", ")} missing in ${settings.binDir}`,
      { hint: BUILD_HINT },
    );
  }
}

/** A JSON log record (etcd's) as one readable line: `fatal: <msg>: <error>`; other lines as they are. */
function readableLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const record = JSON.parse(line) as { level?: string; msg?: string; error?: string };
    return `${record.level ?? "log"}: ${record.msg ?? ""}${record.error ? `: ${record.error}` : ""}`;
  } catch {
    return line;
  }
}

function logTail(path: string, lines = 12): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).map(readableLogLine).join("\n");
  } catch {
    return "(no log)";
  }
}

/** True while `pid` runs the binary at `binary` (a reused pid runs something else). */
function runsBinary(pid: number, binary: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === binary;
  } catch {
    return false;
  }
}

/**
 * Stops control-plane processes recorded under `root` that still run (a daemon killed with SIGKILL leaves
 * them). Returns the names of those it stopped.
 */
export async function stopLeftoverComponents(
  root: string,
  settings: Pick<ControlPlaneSettings, "binDir">,
): Promise<string[]> {
  const paths = controlPlanePaths(root);
  const stopped: string[] = [];
  for (const name of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) {
    const pidfile = paths.pidfile(name);
    if (!existsSync(pidfile)) continue;
    const pid = Number(readFileSync(pidfile, "utf8").trim());
    const binary = `${settings.binDir}/${name}`;
    if (Number.isInteger(pid) && pid > 0 && runsBinary(pid, binary)) {
      await terminate(pid, () => runsBinary(pid, binary));
      stopped.push(name);
    }
    rmSync(pidfile, { force: true });
  }
  return stopped;
}

async function terminate(pid: number, running: () => boolean, graceMs = 10_000): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (running()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone between the check and the kill.
    }
  }
}

interface Client {
  readonly host: string;
  readonly port: number;
  readonly pki: ControlPlanePki;
}

/** One GET to kube-apiserver as the admin; resolves with the status and body, or undefined if unreachable. */
export function apiGet(client: Client, path: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: client.host,
        port: client.port,
        path,
        method: "GET",
        ca: client.pki.caPem,
        cert: client.pki.admin.certPem,
        key: client.pki.admin.keyPem,
        timeout: 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", () => resolve(undefined));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

async function etcdHealthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok && ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

/** Starts the control plane under `root` (the daemon's `<stateDir>/kubernetes`). */
export async function startControlPlane(options: {
  root: string;
  settings: ControlPlaneSettings;
  logger: Logger;
  now?: () => Date;
}): Promise<RunningControlPlane> {
  const { settings, logger } = options;
  const paths = controlPlanePaths(options.root);
  const components = controlPlaneComponents(paths, settings);
  assertBinaries(settings, components);
  await stopLeftoverComponents(options.root, settings);
  const portHint = "stop what uses it, or choose other ports (--port, --etcd-port, --kubelet-port)";
  await assertPortFree(settings.address, settings.apiPort, "kube-apiserver", portHint);
  await assertPortFree("127.0.0.1", settings.etcdPort, "etcd", portHint);
  await assertPortFree("127.0.0.1", settings.etcdPort + 1, "etcd (peer port)", portHint);
  for (const dir of [paths.root, paths.logs, paths.run, paths.kubeconfigs, paths.etcdData]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  const pki = await ensureControlPlanePki(
    paths,
    settings,
    kubernetesServiceIp(settings.serviceCidr),
    (options.now ?? (() => new Date()))(),
  );
  const apiUrl = `https://${settings.address}:${settings.apiPort}`;
  for (const name of ["kube-controller-manager", "kube-scheduler"] as const) {
    writeKubeconfig({
      path: paths.kubeconfig(name),
      context: name,
      server: apiUrl,
      caPem: pki.caPem,
      clientCertificate: {
        certPem: readFileSync(paths.leaf(name).cert, "utf8"),
        keyPem: readFileSync(paths.leaf(name).key, "utf8"),
      },
      setCurrent: true,
    });
  }

  const children = new Map<ComponentName, ChildProcess>();
  const exits = new Map<ComponentName, string>();
  let stopping = false;
  const launch = (component: Component): ChildProcess => {
    const log = openSync(paths.log(component.name), "a", 0o600);
    const child = spawn(component.binary, component.args, { stdio: ["ignore", log, log] });
    closeSync(log);
    if (child.pid === undefined) {
      throw new MeshError(ErrorCode.Unavailable, `${component.name} did not start`, {
        hint: `see ${paths.log(component.name)}`,
      });
    }
    writeFileSync(paths.pidfile(component.name), `${child.pid}\n`);
    children.set(component.name, child);
    child.once("exit", (code, signal) => {
      exits.set(component.name, `exited (${signal ?? `code ${code}`})`);
      if (!stopping) {
        logger.error(
          { component: component.name, code, signal, log: logTail(paths.log(component.name), 5) },
          "control-plane component exited",
        );
      }
    });
    logger.info({ component: component.name, pid: child.pid }, "control-plane component started");
    return child;
  };
  const waitFor = async (
    component: Component,
    ready: () => Promise<boolean>,
    timeoutMs: number,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exits.has(component.name)) break;
      if (await ready()) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    const why = exits.get(component.name) ?? `not ready after ${timeoutMs / 1000} s`;
    throw new MeshError(
      ErrorCode.Unavailable,
      `${component.name} failed to start (${why}); the end of ${paths.log(component.name)}:\n${logTail(paths.log(component.name))}`,
      { hint: `see ${paths.log(component.name)}` },
    );
  };

  const stop = async (): Promise<void> => {
    stopping = true;
    for (const component of [...components].reverse()) {
      const child = children.get(component.name);
      if (child?.pid !== undefined && !exits.has(component.name)) {
        await terminate(child.pid, () => !exits.has(component.name));
      }
      rmSync(paths.pidfile(component.name), { force: true });
    }
  };

  const client: Client = { host: settings.address, port: settings.apiPort, pki };
  try {
    const [etcd, apiserver, controllerManager, scheduler] = components as [
      Component,
      Component,
      Component,
      Component,
    ];
    launch(etcd);
    await waitFor(etcd, () => etcdHealthy(settings.etcdPort), 30_000);
    launch(apiserver);
    await waitFor(apiserver, async () => (await apiGet(client, "/readyz"))?.status === 200, 90_000);
    launch(controllerManager);
    launch(scheduler);
    // The controller manager is working once it has made the `default` ServiceAccount (pods need one).
    await waitFor(
      controllerManager,
      async () =>
        (await apiGet(client, "/api/v1/namespaces/default/serviceaccounts/default"))?.status === 200,
      60_000,
    );
    await waitFor(scheduler, async () => true, 1000);
  } catch (error) {
    await stop();
    throw error;
  }
  const versionReply = await apiGet(client, "/version");
  const version = versionReply
    ? ((JSON.parse(versionReply.body) as { gitVersion?: string }).gitVersion ?? "unknown")
    : "unknown";
  logger.info({ apiUrl, version }, "Kubernetes control plane is up");
  return {
    apiUrl,
    pki,
    version,
    components: () =>
      Object.fromEntries(
        components.map((c) => [c.name, exits.get(c.name) ?? `running (pid ${children.get(c.name)?.pid})`]),
      ) as Record<ComponentName, string>,
    stop,
  };
}

export type { ControlPlanePaths };

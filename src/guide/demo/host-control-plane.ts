/**
 * The demo's fallback when `osm install`'s control-plane pods do not become available on the embedded
 * runtime (their netns cannot reach the API server on the host's loopback, and sidecars cannot resolve the
 * controller's Service name): run the very commands those Deployments run (`osm controller run`, `osm
 * injector run`) as host processes on the bridge's host address, scale the Deployments to zero and point the
 * injector Service at the host. Every command is printed; the step says why it runs. When the pods do come
 * up, it is skipped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CommandResult } from "./expect.ts";
import type { ExecOptions } from "./runner.ts";
import { formatCommand } from "./shell-quote.ts";

export interface HostControlPlaneDeps {
  readonly exec: (argv: readonly string[], options: ExecOptions) => Promise<CommandResult>;
  readonly write: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Where its logs and the Endpoints manifest go. */
  readonly workDir: string;
  /** The repository's bin/osm (what injected containers run). */
  readonly osmPath: string;
  readonly stateDirArgs: readonly string[];
}

/** The bridge's host address from `osm mesh status -o json` (`198.51.100.1/24` → `198.51.100.1`). */
export function hostAddress(statusJson: string): string | undefined {
  try {
    const health = (JSON.parse(statusJson) as { health?: { gateway4?: string } }).health;
    return health?.gateway4?.split("/")[0];
  } catch {
    return undefined;
  }
}

async function mustRun(deps: HostControlPlaneDeps, argv: readonly string[]): Promise<string> {
  deps.write(`$ ${formatCommand(argv)}\n`);
  const r = await deps.exec(argv, { timeoutMs: 60_000 });
  deps.write(r.stdout);
  deps.write(r.stderr);
  if (r.exitCode !== 0) throw new Error(`${formatCommand(argv)} exited with ${r.exitCode ?? "no code"}`);
  return r.stdout;
}

function startDetached(deps: HostControlPlaneDeps, argv: readonly string[], log: string): ChildProcess {
  deps.write(`$ ${formatCommand(argv)} &\n`);
  const fd = openSync(join(deps.workDir, log), "a");
  const child = spawn(argv[0] ?? "osm", argv.slice(1), {
    env: deps.env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  child.unref();
  return child;
}

/** Starts the host control plane; returns its processes (the caller stops them at clean-up). */
export async function startHostControlPlane(deps: HostControlPlaneDeps): Promise<ChildProcess[]> {
  mkdirSync(deps.workDir, { recursive: true });
  const status = await deps.exec(["osm", "mesh", "status", ...deps.stateDirArgs, "-o", "json"], {
    timeoutMs: 30_000,
  });
  const host = hostAddress(status.stdout);
  if (host === undefined) throw new Error("`osm mesh status -o json` gave no bridge host address");
  await mustRun(deps, [
    "kubectl",
    "scale",
    "deployment",
    "osm-controller",
    "osm-injector",
    "-n",
    "osm-system",
    "--replicas=0",
  ]);
  await mustRun(deps, [
    "kubectl",
    "patch",
    "service",
    "osm-injector",
    "-n",
    "osm-system",
    "--type=json",
    "-p",
    '[{"op":"remove","path":"/spec/selector"}]',
  ]);
  const endpoints = join(deps.workDir, "osm-injector-endpoints.json");
  writeFileSync(
    endpoints,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: "osm-injector", namespace: "osm-system" },
      subsets: [{ addresses: [{ ip: host }], ports: [{ name: "webhook", port: 9090, protocol: "TCP" }] }],
    }),
  );
  await mustRun(deps, ["kubectl", "replace", "-f", endpoints]);
  const processes = [
    startDetached(deps, ["osm", "controller", "run", "--listen", `${host}:15128`], "osm-controller.log"),
    startDetached(
      deps,
      [
        "osm",
        "injector",
        "run",
        "--listen",
        `${host}:9090`,
        "--sidecar-image",
        "osm-ts/sidecar",
        "--init-container-image",
        "osm-ts/init",
        "--controller-url",
        `http://${host}:15128`,
        "--osm-command",
        deps.osmPath,
      ],
      "osm-injector.log",
    ),
  ];
  // Ready once the injector has published its CA into the webhook configuration (bounded).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ca = await deps.exec(
      [
        "kubectl",
        "get",
        "mutatingwebhookconfiguration",
        "osm-webhook-osm",
        "-o",
        "jsonpath={.webhooks[0].clientConfig.caBundle}",
      ],
      { timeoutMs: 30_000 },
    );
    if (ca.exitCode === 0 && ca.stdout.length > 0) break;
    if (Date.now() > deadline) {
      stopProcesses(processes);
      throw new Error(`the host injector did not publish its caBundle; see ${deps.workDir}/osm-injector.log`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  deps.write(`control plane on ${host}: controller :15128, injector :9090 (logs in ${deps.workDir})\n`);
  return processes;
}

export function stopProcesses(processes: readonly ChildProcess[]): void {
  for (const child of processes) {
    if (child.pid === undefined || child.exitCode !== null) continue;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

/**
 * `osm demo`: brings the embedded mesh up if it is not running, installs the control plane if needed,
 * attaches an external web server standing in for httpbin.org, runs the guide's steps and cleans up
 * (unless --keep). Every command is a real process (`osm`, `kubectl`, `curl`) printed before it runs.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type CommandResult, createProcessRunner } from "../../edge/command-runner.ts";
import { formatHostPort } from "../../net/host-port.ts";
import { type RunnerDeps, type RunOutcome, runSteps, type Step } from "./runner.ts";
import { formatCommand } from "./shell-quote.ts";
import {
  buildDemoSteps,
  buildGuideCleanup,
  type ExternalAddresses,
  IPV4_ADDRESSES,
  IPV6_ADDRESSES,
  urlOf,
} from "./steps.ts";

/** `osm mesh up` settings the demo passes on (tests use their own bridge, subnets, port and state dir). */
export interface MeshUpSettings {
  /** `embedded` (default) or `kubernetes`: the real control plane. */
  readonly engine?: string;
  readonly etcdPort?: number;
  readonly kubeletPort?: number;
  readonly stateDir?: string;
  readonly kubeconfig?: string;
  readonly port?: number;
  readonly bridge?: string;
  readonly namePrefix?: string;
  readonly subnet4?: string;
  readonly subnet6?: string;
  readonly firstSlot?: number;
  readonly lastSlot?: number;
}

export interface DemoOptions {
  readonly ipv6: boolean;
  readonly keep: boolean;
  readonly mesh: MeshUpSettings;
  readonly write: (text: string) => void;
  /** The environment the commands run in (PATH gets the repository's bin/ first, so `osm` resolves). */
  readonly env: NodeJS.ProcessEnv;
}

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const EXTERNAL_HOST = "osm-demo-web";
const DEFAULT_STATE_DIR = "/var/lib/osm-ts";

function meshUpArgs(m: MeshUpSettings): string[] {
  const args: string[] = [];
  const add = (flag: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(flag, String(value));
  };
  add("--engine", m.engine);
  add("--etcd-port", m.etcdPort);
  add("--kubelet-port", m.kubeletPort);
  add("--state-dir", m.stateDir);
  add("--kubeconfig", m.kubeconfig);
  add("--port", m.port);
  add("--bridge", m.bridge);
  add("--name-prefix", m.namePrefix);
  add("--subnet4", m.subnet4);
  add("--subnet6", m.subnet6);
  add("--first-slot", m.firstSlot);
  add("--last-slot", m.lastSlot);
  return args;
}

function stateDirArgs(m: MeshUpSettings): string[] {
  return m.stateDir === undefined ? [] : ["--state-dir", m.stateDir];
}

/** The external web server: our httpbin-compatible server, started in the external host's netns. */
function startExternalServer(netns: string, logDir: string, write: (t: string) => void): ChildProcess {
  const argv = [
    "ip",
    "netns",
    "exec",
    netns,
    process.execPath,
    "--disable-warning=ExperimentalWarning",
    join(REPO, "src/local/node/httpbin.ts"),
    "--port",
    "80",
  ];
  write(`$ ${formatCommand(argv)} &\n`);
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, "osm-demo-web.log"), "a");
  const child = spawn(argv[0] ?? "ip", argv.slice(1), { stdio: ["ignore", log, log], detached: true });
  closeSync(log);
  child.unref();
  return child;
}

function stopProcessGroup(child: ChildProcess | undefined): void {
  if (child?.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    // Already gone.
  }
}

/** Runs the whole demo; the outcome says whether every step held. */
export async function runDemo(options: DemoOptions): Promise<RunOutcome> {
  const write = options.write;
  const env: NodeJS.ProcessEnv = {
    ...options.env,
    PATH: `${join(REPO, "bin")}:${options.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"}:/usr/sbin:/sbin`,
    ...(options.mesh.kubeconfig ? { KUBECONFIG: options.mesh.kubeconfig } : {}),
  };
  const runner = createProcessRunner({ env, cwd: REPO });
  const deps: RunnerDeps = {
    runner,
    write,
    now: () => performance.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
  const addresses: ExternalAddresses = options.ipv6 ? IPV6_ADDRESSES : IPV4_ADDRESSES;
  const stateDir = options.mesh.stateDir ?? DEFAULT_STATE_DIR;
  const status = await runner.run(["osm", "mesh", "status", ...stateDirArgs(options.mesh), "-o", "json"], {
    timeoutMs: 30_000,
  });
  const meshWasUp = parseRunning(status);
  const stateDirExisted = existsSync(stateDir);
  let server: ChildProcess | undefined;

  const setup: Step[] = [
    meshWasUp
      ? {
          kind: "command",
          title: "The mesh is already running on this host",
          argv: ["osm", "mesh", "status", ...stateDirArgs(options.mesh)],
          expect: { stdout: [/osm-local is running/] },
        }
      : {
          kind: "command",
          title: "Start the mesh on this host (API server and node agent)",
          argv: ["osm", "mesh", "up", ...meshUpArgs(options.mesh)],
          expect: { stdout: [/osm-local is (up|already running)/] },
          timeoutMs: 240_000,
        },
    {
      kind: "command",
      title: "Which Kubernetes API server the mesh runs on",
      argv: ["kubectl", "version"],
      expect: { stdout: [/Server Version: v1\.\d+/] },
    },
    {
      kind: "command",
      title: "Is the control plane installed?",
      argv: ["kubectl", "get", "deployments", "-n", "osm-system", "-l", "app=osm-controller", "-o", "name"],
      expect: {},
      capture: "controllers",
    },
    {
      kind: "command",
      title: "Install the control plane",
      argv: ["osm", "install"],
      expect: {},
      skip: (vars) => (vars.get("controllers") ? "already installed" : undefined),
      timeoutMs: 120_000,
    },
    ...["osm-controller", "osm-injector"].map(
      (name): Step => ({
        kind: "command",
        title: `Wait for ${name}`,
        argv: ["kubectl", "rollout", "status", "deployment", name, "-n", "osm-system", "--timeout=120s"],
        expect: { stdout: [/successfully rolled out/] },
        timeoutMs: 150_000,
        diagnose: [
          ["kubectl", "get", "pods", "-n", "osm-system", "-o", "wide"],
          ["kubectl", "get", "events", "-n", "osm-system"],
        ],
      }),
    ),
    // What the guide changes, noted first so the cleanup can put it back on a mesh that stays up.
    ...(
      [
        ["egress setting", "enableEgress", "egressBefore"],
        ["exclusion list", "outboundIPRangeExclusionList", "exclusionsBefore"],
      ] as const
    ).map(
      ([what, field, capture]): Step => ({
        kind: "command",
        title: `Note the MeshConfig's ${what} (restored afterwards)`,
        argv: [
          "kubectl",
          "get",
          "meshconfig",
          "osm-mesh-config",
          "-n",
          "osm-system",
          "-o",
          `jsonpath={.spec.traffic.${field}}`,
        ],
        expect: {},
        capture,
        skip: () => (meshWasUp ? undefined : "the demo started the mesh and stops it at the end"),
      }),
    ),
    {
      kind: "command",
      title: `Attach an external, non-mesh host answering on ${addresses.excluded} and ${addresses.other}`,
      argv: [
        "osm",
        "mesh",
        "external-host",
        "add",
        EXTERNAL_HOST,
        "--address",
        `${addresses.excluded}/${addresses.hostPrefix}`,
        `${addresses.other}/${addresses.hostPrefix}`,
        ...stateDirArgs(options.mesh),
      ],
      expect: {},
      capture: "externalNetns",
      captureMatch: /netns (\S+?),/,
      timeoutMs: 60_000,
    },
    {
      kind: "action",
      title: "Serve HTTP on it, as httpbin.org does",
      run: async (vars, out) => {
        server = startExternalServer(vars.get("externalNetns") ?? "", join(stateDir, "demo"), out);
      },
    },
    {
      kind: "command",
      title: `The external web server answers on ${addresses.excluded}`,
      // Checked inside its own netns: the host's route to it may be shared with other bridges.
      argv: (vars) => [
        "ip",
        "netns",
        "exec",
        vars.get("externalNetns") ?? "",
        "curl",
        "-sSI",
        "--max-time",
        "5",
        urlOf(addresses.excluded, 80),
      ],
      expect: { stdout: [/HTTP\/1\.1 200 OK/] },
      waitUntil: { timeoutMs: 15_000, intervalMs: 500 },
    },
  ];
  const steps = buildDemoSteps({
    addresses,
    osm: ["osm"],
    kubectl: "kubectl",
    examplesDir: "examples/guide",
    setup,
    meshArgs: stateDirArgs(options.mesh),
  });

  const vars = new Map<string, string>();
  const cleanup: Step[] = options.keep
    ? []
    : [
        {
          kind: "action",
          title: "Stop the external web server",
          run: async () => stopProcessGroup(server),
        },
        {
          kind: "command",
          title: "Detach the external host",
          argv: ["osm", "mesh", "external-host", "remove", EXTERNAL_HOST, ...stateDirArgs(options.mesh)],
          expect: {},
          timeoutMs: 60_000,
        },
        ...(meshWasUp
          ? buildGuideCleanup({ kubectl: "kubectl" }, vars)
          : [
              {
                kind: "command" as const,
                title: "Stop the mesh and remove everything it created",
                argv: [
                  "osm",
                  "mesh",
                  "down",
                  ...stateDirArgs(options.mesh),
                  ...(options.mesh.kubeconfig ? ["--kubeconfig", options.mesh.kubeconfig] : []),
                  ...(stateDirExisted ? [] : ["--purge"]),
                ],
                expect: {},
                timeoutMs: 120_000,
              },
            ]),
      ];
  const outcome = await runSteps(steps, cleanup, deps, vars);
  if (options.keep) {
    if (!outcome.ok) stopProcessGroup(server);
    write(keepHints(vars, addresses, options.mesh));
  }
  return outcome;
}

function parseRunning(result: CommandResult): boolean {
  if (result.code !== 0) return false;
  try {
    return (JSON.parse(result.stdout) as { running?: unknown }).running === true;
  } catch {
    return false;
  }
}

function keepHints(vars: Map<string, string>, a: ExternalAddresses, mesh: MeshUpSettings): string {
  const pod = vars.get("curlPod") ?? "<curl pod>";
  const kubeconfig = mesh.kubeconfig ? `  export KUBECONFIG=${mesh.kubeconfig}\n` : "";
  return (
    "\nThe mesh is still running (--keep). Things to try:\n" +
    kubeconfig +
    "  kubectl get pods -A\n" +
    "  osm proxy status -A\n" +
    `  osm explain pod/${pod} -n curl ${formatHostPort(a.other, 80)}\n` +
    `  kubectl exec -n curl ${pod} -c curl -- curl -sSI ${urlOf(a.excluded, 80)}\n` +
    `  osm proxy get config_dump ${pod} -n curl\n` +
    "  osm dashboard   # the web dashboard; its live decisions need sidecars at spec.sidecar.logLevel info\n" +
    `When done: osm mesh down${stateDirArgs(mesh)
      .map((x) => ` ${x}`)
      .join("")}\n`
  );
}

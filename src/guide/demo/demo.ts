/**
 * `osm demo` and `osm demo egress-policy`: brings the embedded mesh up if it is not running, installs the
 * control plane if needed, attaches external web servers standing in for httpbin.org (and
 * openservicemesh.io), runs the demo's steps and cleans up (unless --keep). Every command is a real process
 * (`osm`, `kubectl`, `curl`) printed before it runs.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCertificateAuthority, createServingCertificate } from "../../edge/certificates.ts";
import { type CommandResult, createProcessRunner } from "../../edge/command-runner.ts";
import { formatHostPort } from "../../net/host-port.ts";
import { buildEgressPolicySteps, HTTPBIN, OPENSERVICEMESH } from "./egress-policy-steps.ts";
import { type DemoVars, type RunnerDeps, type RunOutcome, runSteps, type Step } from "./runner.ts";
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
  /** `exclusions` (OSM's guide, the default) or `egress-policy` (OSM's egress policy demo). */
  readonly demo?: "exclusions" | "egress-policy";
  readonly ipv6: boolean;
  readonly keep: boolean;
  readonly mesh: MeshUpSettings;
  readonly write: (text: string) => void;
  /** The environment the commands run in (PATH gets the repository's bin/ first, so `osm` resolves). */
  readonly env: NodeJS.ProcessEnv;
}

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const DEFAULT_STATE_DIR = "/var/lib/osm-ts";

/** An external, non-mesh host a demo attaches (`osm mesh external-host add`), running our httpbin server. */
interface DemoHost {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly hostPrefix: 32 | 128;
  /** Names the cluster DNS answers with its addresses. */
  readonly hostnames: readonly string[];
  /** Serves HTTPS on 443 too, with the demo's certificate for every host's names. */
  readonly tls: boolean;
}

/** What differs between the demos; the mesh, the control plane, the external hosts and clean-up are shared. */
interface Scenario {
  /** MeshConfig `spec.traffic` fields it changes: noted first, put back by the clean-up on a mesh that stays. */
  readonly changes: readonly (readonly [what: string, field: string, capture: string])[];
  readonly hosts: readonly DemoHost[];
  readonly namespaces: readonly string[];
  readonly steps: (setup: Step[], meshArgs: readonly string[]) => Step[];
  /** Commands to try with --keep. */
  readonly hints: (vars: DemoVars) => string[];
}

function exclusionsScenario(a: ExternalAddresses): Scenario {
  return {
    changes: [
      ["egress setting", "enableEgress", "egressBefore"],
      ["exclusion list", "outboundIPRangeExclusionList", "exclusionsBefore"],
    ],
    hosts: [
      {
        name: "osm-demo-web",
        addresses: [a.excluded, a.other],
        hostPrefix: a.hostPrefix,
        hostnames: [],
        tls: false,
      },
    ],
    namespaces: ["curl", "httpbin"],
    steps: (setup, meshArgs) =>
      buildDemoSteps({
        addresses: a,
        osm: ["osm"],
        kubectl: "kubectl",
        examplesDir: "examples/guide",
        setup,
        meshArgs,
      }),
    hints: (vars) => {
      const pod = vars.get("curlPod") ?? "<curl pod>";
      return [
        `osm explain pod/${pod} -n curl ${formatHostPort(a.other, 80)}`,
        `kubectl exec -n curl ${pod} -c curl -- curl -sSI ${urlOf(a.excluded, 80)}`,
      ];
    },
  };
}

function egressPolicyScenario(): Scenario {
  const host = (name: string, h: typeof HTTPBIN): DemoHost => ({
    name,
    addresses: [h.address],
    hostPrefix: 32,
    hostnames: [h.name],
    tls: true,
  });
  return {
    changes: [["egress setting", "enableEgress", "egressBefore"]],
    hosts: [host("osm-demo-httpbin", HTTPBIN), host("osm-demo-osm-io", OPENSERVICEMESH)],
    namespaces: ["curl"],
    steps: (setup) =>
      buildEgressPolicySteps({
        osm: ["osm"],
        kubectl: "kubectl",
        examplesDir: "examples/guide",
        policiesDir: "examples/egress-policy",
        setup,
      }),
    hints: (vars) => {
      const pod = vars.get("curlPod") ?? "<curl pod>";
      return [
        "kubectl apply -f examples/egress-policy/httpbin-80.yaml",
        `kubectl exec -n curl ${pod} -c curl -- curl -sSI http://${HTTPBIN.name}/get`,
        `osm explain pod/${pod} -n curl ${HTTPBIN.address}:80 --host ${HTTPBIN.name}`,
        `kubectl logs -n curl ${pod} -c envoy | grep egress`,
      ];
    },
  };
}

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

/** The demo's TLS files: a serving certificate for `names`, from a CA of its own (pods do not trust it). */
interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

async function writeDemoCertificate(dir: string, names: readonly string[]): Promise<TlsFiles> {
  const now = new Date();
  const ca = await createCertificateAuthority({ commonName: "osm demo CA", now, validityHours: 24 });
  const serving = await createServingCertificate(ca, {
    commonName: names[0] ?? "osm-demo",
    dnsNames: names,
    ipAddresses: [],
    now,
    validityHours: 24,
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = { cert: join(dir, "tls.crt"), key: join(dir, "tls.key") };
  writeFileSync(files.cert, serving.certPem);
  writeFileSync(files.key, serving.keyPem, { mode: 0o600 });
  return files;
}

/** The external web server: our httpbin-compatible server, started in the external host's netns. */
function startExternalServer(
  host: string,
  netns: string,
  logDir: string,
  write: (t: string) => void,
  tls?: TlsFiles,
): ChildProcess {
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
    ...(tls ? ["--tls-port", "443", "--cert", tls.cert, "--key", tls.key] : []),
  ];
  write(`$ ${formatCommand(argv)} &\n`);
  mkdirSync(logDir, { recursive: true });
  const log = openSync(join(logDir, `${host}.log`), "a");
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

/** Attaching a host, serving on it, and checking it answers (inside its own netns: the host's route to it
 * may be shared with other bridges). */
function externalHostSteps(
  host: DemoHost,
  meshArgs: readonly string[],
  start: (vars: DemoVars, write: (t: string) => void) => void,
): Step[] {
  const netnsVar = `netns:${host.name}`;
  const names = host.hostnames.length > 0 ? ` as ${host.hostnames.join(", ")}` : "";
  const inNetns = (vars: DemoVars, url: string, flags: readonly string[] = []) => [
    "ip",
    "netns",
    "exec",
    vars.get(netnsVar) ?? "",
    "curl",
    "-sSI",
    ...flags,
    "--max-time",
    "5",
    url,
  ];
  const first = host.addresses[0] ?? "";
  return [
    {
      kind: "command",
      title: `Attach an external, non-mesh host answering on ${host.addresses.join(" and ")}${names}`,
      argv: [
        "osm",
        "mesh",
        "external-host",
        "add",
        host.name,
        "--address",
        ...host.addresses.map((a) => `${a}/${host.hostPrefix}`),
        ...(host.hostnames.length > 0 ? ["--hostname", ...host.hostnames] : []),
        ...meshArgs,
      ],
      expect: {},
      capture: netnsVar,
      captureMatch: /netns (\S+?),/,
      timeoutMs: 60_000,
    },
    {
      kind: "action",
      title: `Serve HTTP${host.tls ? " and HTTPS" : ""} on it, as ${host.hostnames[0] ?? "httpbin.org"} does`,
      run: async (vars, out) => start(vars, out),
    },
    {
      kind: "command",
      title: `The external web server answers on ${first}`,
      argv: (vars) => inNetns(vars, urlOf(first, 80)),
      expect: { stdout: [/HTTP\/1\.1 200 OK/] },
      waitUntil: { timeoutMs: 15_000, intervalMs: 500 },
    },
    ...(host.tls
      ? [
          {
            kind: "command" as const,
            title: `… and over HTTPS`,
            argv: (vars: DemoVars) => inNetns(vars, `https://${formatHostPort(first, 443)}`, ["-k"]),
            expect: { stdout: [/HTTP\/1\.1 200 OK/] },
            waitUntil: { timeoutMs: 15_000, intervalMs: 500 },
          },
        ]
      : []),
  ];
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
  const scenario =
    options.demo === "egress-policy"
      ? egressPolicyScenario()
      : exclusionsScenario(options.ipv6 ? IPV6_ADDRESSES : IPV4_ADDRESSES);
  const meshArgs = stateDirArgs(options.mesh);
  const stateDir = options.mesh.stateDir ?? DEFAULT_STATE_DIR;
  const demoDir = join(stateDir, "demo");
  const status = await runner.run(["osm", "mesh", "status", ...meshArgs, "-o", "json"], {
    timeoutMs: 30_000,
  });
  const meshWasUp = parseRunning(status);
  const stateDirExisted = existsSync(stateDir);
  const servers: ChildProcess[] = [];
  let tls: TlsFiles | undefined;
  const tlsNames = scenario.hosts.filter((h) => h.tls).flatMap((h) => h.hostnames);

  const setup: Step[] = [
    meshWasUp
      ? {
          kind: "command",
          title: "The mesh is already running on this host",
          argv: ["osm", "mesh", "status", ...meshArgs],
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
    // What the demo changes, noted first so the cleanup can put it back on a mesh that stays up.
    ...scenario.changes.map(
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
    ...(tlsNames.length > 0
      ? [
          {
            kind: "action" as const,
            title: `Make a TLS certificate for ${tlsNames.join(" and ")} (from a CA of the demo's own)`,
            run: async (_vars: DemoVars, out: (t: string) => void) => {
              tls = await writeDemoCertificate(demoDir, tlsNames);
              out(`  wrote ${tls.cert} and ${tls.key}\n`);
            },
          },
        ]
      : []),
    ...scenario.hosts.flatMap((host) =>
      externalHostSteps(host, meshArgs, (vars, out) => {
        const netns = vars.get(`netns:${host.name}`) ?? "";
        servers.push(startExternalServer(host.name, netns, demoDir, out, host.tls ? tls : undefined));
      }),
    ),
  ];
  const steps = scenario.steps(setup, meshArgs);

  const vars = new Map<string, string>();
  const stopServers = () => {
    for (const server of servers) stopProcessGroup(server);
  };
  const cleanup: Step[] = options.keep
    ? []
    : [
        {
          kind: "action",
          title: "Stop the external web servers",
          run: async () => stopServers(),
        },
        ...scenario.hosts.map(
          (host): Step => ({
            kind: "command",
            title: `Detach the external host ${host.name}`,
            argv: ["osm", "mesh", "external-host", "remove", host.name, ...meshArgs],
            expect: {},
            timeoutMs: 60_000,
          }),
        ),
        ...(meshWasUp
          ? buildGuideCleanup({ kubectl: "kubectl" }, vars, scenario.namespaces)
          : [
              {
                kind: "command" as const,
                title: "Stop the mesh and remove everything it created",
                argv: [
                  "osm",
                  "mesh",
                  "down",
                  ...meshArgs,
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
    if (!outcome.ok) stopServers();
    write(keepHints(scenario.hints(vars), vars, options.mesh));
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

function keepHints(tries: readonly string[], vars: DemoVars, mesh: MeshUpSettings): string {
  const kubeconfig = mesh.kubeconfig ? `  export KUBECONFIG=${mesh.kubeconfig}\n` : "";
  return (
    "\nThe mesh is still running (--keep). Things to try:\n" +
    kubeconfig +
    "  kubectl get pods -A\n" +
    "  osm proxy status -A\n" +
    tries.map((t) => `  ${t}\n`).join("") +
    `  osm proxy get config_dump ${vars.get("curlPod") ?? "<curl pod>"} -n curl\n` +
    "  osm dashboard   # the web dashboard; its live decisions need sidecars at spec.sidecar.logLevel info\n" +
    `When done: osm mesh down${stateDirArgs(mesh)
      .map((x) => ` ${x}`)
      .join("")}\n`
  );
}

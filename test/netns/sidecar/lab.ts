/**
 * The sidecar's netns test bench: a client namespace (OSM's interception rules, the sidecar as uid 1500)
 * and a server namespace (external hosts and mesh pods on documentation addresses), joined by a veth pair.
 * Everything is named `osmt-sc-*` (the bench: `osmt-sp-*`) and removed by `destroy()`, processes by PID.
 *
 *   client ns  veth 198.51.100.1/24, 2001:db8:51::1/64  ── veth ──  server ns 198.51.100.2, 2001:db8:51::2
 *   routes 203.0.113.0/24, 192.0.2.0/24, 2001:db8:203::/64 via the server; servers answer on:
 *     203.0.113.10 / .11 / [2001:db8:203::10]  external hosts (http :80)
 *     203.0.113.20 / [2001:db8:203::20]        external, excluded from interception (http :80)
 *     203.0.113.30 / [2001:db8:203::30]        mesh pods (http :8080, echo :9000, halfclose :9001, source :9002,
 *                                              sink :9003; v4 only: hold :9004, halfreset :9005)
 *
 * Install access: the sidecar runs as uid 1500, which must read the code, node_modules, the addon and the
 * Node binary. CI clones to an unknown path (possibly under /root, mode 700), so `prepareInstall` asks
 * `detectInstallAccess` and, when uid 1500 cannot run from the clone, copies the runtime files to a
 * world-readable temporary directory and runs from there.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { SidecarConfigInput } from "../../../src/config/sidecar-api.ts";
import { ENVOY_UID } from "../../../src/constants.ts";
import { detectInstallAccess, installRoot, projectNode } from "../../support/install-access.ts";

const ENV = { ...process.env, PATH: `${process.env["PATH"] ?? "/usr/bin:/bin"}:/usr/sbin:/sbin` };
const fixtures = new URL("./fixtures/", import.meta.url).pathname;

export const CLIENT_V4 = "198.51.100.1";
export const SERVER_V4 = "198.51.100.2";
export const EXTERNAL_V4 = "203.0.113.10";
export const EXTERNAL2_V4 = "203.0.113.11";
export const EXCLUDED_V4 = "203.0.113.20";
export const MESH_V4 = "203.0.113.30";
/** A ClusterIP-like mesh address that exists nowhere: only the sidecar (backends) can reach it. */
export const CLUSTER_IP_V4 = "192.0.2.100";
export const EXTERNAL_V6 = "2001:db8:203::10";
export const EXCLUDED_V6 = "2001:db8:203::20";
export const MESH_V6 = "2001:db8:203::30";

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** OSM's init-container rules (docs/osm-behaviour.md §1.3, no PodIP mode) with one excluded address; the v6 twin for ip6tables. */
export function osmRules(family: 4 | 6): string {
  const loopback = family === 4 ? "127.0.0.1/32" : "::1/128";
  const excluded = family === 4 ? `${EXCLUDED_V4}/32` : `${EXCLUDED_V6}/128`;
  return [
    "*nat",
    ":OSM_PROXY_INBOUND - [0:0]",
    ":OSM_PROXY_IN_REDIRECT - [0:0]",
    ":OSM_PROXY_OUTBOUND - [0:0]",
    ":OSM_PROXY_OUT_REDIRECT - [0:0]",
    "-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-port 15003",
    "-A PREROUTING -p tcp -j OSM_PROXY_INBOUND",
    ...[15010, 15901, 15902, 15903, 15904].map((p) => `-A OSM_PROXY_INBOUND -p tcp --dport ${p} -j RETURN`),
    "-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT",
    "-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-port 15001",
    "-A OSM_PROXY_OUT_REDIRECT -p tcp --dport 15000 -j ACCEPT",
    "-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND",
    `-A OSM_PROXY_OUTBOUND -o lo ! -d ${loopback} -m owner --uid-owner ${ENVOY_UID} -j OSM_PROXY_IN_REDIRECT`,
    `-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner ${ENVOY_UID} -j RETURN`,
    `-A OSM_PROXY_OUTBOUND -m owner --uid-owner ${ENVOY_UID} -j RETURN`,
    `-A OSM_PROXY_OUTBOUND -d ${loopback} -j RETURN`,
    `-A OSM_PROXY_OUTBOUND -d ${excluded} -j RETURN`,
    "-A OSM_PROXY_OUTBOUND -j OSM_PROXY_OUT_REDIRECT",
    "COMMIT",
    "",
  ].join("\n");
}

function run(argv: readonly string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { env: ENV, encoding: "utf8", input, stdio: "pipe" });
}

let preparedRoot: string | undefined;

/**
 * The install uid 1500 runs the sidecar from: this clone when that uid can read it, else a world-readable
 * copy of the runtime files (bin, src, node_modules, build, package.json) in a temporary directory.
 */
export function prepareInstall(): string {
  if (preparedRoot !== undefined) return preparedRoot;
  const root = installRoot();
  const access = detectInstallAccess(ENVOY_UID, ENVOY_UID, root);
  if (access.ok) {
    preparedRoot = root;
    return root;
  }
  const copy = mkdtempSync(join(tmpdir(), "osmt-sc-install-"));
  for (const part of ["package.json", "bin", "src", "node_modules", "build"]) {
    // Timestamps kept: bin/osm runs the sidecar bundle only when no source is newer than it.
    cpSync(join(root, part), join(copy, part), {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
    });
  }
  run(["chmod", "-R", "a+rX", copy]);
  chmodSync(copy, 0o755);
  const again = detectInstallAccess(ENVOY_UID, ENVOY_UID, copy);
  if (!again.ok) {
    throw new Error(`uid ${ENVOY_UID} cannot run the sidecar even from a copy: ${again.problem}`);
  }
  process.once("exit", () => rmSync(copy, { recursive: true, force: true }));
  preparedRoot = copy;
  return copy;
}

/** A child process with its stdout lines collected. */
export interface Proc {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first stdout line matching `test` (rejects after `timeoutMs`). */
  waitForLine(test: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function track(child: ChildProcess, all: Set<ChildProcess>): Proc {
  all.add(child);
  const lines: string[] = [];
  const waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void }>();
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (child.stdout) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      lines.push(line);
      for (const waiter of waiters) {
        if (waiter.test(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.once("exit", (code) => {
      all.delete(child);
      resolve(code);
    });
  });
  return {
    child,
    lines,
    waitForLine(test, timeoutMs = 10_000) {
      const found = lines.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = { test, resolve };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`));
        }, timeoutMs);
        waiters.add({
          test,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill(signal);
      }
      return exited;
    },
  };
}

export interface CurlResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly ms: number;
}

export class Lab {
  readonly id = randomBytes(2).toString("hex");
  readonly clientNs: string;
  readonly serverNs: string;
  readonly dir: string;
  readonly #children = new Set<ChildProcess>();
  #configVersion = 0;

  /** `prefix` names the namespaces, links and temp dir: the tests use `osmt-sc`, the bench `osmt-sp`. */
  constructor(prefix = "osmt-sc") {
    this.clientNs = `${prefix}-c${this.id}`;
    this.serverNs = `${prefix}-s${this.id}`;
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }

  /** Creates both namespaces, links, routes and OSM's rules (v4 and v6), then starts the servers. */
  async create(): Promise<void> {
    chmodSync(this.dir, 0o755); // the sidecar (uid 1500) reads its config file here
    const c = this.clientNs;
    const s = this.serverNs;
    const vc = c;
    const vs = s;
    run(["ip", "netns", "add", c]);
    run(["ip", "netns", "add", s]);
    run(["ip", "link", "add", vc, "netns", c, "type", "veth", "peer", "name", vs, "netns", s]);
    for (const [ns, dev, v4, v6] of [
      [c, vc, CLIENT_V4, "2001:db8:51::1"],
      [s, vs, SERVER_V4, "2001:db8:51::2"],
    ] as const) {
      run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      run(["ip", "-n", ns, "addr", "add", `${v4}/24`, "dev", dev]);
      run(["ip", "-n", ns, "addr", "add", `${v6}/64`, "dev", dev, "nodad"]);
      run(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    for (const address of [EXTERNAL_V4, EXTERNAL2_V4, EXCLUDED_V4, MESH_V4, "203.0.113.31"]) {
      run(["ip", "-n", s, "addr", "add", `${address}/32`, "dev", "lo"]);
    }
    for (const address of [EXTERNAL_V6, EXCLUDED_V6, MESH_V6]) {
      run(["ip", "-n", s, "addr", "add", `${address}/128`, "dev", "lo", "nodad"]);
    }
    run(["ip", "-n", c, "route", "add", "203.0.113.0/24", "via", SERVER_V4]);
    run(["ip", "-n", c, "route", "add", "192.0.2.0/24", "via", SERVER_V4]);
    run(["ip", "-n", c, "-6", "route", "add", "2001:db8:203::/64", "via", "2001:db8:51::2"]);
    run(["ip", "netns", "exec", c, "iptables-restore", "--noflush"], osmRules(4));
    run(["ip", "netns", "exec", c, "ip6tables-restore", "--noflush"], osmRules(6));

    const servers = this.spawnIn(s, [
      projectNode(),
      join(fixtures, "servers.ts"),
      ...[EXTERNAL_V4, EXTERNAL2_V4, EXCLUDED_V4, `[${EXTERNAL_V6}]`, `[${EXCLUDED_V6}]`].map(
        (a) => `http=${a}:80`,
      ),
      ...[MESH_V4, "203.0.113.31", `[${MESH_V6}]`].map((a) => `http=${a}:8080`),
      `echo=${MESH_V4}:9000`,
      `echo=[${MESH_V6}]:9000`,
      `echo=${EXTERNAL_V4}:9000`,
      `tls=${EXTERNAL_V4}:443`,
      `halfclose=${MESH_V4}:9001`,
      `source=${MESH_V4}:9002`,
      `source=[${MESH_V6}]:9002`,
      `sink=${MESH_V4}:9003`,
      `sink=[${MESH_V6}]:9003`,
      `hold=${MESH_V4}:9004`,
      `halfreset=${MESH_V4}:9005`,
    ]);
    await servers.waitForLine((line) => line === "ready");
    // The "app" in the client pod, reached through the inbound listener.
    const app = this.spawnIn(c, [projectNode(), join(fixtures, "servers.ts"), "http=0.0.0.0:8081"]);
    await app.waitForLine((line) => line === "ready");
  }

  /** Drops every SYN to `port` in the server namespace: connections there never get an answer. */
  silencePort(port: number): void {
    run([
      "ip",
      "netns",
      "exec",
      this.serverNs,
      "iptables",
      "-A",
      "INPUT",
      "-p",
      "tcp",
      "--dport",
      String(port),
      "-j",
      "DROP",
    ]);
  }

  /** Spawns argv inside namespace `ns` (as root). */
  spawnIn(ns: string, argv: readonly string[], options: { stdin?: boolean } = {}): Proc {
    const child = spawn("ip", ["netns", "exec", ns, ...argv], {
      env: ENV,
      stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    });
    return track(child, this.#children);
  }

  /** Writes a config document (version bumped automatically unless given) and returns its path. */
  writeConfig(config: Omit<SidecarConfigInput, "apiVersion" | "version"> & { version?: number }): string {
    this.#configVersion = config.version ?? this.#configVersion + 1;
    const path = join(this.dir, "sidecar.json");
    const temporary = `${path}.tmp`;
    writeFileSync(
      temporary,
      JSON.stringify({ apiVersion: "osm.sidecar/v1", ...config, version: this.#configVersion }),
    );
    chmodSync(temporary, 0o644);
    run(["mv", temporary, path]); // atomic replace, as an editor or a ConfigMap update does
    return path;
  }

  /**
   * Starts `osm sidecar run ARGS` in the client namespace as uid/gid 1500 (nsenter switches user after
   * entering the namespace; no capabilities survive the switch) and waits for /ready when `waitReady`.
   */
  async startSidecar(
    args: readonly string[],
    waitReady = true,
    env: Record<string, string> = {},
    maxFds?: number,
  ): Promise<Proc> {
    const root = prepareInstall();
    // `maxFds`: RLIMIT_NOFILE, soft and hard (so Node cannot raise it), set by prlimit before the switch.
    const limit = maxFds === undefined ? [] : ["prlimit", `--nofile=${maxFds}:${maxFds}`];
    const child = spawn(
      limit[0] ?? "nsenter",
      [
        ...limit.slice(1),
        ...(limit.length > 0 ? ["nsenter"] : []),
        `--net=/run/netns/${this.clientNs}`,
        `--setuid=${ENVOY_UID}`,
        `--setgid=${ENVOY_UID}`,
        "--",
        join(root, "bin/osm"),
        "sidecar",
        "run",
        ...args,
      ],
      { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"], cwd: "/" },
    );
    const proc = track(child, this.#children);
    await proc.waitForLine((line) => line.includes('"sidecar started"'), 15_000);
    if (waitReady) await this.waitFor(async () => (await this.admin("/ready")).startsWith("LIVE"));
    return proc;
  }

  /** GET on the sidecar's admin port (127.0.0.1:15000 in the client namespace); "" when unreachable. */
  async admin(path: string): Promise<string> {
    const result = await this.curl(["-s", "--max-time", "2", `http://127.0.0.1:15000${path}`]);
    return result.stdout;
  }

  /** Runs curl in the client namespace (as root, so its connections are intercepted). */
  curl(args: readonly string[]): Promise<CurlResult> {
    return new Promise((resolve) => {
      const started = performance.now();
      const child = spawn("ip", ["netns", "exec", this.clientNs, "curl", ...args], {
        env: ENV,
        stdio: ["ignore", "pipe", "ignore"],
      });
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.on("close", (code) => resolve({ exitCode: code ?? -1, stdout, ms: performance.now() - started }));
    });
  }

  /** Starts the fixture client (stream-client.ts) in the client namespace, stdin piped. */
  spawnClient(args: readonly string[]): Proc {
    return this.spawnIn(this.clientNs, [projectNode(), join(fixtures, "stream-client.ts"), ...args], {
      stdin: true,
    });
  }

  /** Runs a fixture client (stream-client.ts) in the client namespace and returns its last JSON line. */
  async client(args: readonly string[]): Promise<Record<string, unknown>> {
    const proc = this.spawnIn(this.clientNs, [projectNode(), join(fixtures, "stream-client.ts"), ...args]);
    const code = await new Promise<number | null>((resolve) => proc.child.once("exit", resolve));
    const last = proc.lines.at(-1);
    if (code !== 0 || last === undefined) throw new Error(`stream-client ${args.join(" ")} exited ${code}`);
    return JSON.parse(last) as Record<string, unknown>;
  }

  /** Polls `check` every 50 ms until it is true (throws after `timeoutMs`). */
  async waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`condition not met within ${timeoutMs} ms`);
  }

  /** Kills every process we started (by PID) and deletes both namespaces and the temporary directory. */
  async destroy(): Promise<void> {
    for (const child of this.#children) {
      if (child.pid !== undefined && child.exitCode === null) child.kill("SIGKILL");
    }
    for (const ns of [this.clientNs, this.serverNs]) {
      try {
        run(["ip", "netns", "del", ns]); // takes the veth pair with it
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Parsed JSON access-log lines (`msg: "connection"`) from the sidecar's stdout. */
export function accessLog(proc: Proc): Array<Record<string, unknown>> {
  return proc.lines
    .filter((line) => line.includes('"msg":"connection"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

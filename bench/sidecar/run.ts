/**
 * `npm run bench:sidecar`: direct vs HAProxy vs the osm-ts sidecar, in one run, in the same namespaces
 * (test/netns/sidecar/lab.ts: OSM's interception rules in the client namespace, servers in a second one).
 *
 *   direct   → 203.0.113.20 (excluded from interception: the same path minus the proxy)
 *   haproxy  → 203.0.113.10 via 15001: Debian haproxy, `mode tcp`, `server x 0.0.0.0:0` (original destination)
 *   sidecar  → 203.0.113.10 via 15001: `osm sidecar run`, egress on (passthrough), access log on (to a file);
 *              `sidecar` accepts, decides and relays (splice(2)) in the addon's threads (the default),
 *              `sidecar-jsaccept` accepts and decides in Node and relays with splice, `sidecar-js` is all Node
 *
 * Each target runs in a fresh pair of namespaces (no TIME_WAIT or conntrack left over from the previous one).
 * Both proxies run as uid 1500 (the rules exempt its own upstream connections). Load and servers are C
 * (netbench.c) so neither is the bottleneck measured. Every figure is the median of RUNS runs.
 * Env: RUNS (3), SECONDS_PER_RUN (2), BULK_BYTES (1 GiB), TARGETS (direct,haproxy,haproxy-splice,sidecar,sidecar-jsaccept,
 * sidecar-js),
 * SIDECAR_ARGS (extra `osm sidecar run` arguments, space-separated, e.g. `--access-log off` for no access log),
 * SIDECAR_NODE_FLAGS (Node/V8 flags for the sidecar, space-separated, e.g. `--max-semi-space-size=1`).
 * The sidecar runs its bundle (built first) with `--trace-gc`: its GC pauses are reported per measure.
 * Writes build/bench/sidecar-results.json and prints a table with ratios to direct and to HAProxy.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENVOY_UID } from "../../src/constants.ts";
import { SIDECAR_BUNDLE } from "../../src/sidecar/bundle-path.ts";
import { EXCLUDED_V4, EXTERNAL_V4, isRoot, Lab, prepareInstall } from "../../test/netns/sidecar/lab.ts";
import { installRoot, projectNode } from "../../test/support/install-access.ts";

/** The sidecar's GC pauses during one measure, from V8's `--trace-gc` lines in its log. */
interface GcPauses {
  count: number;
  totalMs: number;
  maxMs: number;
  /** Pauses by V8's name for the collection (Scavenge, Mark-Compact, …). */
  byKind: Record<string, { count: number; totalMs: number }>;
}

const RUNS = Number(process.env["RUNS"] ?? 3);
const SECONDS = Number(process.env["SECONDS_PER_RUN"] ?? 2);
const BULK_BYTES = Number(process.env["BULK_BYTES"] ?? 1024 ** 3);
/** Upper bound on connections per run (bounded load; also bounds conntrack/TIME_WAIT entries). */
const MAX_REQUESTS = 120_000;
const TARGETS = (
  process.env["TARGETS"] ?? "direct,haproxy,haproxy-splice,sidecar,sidecar-jsaccept,sidecar-js"
).split(",");
/** `osm sidecar run` arguments of each sidecar target. */
const SIDECAR_TARGETS: Record<string, readonly string[]> = {
  sidecar: ["--relay", "splice"],
  "sidecar-jsaccept": ["--relay", "splice", "--accept", "js"],
  "sidecar-js": ["--relay", "js"],
};
const SIDECAR_ARGS = (process.env["SIDECAR_ARGS"] ?? "").split(" ").filter(Boolean);
const SIDECAR_NODE_FLAGS = (process.env["SIDECAR_NODE_FLAGS"] ?? "").split(" ").filter(Boolean);
const RR_PORT = 7000;
const BULK_PORT = 7001;
const ENV = { ...process.env, PATH: `${process.env["PATH"] ?? "/usr/bin:/bin"}:/usr/sbin:/sbin` };

const root = installRoot();
const buildDir = join(root, "build", "bench");
const netbench = join(buildDir, "netbench");

function buildNetbench(): void {
  const source = join(root, "bench", "sidecar", "netbench.c");
  if (existsSync(netbench) && statSync(netbench).mtimeMs >= statSync(source).mtimeMs) return;
  mkdirSync(buildDir, { recursive: true });
  execFileSync("cc", ["-O2", "-Wall", "-pthread", "-o", netbench, source], { stdio: "inherit" });
}

function inNs(ns: string, argv: readonly string[]): string {
  return execFileSync("ip", ["netns", "exec", ns, ...argv], { env: ENV, encoding: "utf8" });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round((kb / 1024) * 10) / 10;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** CPU time (user + system, all threads) of a process so far, in milliseconds (CLK_TCK = 100). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface RateResult {
  rate: number;
  /** Proxy CPU per request in µs: independent of what else the machine runs. */
  proxyCpuUs?: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  errors: number;
}

type Measure = "conn1" | "conn4" | "ka1" | "bulk";
type Results = Record<
  string,
  Partial<Record<Measure, RateResult | { gbps: number }>> & {
    rssMb?: number;
    rssLoadedMb?: number;
    gc?: Partial<Record<Measure, GcPauses>>;
  }
>;

/** `[pid:0x…]  1234 ms: Scavenge 5.5 (6.7) -> 5.1 (7.7) MB, pooled: 0 MB, 3.20 / 0.00 ms …`: the pause is 3.20. */
const GC_LINE =
  /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: (.+?) [\d.]+ \([\d.]+\) -> .*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;

const round1 = (n: number): number => Math.round(n * 10) / 10;

function gcPauses(text: string): GcPauses {
  const pauses = text
    .split("\n")
    .map((line) => GC_LINE.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ kind: match[1]!, ms: Number(match[2]) }));
  const byKind: GcPauses["byKind"] = {};
  for (const { kind, ms } of pauses) {
    const entry = byKind[kind] ?? { count: 0, totalMs: 0 };
    byKind[kind] = entry;
    entry.count += 1;
    entry.totalMs = round1(entry.totalMs + ms);
  }
  return {
    count: pauses.length,
    totalMs: round1(pauses.reduce((sum, pause) => sum + pause.ms, 0)),
    maxMs: Math.max(0, ...pauses.map((pause) => pause.ms)),
    byKind,
  };
}

/** Connections held open for the loaded-RSS reading. */
const OPEN_CONNECTIONS = 500;

/**
 * The proxy's RSS with OPEN_CONNECTIONS connections open through it (each past one request/response, so
 * every pair is relayed), read once they are all open; they close when netbench exits.
 */
async function rssWithOpenConnections(ns: string, address: string, pid: number): Promise<number> {
  const argv = [netbench, "hold", address, String(RR_PORT), String(OPEN_CONNECTIONS), "3"];
  const holder = spawn("ip", ["netns", "exec", ns, ...argv], {
    env: ENV,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => holder.once("exit", resolve));
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      holder.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out);
      });
      void exited.then((code) => reject(new Error(`hold exited ${code} before its connections were open`)));
    });
    const open = (JSON.parse(line) as { open: number }).open;
    if (open !== OPEN_CONNECTIONS) throw new Error(`hold: ${open} of ${OPEN_CONNECTIONS} connections open`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return rssMb(pid);
  } finally {
    await exited;
  }
}

/** What a file holds from `offset` on (the sidecar's log since a measure began). */
function readFrom(path: string, offset: number): string {
  return readFileSync(path).subarray(offset).toString("utf8");
}

function load(ns: string, address: string, measure: Exclude<Measure, "bulk">, proxyPid?: number): RateResult {
  const [mode, threads] = measure === "ka1" ? ["ka", 1] : ["conn", measure === "conn1" ? 1 : 4];
  const runs: RateResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const cpuBefore = cpuMs(proxyPid);
    const out = inNs(ns, [
      netbench,
      mode,
      address,
      String(RR_PORT),
      String(threads),
      String(SECONDS),
      String(MAX_REQUESTS),
    ]);
    const run = JSON.parse(out) as RateResult & { requests: number };
    if (proxyPid !== undefined) run.proxyCpuUs = ((cpuMs(proxyPid) - cpuBefore) * 1000) / run.requests;
    runs.push(run);
  }
  return {
    rate: median(runs.map((r) => r.rate)),
    p50_us: median(runs.map((r) => r.p50_us)),
    p99_us: median(runs.map((r) => r.p99_us)),
    p999_us: median(runs.map((r) => r.p999_us)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    ...(proxyPid === undefined
      ? {}
      : { proxyCpuUs: Math.round(median(runs.map((r) => r.proxyCpuUs ?? 0)) * 10) / 10 }),
  };
}

function bulk(ns: string, address: string, proxyPid?: number): { gbps: number; proxyCpuMsPerGiB?: number } {
  const runs: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const cpuBefore = cpuMs(proxyPid);
    const out = JSON.parse(inNs(ns, [netbench, "bulk", address, String(BULK_PORT), String(BULK_BYTES)])) as {
      gbps: number;
      bytes: number;
    };
    if (out.bytes !== BULK_BYTES) throw new Error(`bulk: got ${out.bytes} of ${BULK_BYTES} bytes`);
    runs.push(out.gbps);
    cpu.push(((cpuMs(proxyPid) - cpuBefore) * 1024 ** 3) / BULK_BYTES);
  }
  return {
    gbps: median(runs),
    ...(proxyPid === undefined ? {} : { proxyCpuMsPerGiB: Math.round(median(cpu)) }),
  };
}

function haproxyConfig(splice: boolean): string {
  return [
    "global",
    "  maxconn 6000",
    ...(splice ? [] : ["  nosplice"]),
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    ...(splice ? ["  option splice-auto"] : []),
    "frontend outbound",
    "  bind 0.0.0.0:15001",
    "  default_backend original_destination",
    "backend original_destination",
    "  server x 0.0.0.0:0",
    "",
  ].join("\n");
}

function spawnAsProxyUser(ns: string, argv: readonly string[], logFile: string): ChildProcess {
  const log = openSync(logFile, "w");
  return spawn(
    "nsenter",
    [`--net=/run/netns/${ns}`, `--setuid=${ENVOY_UID}`, `--setgid=${ENVOY_UID}`, "--", ...argv],
    { env: { PATH: "/usr/bin:/bin:/usr/sbin" }, stdio: ["ignore", log, log], cwd: "/" },
  );
}

async function waitListening(ns: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (inNs(ns, ["ss", "-Hltn", `sport = :${port}`]).trim() !== "") return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on ${port} in ${ns}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/**
 * Measures one target in a fresh pair of namespaces: TIME_WAIT sockets and conntrack entries left by the
 * previous target's tens of thousands of connections would otherwise slow the next one's connect().
 */
async function measure(target: string, install: string): Promise<Results[string]> {
  const lab = new Lab("osmt-sp");
  let proxy: ChildProcess | undefined;
  try {
    await lab.create();
    // Bounded TIME_WAIT / conntrack footprint for many short connections, inside our namespace only.
    inNs(lab.clientNs, ["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"]);
    inNs(lab.clientNs, ["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"]);
    inNs(lab.clientNs, ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"]);
    const server = lab.spawnIn(lab.serverNs, [
      netbench,
      "serve",
      "0.0.0.0",
      String(RR_PORT),
      String(BULK_PORT),
    ]);
    await server.waitForLine((line) => line === "ready");
    const configPath = lab.writeConfig({ enableEgress: true, meshEndpoints: [] });
    const address = target === "direct" ? EXCLUDED_V4 : EXTERNAL_V4;
    const logFile = join(lab.dir, `${target}.log`);
    if (target === "haproxy" || target === "haproxy-splice") {
      const cfg = join(lab.dir, `${target}.cfg`);
      writeFileSync(cfg, haproxyConfig(target === "haproxy-splice"), { mode: 0o644 });
      proxy = spawnAsProxyUser(lab.clientNs, ["haproxy", "-db", "-f", cfg], join(lab.dir, `${target}.log`));
    } else if (SIDECAR_TARGETS[target] !== undefined) {
      proxy = spawnAsProxyUser(
        lab.clientNs,
        [
          projectNode(install),
          "--trace-gc",
          ...SIDECAR_NODE_FLAGS,
          join(install, SIDECAR_BUNDLE),
          "run",
          "--config",
          configPath,
          ...SIDECAR_TARGETS[target]!,
          ...SIDECAR_ARGS,
        ],
        logFile,
      );
    } else if (target !== "direct") {
      throw new Error(`unknown target ${target}`);
    }
    if (proxy !== undefined) {
      await waitListening(lab.clientNs, 15001);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const entry: Results[string] = {};
    if (proxy?.pid !== undefined) entry.rssMb = rssMb(proxy.pid);
    const gc: Partial<Record<Measure, GcPauses>> = {};
    const measured = <T>(m: Measure, run: () => T): T => {
      const offset = target.startsWith("sidecar") ? statSync(logFile).size : undefined;
      const result = run();
      if (offset !== undefined) gc[m] = gcPauses(readFrom(logFile, offset));
      return result;
    };
    process.stderr.write(`${target}: new connections (1)…`);
    entry.conn1 = measured("conn1", () => load(lab.clientNs, address, "conn1", proxy?.pid));
    process.stderr.write(" (4)…");
    entry.conn4 = measured("conn4", () => load(lab.clientNs, address, "conn4", proxy?.pid));
    process.stderr.write(" keep-alive…");
    entry.ka1 = measured("ka1", () => load(lab.clientNs, address, "ka1", proxy?.pid));
    process.stderr.write(" 500 open…");
    if (proxy?.pid !== undefined)
      entry.rssLoadedMb = await rssWithOpenConnections(lab.clientNs, address, proxy.pid);
    process.stderr.write(" bulk…");
    entry.bulk = measured("bulk", () => bulk(lab.clientNs, address, proxy?.pid));
    if (target.startsWith("sidecar")) entry.gc = gc;
    process.stderr.write(" done\n");
    return entry;
  } finally {
    if (proxy !== undefined) await stop(proxy);
    await lab.destroy(); // also ends the netbench server (by PID)
  }
}

async function main(): Promise<void> {
  if (!isRoot()) throw new Error("bench:sidecar needs root (network namespaces)");
  buildNetbench();
  execFileSync(projectNode(), [join(root, "src/sidecar/bundle.ts")], { stdio: "ignore" }); // the sources as they are
  const install = prepareInstall();
  const results: Results = {};
  for (const target of TARGETS) results[target] = await measure(target, install);
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, "sidecar-results.json"), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
}

function gcCell(gc: Results[string]["gc"]): string {
  if (gc === undefined) return "-";
  return (["conn1", "conn4", "ka1", "bulk"] as const)
    .map((m) => {
      const p = gc[m];
      return p === undefined ? "-" : `${p.count} · ${p.totalMs} · ${p.maxMs}`;
    })
    .join(" / ");
}

function printTable(results: Results): void {
  const direct = results["direct"];
  const haproxy = results["haproxy"];
  const rateOf = (r: Results[string] | undefined, m: Exclude<Measure, "bulk">) =>
    (r?.[m] as RateResult | undefined)?.rate;
  const gbpsOf = (r: Results[string] | undefined) => (r?.bulk as { gbps: number } | undefined)?.gbps;
  const ratios = (
    target: string,
    value: number | undefined,
    d: number | undefined,
    h: number | undefined,
  ): string => {
    if (target === "direct" || value === undefined) return "";
    const parts = [
      d ? `${(value / d).toFixed(2)}×d` : "",
      h && target !== "haproxy" ? `${(value / h).toFixed(2)}×ha` : "",
    ];
    return ` (${parts.filter(Boolean).join(", ")})`;
  };
  const lines = [
    `RUNS=${RUNS} SECONDS_PER_RUN=${SECONDS} BULK_BYTES=${BULK_BYTES}; medians; ×d = ratio to direct, ×ha = to haproxy (no splice)`,
    "| target | new conn/s, 1 client | new conn/s, 4 clients | keep-alive req/s | bulk Gbit/s | latency µs p50/p99/p99.9, new conn | latency µs p50/p99/p99.9, keep-alive | proxy CPU µs/conn · µs/req · ms/GiB | RSS MB idle · 500 open | GC pauses n · total ms · max ms (new conn 1 · 4 · keep-alive · bulk) |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [target, r] of Object.entries(results)) {
    const cells = (["conn1", "conn4", "ka1"] as const).map((m) => {
      const value = rateOf(r, m);
      return `${Math.round(value ?? 0)}${ratios(target, value, rateOf(direct, m), rateOf(haproxy, m))}`;
    });
    const bulkValue = gbpsOf(r);
    const bulkCell = `${bulkValue?.toFixed(2)}${ratios(target, bulkValue, gbpsOf(direct), gbpsOf(haproxy))}`;
    const lat = (m: "conn1" | "ka1") => {
      const x = r[m] as RateResult;
      return `${x.p50_us}/${x.p99_us}/${x.p999_us}`;
    };
    const cpu =
      target === "direct"
        ? "-"
        : `${(r.conn1 as RateResult).proxyCpuUs} · ${(r.ka1 as RateResult).proxyCpuUs} · ${(r.bulk as { proxyCpuMsPerGiB?: number }).proxyCpuMsPerGiB}`;
    lines.push(
      `| ${target} | ${cells.join(" | ")} | ${bulkCell} | ${lat("conn1")} | ${lat("ka1")} | ${cpu} | ${r.rssMb ?? "-"} · ${r.rssLoadedMb ?? "-"} | ${gcCell(r.gc)} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();

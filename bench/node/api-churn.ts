/**
 * Pod churn through the whole stack: `osm mesh up` on a private bridge, then N pod create → Running → delete
 * cycles through the Kubernetes API (client-node), then `osm mesh down`; checks that no netns, veth or process
 * is left. Prints cycles/s and latency percentiles. Root only.
 *
 * The soak: `--meshed` runs `osm install` first and churns in a meshed namespace (each pod gets osm-init and the
 * sidecar from the injector pod's webhook); `--rss-every N` prints the daemon's RSS (VmRSS) every N cycles and
 * the growth from the middle cycle to the last.
 *
 *   node bench/node/api-churn.ts [--cycles 1000] [--meshed] [--rss-every 50]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { apiChurn, CHURN_SLEEP } from "../../test/e2e/mesh/api-churn.ts";
import { leftovers } from "../../test/netns/node/harness.ts";
import { countSleepers } from "../../test/support/mesh.ts";
import { freePort } from "../../test/support/poll.ts";

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = argv.indexOf(name);
  return at >= 0 ? Number(argv[at + 1]) : fallback;
};
const cycles = option("--cycles", 1000);
const meshed = argv.includes("--meshed");
const rssEvery = option("--rss-every", 0);
if (process.getuid?.() !== 0) {
  process.stderr.write("api-churn bench needs root (network namespaces)\n");
  process.exit(1);
}
const OSM = fileURLToPath(new URL("../../bin/osm", import.meta.url));
const PREFIX = "osmt-na-";
const dir = mkdtempSync(join(tmpdir(), "osmt-api-churn-"));
const stateDir = join(dir, "state");
const kubeconfig = join(dir, "kubeconfig");
const port = await freePort();
const osm = (...args: string[]) =>
  execFileSync(OSM, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, KUBECONFIG: kubeconfig },
  }).toString();
/** The daemon's resident set in MB, from /proc (its pid from the state directory). */
const daemonRssMb = () => {
  const pid = readFileSync(join(stateDir, "daemon.pid"), "utf8").trim();
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
};
osm(
  "mesh",
  "up",
  "--state-dir",
  stateDir,
  "--kubeconfig",
  kubeconfig,
  "--port",
  String(port),
  "--bridge",
  "osmt-nb2",
  "--name-prefix",
  PREFIX,
  "--subnet4",
  "203.0.113.224/27",
  "--subnet6",
  "2001:db8:1:4::/64",
  "--last-slot",
  "30",
);
const sleepers = (): number => countSleepers(CHURN_SLEEP);
const sleepersBefore = sleepers();
const started = Date.now();
const result: Awaited<ReturnType<typeof apiChurn>> = { runningMs: [], goneMs: [] };
const rss: [number, number][] = [];
try {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "churn" } } });
  if (meshed) {
    osm("install");
    osm("namespace", "add", "churn");
  }
  const chunk = rssEvery > 0 ? rssEvery : cycles;
  if (rssEvery > 0) rss.push([0, daemonRssMb()]);
  for (let done = 0; done < cycles; done += chunk) {
    const part = await apiChurn(kubeconfig, "churn", Math.min(chunk, cycles - done));
    result.runningMs.push(...part.runningMs);
    result.goneMs.push(...part.goneMs);
    if (rssEvery > 0) {
      rss.push([done + part.runningMs.length, daemonRssMb()]);
      process.stdout.write(`cycle ${rss.at(-1)?.[0]}: daemon RSS ${rss.at(-1)?.[1].toFixed(1)} MB\n`);
    }
  }
} finally {
  osm("mesh", "down", "--state-dir", stateDir, "--purge");
  rmSync(dir, { recursive: true, force: true });
}
const seconds = (Date.now() - started) / 1000;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]?.toFixed(1);
const left = await leftovers(PREFIX);
const extraProcesses = sleepers() - sleepersBefore;
process.stdout.write(
  `${cycles} API cycles in ${seconds.toFixed(1)} s = ${(cycles / seconds).toFixed(1)} cycles/s\n` +
    `create→Running ms: p50 ${pct(result.runningMs, 0.5)} p95 ${pct(result.runningMs, 0.95)} p99 ${pct(result.runningMs, 0.99)}\n` +
    `delete→gone ms:    p50 ${pct(result.goneMs, 0.5)} p95 ${pct(result.goneMs, 0.95)} p99 ${pct(result.goneMs, 0.99)}\n` +
    `left behind after down: netns/links ${left.length}, processes ${Math.max(0, extraProcesses)}\n`,
);
if (rss.length > 2) {
  const middle = rss.find(([c]) => c >= cycles / 2) ?? rss[0];
  const last = rss.at(-1);
  if (middle && last)
    process.stdout.write(
      `daemon RSS ${meshed ? "(meshed) " : ""}cycle ${middle[0]} → ${last[0]}: ${middle[1].toFixed(1)} → ${last[1].toFixed(1)} MB (${(((last[1] - middle[1]) / middle[1]) * 100).toFixed(1)} %)\n`,
    );
}
if (left.length > 0 || extraProcesses > 0) process.exitCode = 1;

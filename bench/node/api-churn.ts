/**
 * Pod churn through the whole stack: `osm mesh up` on a private bridge, then N pod create → Running → delete
 * cycles through the Kubernetes API (client-node), then `osm mesh down`; checks that no netns, veth or process
 * is left. Prints cycles/s and latency percentiles. Root only.
 *
 *   node bench/node/api-churn.ts [--cycles 1000]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { apiChurn } from "../../test/e2e/mesh/api-churn.ts";
import { leftovers } from "../../test/netns/node/harness.ts";
import { countSleepers } from "../../test/support/mesh.ts";
import { freePort } from "../../test/support/poll.ts";

const argv = process.argv.slice(2);
const i = argv.indexOf("--cycles");
const cycles = i >= 0 ? Number(argv[i + 1]) : 1000;
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
  execFileSync(OSM, args, { stdio: ["ignore", "pipe", "inherit"] }).toString();
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
const sleepers = countSleepers;
const sleepersBefore = sleepers();
const started = Date.now();
let result: Awaited<ReturnType<typeof apiChurn>> | undefined;
try {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "churn" } } });
  result = await apiChurn(kubeconfig, "churn", cycles);
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
if (left.length > 0 || extraProcesses > 0) process.exitCode = 1;

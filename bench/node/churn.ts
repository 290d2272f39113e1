/**
 * Pod churn: N create → Running → delete cycles (default 1,000) on a private test bridge, then checks that no
 * netns, veth, process or IPAM slot is left. Prints cycles/s and latency percentiles. Root only.
 *
 *   node bench/node/churn.ts [--cycles 1000] [--parallel 4]
 */
import type { V1Pod } from "@kubernetes/client-node";
import {
  alive,
  allRunning,
  destroyRuntime,
  leftovers,
  makePod,
  newRuntime,
  TEST_NETWORK,
  waitFor,
} from "../../test/netns/node/harness.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const cycles = opt("--cycles", 1000);
const parallel = Math.max(1, Math.min(opt("--parallel", 4), 32));
if (process.getuid?.() !== 0) {
  process.stderr.write("churn bench needs root (network namespaces)\n");
  process.exit(1);
}

const { runtime, stateDir } = newRuntime({
  ...TEST_NETWORK,
  bridge: "osmt-nb1",
  namePrefix: "osmt-nc-",
  subnet4: "203.0.113.192/27",
  lastSlot: 30,
  subnet6: "2001:db8:1:3::/64",
});
await runtime.start();
const createMs: number[] = [];
const deleteMs: number[] = [];
const pids: number[] = [];
let next = 0;
const started = Date.now();
try {
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < cycles) {
        next++;
        const pod: V1Pod = makePod({
          containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }],
        });
        const uid = pod.metadata?.uid ?? "";
        const t0 = performance.now();
        runtime.runPod(pod);
        const v = await waitFor(runtime, uid, allRunning, "running", 30_000);
        const t1 = performance.now();
        if (pids.length < 5000) pids.push(...(await runtime.network.pidsIn(v.sandbox ?? "")));
        await runtime.killPod(uid, 0);
        deleteMs.push(performance.now() - t1);
        createMs.push(t1 - t0);
      }
    }),
  );
} finally {
  await destroyRuntime(runtime, stateDir);
}
const seconds = (Date.now() - started) / 1000;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]?.toFixed(1);
const left = await leftovers("osmt-nc-");
const survivors = pids.filter(alive);
process.stdout.write(
  `${cycles} cycles (parallel ${parallel}) in ${seconds.toFixed(1)} s = ${(cycles / seconds).toFixed(1)} cycles/s\n` +
    `create→Running ms: p50 ${pct(createMs, 0.5)} p95 ${pct(createMs, 0.95)} p99 ${pct(createMs, 0.99)}\n` +
    `delete ms:         p50 ${pct(deleteMs, 0.5)} p95 ${pct(deleteMs, 0.95)} p99 ${pct(deleteMs, 0.99)}\n` +
    `left behind: netns/links ${left.length}, processes ${survivors.length}\n`,
);
if (left.length > 0 || survivors.length > 0) process.exitCode = 1;

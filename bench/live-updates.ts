/**
 * Live interception updates at scale (numbers, not pass/fail): N pod network namespaces, each holding our nft
 * table with a list of L distinct `/32` exclusions that never aggregate (test/support/exclusions.ts). Per
 * round, in every pod, as the node agent does it (`syncInterception` knowing the plan last applied, with the
 * agent's concurrency, LIVE_PARALLEL):
 *   - one entry added, then removed (one element transaction, nothing listed);
 *   - a full replacement of the list by another L entries, and back (`flush set` + `add element`, one
 *     transaction), in the first `--replace-pods` pods (a per-pod cost; all 100 would take minutes);
 *   - the baseline of the same round: the one-entry change through the read-back path (list the table, diff,
 *     transaction, list again: what the agent did before it knew the plan applied), on a few pods only.
 * Meanwhile a few pods (`--sampled`) connect to an intercepted address all the time (a paced client; a
 * listener on the sidecar's port 15001 stands in for the sidecar): their connect rate in the second before each
 * change and during it, and any connection that failed.
 *
 * Runs as root, unlocked: namespaces `osmt-blu-<i>` of its own (addresses 192.0.2.0/24 on a veth pair inside
 * them only), all deleted at the end, also on SIGINT/SIGTERM.
 * Run: node bench/live-updates.ts [--pods=100] [--list=50000] [--rounds=5] [--readback-pods=4] [--sampled=4]
 *      [--replace-pods=20]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createProcessRunner } from "../src/edge/command-runner.ts";
import { NftBatch, nftBatchPath, nftBatchRunner } from "../src/edge/nft-batch.ts";
import {
  buildPlan,
  ElementSyncCache,
  type InterceptionPlan,
  renderNftJson,
  syncInterception,
  verifyInterception,
} from "../src/interception/index.ts";
import { LIVE_PARALLEL } from "../src/local/node/live-interception.ts";
import { buildTestPolicy } from "../test/golden/interception/policy-builder.ts";
import { ruleOnlyExclusion } from "../test/support/exclusions.ts";

const arg = (name: string, fallback: string) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const pods = arg("pods", "100");
const list = arg("list", "50000");
const rounds = arg("rounds", "5");
const readbackPods = Math.min(pods, arg("readback-pods", "4"));
const sampled = Math.min(pods, arg("sampled", "4"));
const replacePods = Math.min(pods, arg("replace-pods", "20"));

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const planOf = (entries: string[]) =>
  buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: entries }), { ipv6: true });

const base = Array.from({ length: list }, (_, i) => ruleOnlyExclusion(i));
const plans = {
  base: planOf(base),
  plusOne: planOf([...base, "203.0.113.77/32"]),
  other: planOf(Array.from({ length: list }, (_, i) => ruleOnlyExclusion(list + i))),
};
const names = Array.from({ length: pods }, (_, i) => `osmt-blu-${i}`);
const batch = new NftBatch();
if (!batch.available) throw new Error(`${nftBatchPath()} is not built: npm run build`);
/** Per pod: the agent's runner (the nft helper), and a process per command (nsenter + nft, the baseline). */
const engines = names.map((n) => ({
  runner: nftBatchRunner(batch, `/run/netns/${n}`, createProcessRunner({ netns: `/run/netns/${n}` })),
  variant: "nftables" as const,
}));
const processEngines = names.map((n) => ({
  runner: createProcessRunner({ netns: `/run/netns/${n}` }),
  variant: "nftables" as const,
}));

/** Runs `each` for pods [0, count), `parallel` at a time; returns when it started and ended, in ms. */
async function acrossPods(
  each: (i: number) => Promise<unknown>,
  count = pods,
  parallel = LIVE_PARALLEL,
): Promise<{ count: number; total: number; start: number; end: number }> {
  const start = Date.now();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      for (let i = next++; i < count; i = next++) await each(i);
    }),
  );
  return { count, total: performance.now() - t0, start, end: Date.now() };
}

const cache = new ElementSyncCache();
const sync = (i: number, plan: InterceptionPlan, applied?: InterceptionPlan, engine = engines[i]!) =>
  syncInterception(plan, engine, applied ? { applied, cache } : undefined).then((o) => {
    if (o.how === "unchanged") throw new Error(`pod ${i}: nothing changed`);
  });

/** In a pod: a listener on 15001 (the sidecar's port) and 200 connects/s to an intercepted address. */
const CLIENT = `const net = require("node:net");
let ok = 0, failed = 0;
net.createServer((s) => s.destroy()).listen(15001, "0.0.0.0", () => {
  setInterval(() => {
    for (let i = 0; i < 2; i++) {
      const c = net.connect({ host: "192.0.2.200", port: 80, timeout: 2000 });
      c.on("connect", () => { ok++; c.destroy(); });
      c.on("timeout", () => { failed++; c.destroy(); });
      c.on("error", () => { failed++; });
    }
  }, 10);
  setInterval(() => process.stdout.write(Date.now() + " " + ok + " " + failed + "\\n"), 20);
});`;

interface Sample {
  readonly at: number;
  readonly ok: number;
  readonly failed: number;
}
const clients: { child: ChildProcess; samples: Sample[] }[] = [];

/** Connects per second and failures of every sampled pod between two instants (summed over the pods). */
function connectRate(from: number, to: number): { perSecond: number; failed: number } {
  let ok = 0;
  let failed = 0;
  for (const { samples } of clients) {
    const at = (t: number) => samples.findLast((s) => s.at <= t) ?? samples[0]!;
    ok += at(to).ok - at(from).ok;
    failed += at(to).failed - at(from).failed;
  }
  return { perSecond: (ok / Math.max(1, to - from)) * 1000, failed };
}

const tableFile = join(mkdtempSync(join(tmpdir(), "osmt-blu-")), "table.json");
const cleanup = () => {
  batch.close();
  for (const c of clients) c.child.kill();
  rmSync(dirname(tableFile), { recursive: true, force: true });
  for (const n of names) {
    try {
      execFileSync("ip", ["netns", "del", n], { stdio: "ignore" });
    } catch {
      // not created
    }
  }
};
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });

for (const n of names) {
  try {
    execFileSync("ip", ["netns", "del", n], { stdio: "ignore" });
  } catch {
    // none left from an earlier run
  }
}
const rows: Record<string, { perPod: number[]; total: number[]; rate?: number[]; failed?: number[] }> = {};
const rateBefore: number[] = [];
try {
  // From a file: nft opens `-` as /dev/stdin, which a socket (Node's stdio) is not.
  writeFileSync(tableFile, renderNftJson(plans.base));
  const load = await acrossPods(async (i) => {
    execFileSync("ip", ["netns", "add", names[i]!]);
    const r = await engines[i]!.runner.run(["nft", "-j", "-f", tableFile]);
    if (r.code !== 0) throw new Error(`pod ${i}: ${r.stderr}`);
  });
  const drift = await verifyInterception(plans.base, engines[0]!);
  if (drift.length > 0) throw new Error(`pod 0 does not hold the plan: ${drift.slice(0, 3).join("; ")}`);
  console.log(`${pods} pods loaded with ${list} exclusions in ${(load.total / 1000).toFixed(1)} s`);
  for (let i = 0; i < sampled; i++) {
    const ns = names[i]!;
    for (const cmd of [
      ["link", "set", "lo", "up"],
      ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
      ["addr", "add", "192.0.2.1/24", "dev", "d0"],
      ["link", "set", "d0", "up"],
      ["link", "set", "d1", "up"],
    ])
      execFileSync("ip", ["-n", ns, ...cmd]);
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", CLIENT], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const samples: Sample[] = [];
    let partial = "";
    child.stdout!.on("data", (b: Buffer) => {
      const lines = (partial + b.toString()).split("\n");
      partial = lines.pop()!;
      for (const l of lines) {
        const [at, ok, failed] = l.split(" ").map(Number);
        samples.push({ at: at!, ok: ok!, failed: failed! });
      }
    });
    clients.push({ child, samples });
  }
  await new Promise((r) => setTimeout(r, 2000));

  const change = async (key: string, run: () => ReturnType<typeof acrossPods>) => {
    await new Promise((r) => setTimeout(r, 1000));
    const r = await run();
    // The second from the change's start (a change may take less than one sampling period), once sampled.
    const to = Math.max(r.end, r.start + 1000);
    await new Promise((resolve) => setTimeout(resolve, to + 200 - Date.now()));
    const during = connectRate(r.start, to);
    rateBefore.push(connectRate(r.start - 1000, r.start).perSecond);
    rows[key] ??= { perPod: [], total: [], rate: [], failed: [] };
    rows[key].perPod.push(r.total / r.count);
    rows[key].total.push(r.total);
    rows[key].rate!.push(during.perSecond);
    rows[key].failed!.push(during.failed);
  };
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await change("one entry added", () => acrossPods((i) => sync(i, plans.plusOne, plans.base)));
    await change("one entry removed", () => acrossPods((i) => sync(i, plans.base, plans.plusOne)));
    await change(`full replacement of the ${list} entries (${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.other, plans.base), replacePods),
    );
    await change(`full replacement back (${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.base, plans.other), replacePods),
    );
    await change("one entry added, a process per pod (baseline)", () =>
      acrossPods((i) => sync(i, plans.plusOne, plans.base, processEngines[i]!)),
    );
    await acrossPods((i) => sync(i, plans.base, plans.plusOne, processEngines[i]!));
    const read = await acrossPods((i) => sync(i, plans.plusOne), readbackPods);
    await acrossPods((i) => sync(i, plans.base), readbackPods);
    const key = `one entry added, read-back path (${readbackPods} pods)`;
    rows[key] ??= { perPod: [], total: [] };
    rows[key].perPod.push(read.total / readbackPods);
    rows[key].total.push(read.total);
    ratios.push(
      rows["one entry added"]!.total.at(-1)! /
        rows["one entry added, a process per pod (baseline)"]!.total.at(-1)!,
    );
  }
  console.log(
    `\n${pods} pods, ${list} exclusions, ${rounds} rounds, ${LIVE_PARALLEL} pods at a time; ` +
      `connect rate summed over ${sampled} pods, 200/s offered each\n`,
  );
  console.log("| change | per pod, ms (all / pods) | all pods, ms | connects/s during | failed connects |");
  console.log("| ------ | ----------- | ------------ | ----------------- | --------------- |");
  for (const [key, v] of Object.entries(rows)) {
    const total = median(v.total).toFixed(0);
    const rate = v.rate ? median(v.rate).toFixed(0) : "-";
    const failed = v.failed ? String(v.failed.reduce((a, b) => a + b, 0)) : "-";
    console.log(`| ${key} | ${median(v.perPod).toFixed(1)} | ${total} | ${rate} | ${failed} |`);
  }
  console.log(`\nconnects/s in the second before each change (median): ${median(rateBefore).toFixed(0)}`);
  console.log(`one entry added to all pods, helper / a process per pod: ${median(ratios).toFixed(3)}×`);
} finally {
  cleanup();
}

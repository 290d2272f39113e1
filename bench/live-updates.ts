/**
 * Live interception updates at scale (numbers, not pass/fail): N pod network namespaces, each holding our nft
 * table with a list of L distinct `/32` exclusions that never aggregate (test/support/exclusions.ts). Per
 * round, in every pod, as the node agent does it (`syncInterception` knowing the plan last applied, with the
 * agent's concurrency, LIVE_PARALLEL):
 *   - one entry added, then removed (one element transaction, nothing listed);
 *   - a full replacement of the list by another L entries, and back (`flush set` + `add element`, one
 *     transaction, sent as a netlink batch built once for all pods), in the first `--replace-pods` pods;
 *   - baselines of the same round: the one-entry change with a process per pod, and through the read-back
 *     path (list the table, diff, transaction, list again), on a few pods only; the full replacement as nft
 *     text through libnftables (parsed per pod: what the agent did before the netlink batch);
 *   - a control for the connect rate: no nft change, two busy processes for as long as the one-entry change
 *     took (does the rate dip because the update shares the two cores, or because of what it does?);
 *   - the drift checks every pod gets every 5 s, across all pods: the nf_tables generation alone (nothing
 *     committed since the pod was known clean), the cheap check when it moved (chains with `nft -t`, set
 *     digests dumped over netlink), and the chains-only check the agent made before (`nft -t`);
 *   - the iptables backends' full replacement (`--iptables-pods`, one namespace per variant holding OSM's
 *     one-rule-per-CIDR chain): one `*-restore` of our chains, with the read-back before and after.
 * Meanwhile a few pods (`--sampled`) connect to an intercepted address all the time (a paced client; a
 * listener on the sidecar's port 15001 stands in for the sidecar): their connect rate in the second before each
 * change and during it, and any connection that failed.
 *
 * Runs as root, unlocked: namespaces `osmt-blu-<i>` of its own (addresses 192.0.2.0/24 on a veth pair inside
 * them only), all deleted at the end, also on SIGINT/SIGTERM.
 * Run: node bench/live-updates.ts [--pods=100] [--list=50000] [--rounds=5] [--readback-pods=4] [--sampled=4]
 *      [--replace-pods=20] [--iptables-pods=1]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createProcessRunner } from "../src/edge/command-runner.ts";
import { NftBatch, nftBatchNetlink, nftBatchPath, nftBatchRunner } from "../src/edge/nft-batch.ts";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  checkDriftCheaply,
  ElementSyncCache,
  type EngineOptions,
  type InterceptionPlan,
  renderNftJson,
  skeletonDrift,
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
const iptablesPods = arg("iptables-pods", "1");

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
const iptablesVariants: BackendVariant[] = ["iptables-legacy", "iptables-nft"];
const iptablesNames = iptablesVariants.flatMap((v) =>
  Array.from({ length: iptablesPods }, (_, i) => ({ variant: v, name: `osmt-blu-${v.slice(9)}-${i}` })),
);
const batch = new NftBatch();
/** The same helpers with big batches on all 4 processes at once (the kernel applies one without yielding). */
const batchAllAtOnce = new NftBatch(undefined, 4, 4);
if (!batch.available) throw new Error(`${nftBatchPath()} is not built: npm run build`);
/**
 * Per pod: the agent's engine (the nft helper, its netlink path included), the same without the netlink path
 * (element changes as nft text through libnftables: the baseline), and a process per command (nsenter + nft).
 */
const engines = names.map((n) => ({
  runner: nftBatchRunner(batch, `/run/netns/${n}`, createProcessRunner({ netns: `/run/netns/${n}` })),
  variant: "nftables" as const,
  netlink: nftBatchNetlink(batch, `/run/netns/${n}`),
}));
const textEngines = engines.map(({ runner, variant }) => ({ runner, variant }));
const allAtOnceEngines = names.map((n, i) => ({
  runner: engines[i]!.runner,
  variant: "nftables" as const,
  netlink: nftBatchNetlink(batchAllAtOnce, `/run/netns/${n}`),
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
const sync = (
  i: number,
  plan: InterceptionPlan,
  applied?: InterceptionPlan,
  engine: EngineOptions = engines[i]!,
) =>
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
  batchAllAtOnce.close();
  for (const c of clients) c.child.kill();
  rmSync(dirname(tableFile), { recursive: true, force: true });
  for (const n of [...names, ...iptablesNames.map((p) => p.name)]) {
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

for (const n of [...names, ...iptablesNames.map((p) => p.name)]) {
  try {
    execFileSync("ip", ["netns", "del", n], { stdio: "ignore" });
  } catch {
    // none left from an earlier run
  }
}
const rows: Record<
  string,
  { perPod: number[]; total: number[]; rate?: number[]; failed?: number[]; ratio?: number[] }
> = {};
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
  for (const { variant, name } of iptablesNames) {
    execFileSync("ip", ["netns", "add", name]);
    await applyInterception(plans.base, {
      runner: createProcessRunner({ netns: `/run/netns/${name}` }),
      variant,
    });
  }
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
    const before = connectRate(r.start - 1000, r.start).perSecond;
    rateBefore.push(before);
    rows[key] ??= { perPod: [], total: [], rate: [], failed: [], ratio: [] };
    rows[key].ratio!.push(during.perSecond / before);
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
    await change(`full replacement, big batches on 4 helpers at once (baseline, ${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.other, plans.base, allAtOnceEngines[i]!), replacePods),
    );
    await change(`full replacement back, 4 at once (baseline, ${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.base, plans.other, allAtOnceEngines[i]!), replacePods),
    );
    await change(`full replacement as nft text, libnftables (baseline, ${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.other, plans.base, textEngines[i]!), replacePods),
    );
    await change(`full replacement back as nft text (baseline, ${replacePods} pods)`, () =>
      acrossPods((i) => sync(i, plans.base, plans.other, textEngines[i]!), replacePods),
    );
    const oneEntry = rows["one entry added"]!.total.at(-1)!;
    await change("no change: 2 busy processes for as long as one entry took (control)", async () => {
      const start = Date.now();
      const t0 = performance.now();
      const busy = `const end = Date.now() + ${Math.round(oneEntry)}; while (Date.now() < end);`;
      await Promise.all(
        [0, 1].map(
          () =>
            new Promise((resolve) =>
              spawn(process.execPath, ["-e", busy], { stdio: "ignore" }).on("exit", resolve),
            ),
        ),
      );
      return { count: pods, total: performance.now() - t0, start, end: Date.now() };
    });
    // The drift checks of every pod, as the agent makes them every 5 s.
    for (const [key, check] of [
      [
        "drift check: nf_tables generation only (nothing committed)",
        (i: number) => engines[i]!.netlink!.generation(),
      ],
      [
        "drift check: chains and set digests (generation moved)",
        (i: number) =>
          checkDriftCheaply(plans.base, engines[i]!).then((o) => {
            if (o?.how !== "unchanged") throw new Error(`pod ${i}: drift ${JSON.stringify(o)}`);
          }),
      ],
      [
        "drift check: chains only, `nft -t list ruleset`",
        (i: number) => skeletonDrift(plans.base, engines[i]!),
      ],
    ] as const) {
      const r = await acrossPods(check);
      rows[key] ??= { perPod: [], total: [] };
      rows[key].perPod.push(r.total / r.count);
      rows[key].total.push(r.total);
    }
    for (const { variant, name } of iptablesNames) {
      const engine = { runner: createProcessRunner({ netns: `/run/netns/${name}` }), variant };
      for (const [key, from, to] of [
        [
          `full replacement, ${variant} (one *-restore of our chains, read back before and after)`,
          plans.base,
          plans.other,
        ],
        [`full replacement back, ${variant}`, plans.other, plans.base],
      ] as const) {
        const t0 = performance.now();
        const o = await syncInterception(to, engine);
        if (o.how !== "replaced") throw new Error(`${name}: ${o.how}`);
        void from;
        rows[key] ??= { perPod: [], total: [] };
        rows[key].perPod.push(performance.now() - t0);
        rows[key].total.push(performance.now() - t0);
      }
    }
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
  // Every change above ended where it started: the kernels hold the base plan, element for element.
  for (const i of [0, pods - 1]) {
    const drift = await verifyInterception(plans.base, engines[i]!);
    if (drift.length > 0) throw new Error(`pod ${i} does not hold the plan: ${drift.slice(0, 3).join("; ")}`);
  }
  console.log(
    `\n${pods} pods, ${list} exclusions, ${rounds} rounds, ${LIVE_PARALLEL} pods at a time; ` +
      `connect rate summed over ${sampled} pods, 200/s offered each\n`,
  );
  console.log(
    "| change | per pod, ms (all / pods) | all pods, ms | connects/s during (× the second before) | failed connects |",
  );
  console.log("| ------ | ----------- | ------------ | ----------------- | --------------- |");
  for (const [key, v] of Object.entries(rows)) {
    const total = median(v.total).toFixed(0);
    const rate = v.rate ? `${median(v.rate).toFixed(0)} (${median(v.ratio!).toFixed(2)}×)` : "-";
    const failed = v.failed ? String(v.failed.reduce((a, b) => a + b, 0)) : "-";
    console.log(`| ${key} | ${median(v.perPod).toFixed(1)} | ${total} | ${rate} | ${failed} |`);
  }
  console.log(`\nconnects/s in the second before each change (median): ${median(rateBefore).toFixed(0)}`);
  console.log(`one entry added to all pods, helper / a process per pod: ${median(ratios).toFixed(3)}×`);
} finally {
  cleanup();
}

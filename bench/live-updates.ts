/**
 * Live interception updates at scale (numbers, not pass/fail): N pod network namespaces (no processes: the
 * rules are what is measured), each holding our nft table with a list of L distinct `/32` exclusions that
 * never aggregate (test/support/exclusions.ts). Per round:
 *   - one entry added, then removed, in every pod, as the node agent does it (`syncInterception` with the
 *     plan last applied: one element transaction, no listing), 4 pods at a time like the agent;
 *   - the same change through the read-back path (no plan known: list the table, diff, transaction, list
 *     again): the baseline of the same run, and what the periodic drift check costs;
 *   - a full replacement of the list by another L entries per pod (one `nft -j -f` batch, then verified).
 * Medians over rounds; the ratio is fast path / read-back path in the same round.
 *
 * Runs as root, unlocked: namespaces `osmt-blu-<i>` of its own, all deleted at the end.
 * Run: node bench/live-updates.ts [--pods=20] [--list=50000] [--rounds=5]
 */
import { execFileSync } from "node:child_process";
import { createProcessRunner } from "../src/edge/command-runner.ts";
import {
  applyInterception,
  buildPlan,
  ElementSyncCache,
  type InterceptionPlan,
  syncInterception,
} from "../src/interception/index.ts";
import { buildTestPolicy } from "../test/golden/interception/policy-builder.ts";
import { ruleOnlyExclusion } from "../test/support/exclusions.ts";

const arg = (name: string, fallback: string) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const pods = arg("pods", "20");
const list = arg("list", "50000");
const rounds = arg("rounds", "5");
const PARALLEL = 4;

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
const engines = names.map((n) => ({
  runner: createProcessRunner({ netns: `/run/netns/${n}` }),
  variant: "nftables" as const,
}));

/** Runs `each` for every pod, PARALLEL at a time; returns each pod's ms and the total ms. */
async function acrossPods(
  each: (i: number) => Promise<unknown>,
): Promise<{ perPod: number[]; total: number }> {
  const perPod: number[] = new Array(pods);
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let i = next++; i < pods; i = next++) {
        const t = performance.now();
        await each(i);
        perPod[i] = performance.now() - t;
      }
    }),
  );
  return { perPod, total: performance.now() - start };
}

const cache = new ElementSyncCache();
const sync = (i: number, plan: InterceptionPlan, applied?: InterceptionPlan) =>
  syncInterception(plan, engines[i]!, applied ? { applied, cache } : undefined).then((o) => {
    if (o.how === "unchanged") throw new Error(`pod ${i}: nothing changed`);
  });

const cleanup = () => {
  for (const n of names) {
    try {
      execFileSync("ip", ["netns", "del", n], { stdio: "ignore" });
    } catch {
      // not created
    }
  }
};

cleanup();
const rows: Record<string, { perPod: number[]; total: number[] }> = {};
const record = (key: string, r: { perPod: number[]; total: number }) => {
  rows[key] ??= { perPod: [], total: [] };
  rows[key].perPod.push(median(r.perPod));
  rows[key].total.push(r.total);
};
try {
  for (const n of names) execFileSync("ip", ["netns", "add", n]);
  const load = await acrossPods((i) => applyInterception(plans.base, engines[i]!));
  console.log(
    `${pods} pods loaded with ${list} exclusions: median ${median(load.perPod).toFixed(0)} ms per pod`,
  );
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const addFast = await acrossPods((i) => sync(i, plans.plusOne, plans.base));
    const removeFast = await acrossPods((i) => sync(i, plans.base, plans.plusOne));
    const addRead = await acrossPods((i) => sync(i, plans.plusOne));
    const removeRead = await acrossPods((i) => sync(i, plans.base));
    const replace = await acrossPods((i) => applyInterception(r % 2 ? plans.base : plans.other, engines[i]!));
    if (r % 2 === 0) await acrossPods((i) => applyInterception(plans.base, engines[i]!));
    record("one entry added (agent path)", addFast);
    record("one entry removed (agent path)", removeFast);
    record("one entry added (read-back path)", addRead);
    record("one entry removed (read-back path)", removeRead);
    record(`full replacement of the ${list} entries`, replace);
    ratios.push(median(addFast.perPod) / median(addRead.perPod));
  }
  console.log(`\n${pods} pods, ${list} exclusions, ${rounds} rounds, ${PARALLEL} pods at a time\n`);
  console.log("| change | per pod, ms (median) | all pods, ms (median) |");
  console.log("| ------ | -------------------- | --------------------- |");
  for (const [key, v] of Object.entries(rows)) {
    console.log(`| ${key} | ${median(v.perPod).toFixed(1)} | ${median(v.total).toFixed(0)} |`);
  }
  console.log(`\nagent path / read-back path per pod (one entry added): ${median(ratios).toFixed(3)}×`);
} finally {
  cleanup();
}

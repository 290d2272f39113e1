/**
 * Interception benchmark (numbers, not pass/fail): OSM's one-rule-per-CIDR chain (iptables-legacy and
 * iptables-nft) vs our nft sets, for N excluded CIDRs. Run as root: `npm run bench:interception`
 * (or `node bench/interception/run.ts [--quick] [--only=nftables|iptables-legacy|iptables-nft] [--sizes=0,50000]`). Prints a Markdown table.
 *
 * Setup: the two-namespace lab of test/netns/interception (documentation addresses, removed afterwards).
 * The excluded list is N distinct non-adjacent /32s from the benchmarking range 198.18.0.0/15 (rule entries
 * only, never contacted) followed by the probed server 203.0.113.10/32, so every new connection walks the
 * whole list and then goes direct to the server; N = 0 is the server's entry alone.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createProcessRunner } from "../../src/edge/command-runner.ts";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  cleanupInterception,
  renderNftJson,
  renderRestorePayload,
  updateNftElements,
} from "../../src/interception/index.ts";
import { parseCidr } from "../../src/net/index.ts";
import { buildTestPolicy } from "../../test/golden/interception/policy-builder.ts";
import { createLab } from "../../test/netns/interception/lab.ts";

const quick = process.argv.includes("--quick");
const sizesArg = process.argv.find((a) => a.startsWith("--sizes="))?.slice("--sizes=".length);
const SIZES = sizesArg ? sizesArg.split(",").map(Number) : quick ? [0, 1000] : [0, 1000, 10_000, 50_000];
const RUNS = quick ? 3 : 5;
const COUNT = quick ? 300 : 3000;
const SERVER = "203.0.113.10";
const RATE = fileURLToPath(new URL("./connect-rate.ts", import.meta.url));
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
const ALL_MODES: { name: string; variant: BackendVariant }[] = [
  { name: "OSM chain, iptables-legacy", variant: "iptables-legacy" },
  { name: "OSM chain, iptables-nft", variant: "iptables-nft" },
  { name: "osm-ts nft sets", variant: "nftables" },
];
const MODES = ALL_MODES.filter((m) => only === undefined || m.variant === only);

if (process.getuid?.() !== 0) {
  process.stderr.write("bench:interception needs root (it creates network namespaces)\n");
  process.exit(1);
}

function excluded(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = i * 2;
    out.push(`198.${18 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}/32`);
  }
  out.push(`${SERVER}/32`);
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

const scratch = mkdtempSync(join(tmpdir(), "osmt-ic-bench-"));
const JSON_FILE = join(scratch, "ruleset.json");
const lab = await createLab("b");
const runner = createProcessRunner({ netns: lab.clientPath });
const rows: string[][] = [];
interface Sample {
  program: number[];
  engine: number;
  programCpu: number[];
  c1: number[];
  c4: number[];
  c1cpu: number[];
  c4cpu: number[];
  add: number[];
  remove: number[];
}
const samples = new Map<string, Sample>();
const key = (variant: string, n: number) => `${variant}/${n}`;

function rate(concurrency: number): [number, number] {
  const out = execFileSync(
    "ip",
    ["netns", "exec", lab.client, process.execPath, RATE, SERVER, "80", String(COUNT), String(concurrency)],
    { encoding: "utf8" },
  );
  const [wall, cpu] = out.trim().split(" ").map(Number);
  return [wall!, cpu!];
}

/** Programs the plan from clean; returns [wall ms, CPU ms of the programming process (GNU time, 10 ms)]. */
async function program(
  variant: BackendVariant,
  plan: ReturnType<typeof buildPlan>,
): Promise<[number, number]> {
  await cleanupInterception({ runner, variant });
  // GNU time (apt package `time`) gives the CPU figure; without it the column shows only wall time.
  const timed = existsSync("/usr/bin/time") ? ["/usr/bin/time", "-f", "cpu %U %S"] : [];
  // nft: what applyInterception sends, the JSON batch from a file (written before the clock starts).
  writeFileSync(JSON_FILE, renderNftJson(plan));
  const t0 = process.hrtime.bigint();
  const res =
    variant === "nftables"
      ? await runner.run([...timed, "nft", "-j", "-f", JSON_FILE])
      : await runner.run(
          [...timed, `iptables-${variant === "iptables-legacy" ? "legacy" : "nft"}-restore`, "--noflush"],
          {
            stdin: renderRestorePayload(plan.iptables.v4),
          },
        );
  const took = ms(t0);
  if (res.code !== 0) throw new Error(`programming failed: ${res.stderr}`);
  const m = /cpu ([\d.]+) ([\d.]+)/.exec(res.stderr);
  return [took, m ? (Number(m[1]) + Number(m[2])) * 1000 : Number.NaN];
}

async function updateOne(variant: BackendVariant, s: Sample): Promise<void> {
  const entry = "198.19.255.255/32";
  let t0: bigint;
  if (variant === "nftables") {
    t0 = process.hrtime.bigint();
    await updateNftElements(runner, { list: "exclusions", add: [parseCidr(entry)] });
    s.add.push(ms(t0));
    t0 = process.hrtime.bigint();
    await updateNftElements(runner, { list: "exclusions", remove: [parseCidr(entry)] });
    s.remove.push(ms(t0));
    return;
  }
  // OSM's only way is a new init script; the cheapest chain edit is one rule in place.
  const tool = variant === "iptables-legacy" ? "iptables-legacy" : "iptables-nft";
  const rule = ["-d", entry, "-j", "RETURN"];
  t0 = process.hrtime.bigint();
  await runner.run([tool, "-t", "nat", "-I", "OSM_PROXY_OUTBOUND", "5", ...rule]);
  s.add.push(ms(t0));
  t0 = process.hrtime.bigint();
  await runner.run([tool, "-t", "nat", "-D", "OSM_PROXY_OUTBOUND", ...rule]);
  s.remove.push(ms(t0));
}

try {
  const plans = new Map(
    SIZES.map((n) => [n, buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: excluded(n) }))]),
  );
  // Rounds interleave every size and backend, so a load spike on this shared machine hits them alike.
  for (let round = 0; round < RUNS; round++) {
    for (const mode of MODES) {
      for (const n of SIZES) {
        const plan = plans.get(n)!;
        const o = { runner, variant: mode.variant };
        let s = samples.get(key(mode.variant, n));
        if (!s) {
          // The engine's whole apply (read back, diff, test, restore, verify), once.
          await cleanupInterception(o);
          const t0 = process.hrtime.bigint();
          await applyInterception(plan, o);
          s = {
            program: [],
            programCpu: [],
            engine: ms(t0),
            c1: [],
            c4: [],
            c1cpu: [],
            c4cpu: [],
            add: [],
            remove: [],
          };
          samples.set(key(mode.variant, n), s);
        }
        const [wall, cpu] = await program(mode.variant, plan);
        s.program.push(wall);
        s.programCpu.push(cpu);
        const [c1, c1cpu] = rate(1);
        const [c4, c4cpu] = rate(4);
        s.c1.push(c1);
        s.c1cpu.push(c1cpu);
        s.c4.push(c4);
        s.c4cpu.push(c4cpu);
        if (n === SIZES[SIZES.length - 1]) await updateOne(mode.variant, s);
        await cleanupInterception(o);
        process.stderr.write(`round ${round + 1}: ${mode.name} N=${n} done\n`);
      }
    }
  }
  for (const mode of MODES) {
    const base = samples.get(key(mode.variant, 0))!;
    for (const n of SIZES) {
      const s = samples.get(key(mode.variant, n))!;
      // Ratio per round (to the same round's N = 0, measured seconds apart), then the median: paired
      // ratios cancel most of the load drift of a shared machine.
      const ratio = (xs: number[], b: number[]) =>
        `${median(xs)} (${median(xs.map((x, i) => x / b[i]!)).toFixed(2)}×)`;
      rows.push([
        mode.name,
        String(n),
        `${median(s.program).toFixed(0)} / ${Number.isNaN(median(s.programCpu)) ? "n/a" : median(s.programCpu).toFixed(0)}`,
        s.engine.toFixed(0),
        ratio(s.c1, base.c1),
        ratio(s.c1cpu, base.c1cpu),
        ratio(s.c4, base.c4),
        ratio(s.c4cpu, base.c4cpu),
        s.add.length > 0 ? median(s.add).toFixed(1) : "",
        s.remove.length > 0 ? median(s.remove).toFixed(1) : "",
      ]);
    }
  }
} finally {
  for (const variant of ["nftables", "iptables-legacy", "iptables-nft"] as const) {
    await cleanupInterception({ runner, variant }).catch(() => false);
  }
  lab.teardown();
  rmSync(scratch, { recursive: true, force: true });
}

const header = [
  "backend",
  "N",
  "program ms (wall / CPU)",
  "engine apply ms",
  "conn/s 1 client, wall (× N=0)",
  "conn per CPU-s, 1 client (× N=0)",
  "conn/s 4 clients, wall (× N=0)",
  "conn per CPU-s, 4 clients (× N=0)",
  "add 1 ms",
  "remove 1 ms",
];
const lines = [
  `| ${header.join(" | ")} |`,
  `|${header.map(() => "---").join("|")}|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`),
];
const load = execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).trim();
process.stdout.write(
  `${lines.join("\n")}\n\nmedians of ${RUNS} interleaved rounds; ${COUNT} connections per rate run; loadavg at the end: ${load}\n`,
);

/**
 * Interception benchmark (numbers, not pass/fail): OSM's one-rule-per-CIDR chain (iptables-legacy and
 * iptables-nft) vs our nft sets, for N excluded CIDRs. Run as root: `npm run bench:interception`
 * (or `node bench/interception/run.ts [--quick]`). Prints a Markdown table.
 *
 * Setup: the two-namespace lab of test/netns/interception (documentation addresses, removed afterwards).
 * The excluded list is N distinct non-adjacent /32s from the benchmarking range 198.18.0.0/15 (rule entries
 * only, never contacted) followed by the probed server 203.0.113.10/32, so every new connection walks the
 * whole list and then goes direct to the server; N = 0 is the server's entry alone.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  cleanupInterception,
  createProcessRunner,
  renderNft,
  renderRestorePayload,
  updateNftElements,
} from "../../src/interception/index.ts";
import { parseCidr } from "../../src/net/index.ts";
import { buildTestPolicy } from "../../test/golden/interception/policy-builder.ts";
import { createLab } from "../../test/netns/interception/lab.ts";

const quick = process.argv.includes("--quick");
const SIZES = quick ? [0, 1000] : [0, 1000, 10_000, 50_000];
const RUNS = quick ? 3 : 5;
const COUNT = quick ? 300 : 3000;
const SERVER = "203.0.113.10";
const RATE = fileURLToPath(new URL("./connect-rate.ts", import.meta.url));
const MODES: { name: string; variant: BackendVariant }[] = [
  { name: "OSM chain, iptables-legacy", variant: "iptables-legacy" },
  { name: "OSM chain, iptables-nft", variant: "iptables-nft" },
  { name: "osm-ts nft sets", variant: "nftables" },
];

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

const lab = await createLab("b");
const runner = createProcessRunner({ netns: lab.clientPath });
const rows: string[][] = [];
try {
  for (const mode of MODES) {
    const base: Record<number, number> = {};
    for (const n of SIZES) {
      const plan = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: excluded(n) }));
      const o = { runner, variant: mode.variant };
      // Time to program: the one kernel transaction (iptables-restore / nft -f) from a clean namespace.
      const program: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        await cleanupInterception(o);
        const t0 = process.hrtime.bigint();
        const res =
          mode.variant === "nftables"
            ? await runner.run(["nft", "-f", "-"], { stdin: renderNft(plan) })
            : await runner.run(
                [`iptables-${mode.variant === "iptables-legacy" ? "legacy" : "nft"}-restore`, "--noflush"],
                {
                  stdin: renderRestorePayload(plan.iptables.v4),
                },
              );
        program.push(ms(t0));
        if (res.code !== 0) throw new Error(`programming failed: ${res.stderr}`);
      }
      // The engine's whole apply (read back, diff, test, restore, verify) from clean, once.
      await cleanupInterception(o);
      let t0 = process.hrtime.bigint();
      await applyInterception(plan, o);
      const engine = ms(t0);
      const rate = (concurrency: number) => {
        const xs: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          const out = execFileSync(
            "ip",
            [
              "netns",
              "exec",
              lab.client,
              process.execPath,
              RATE,
              SERVER,
              "80",
              String(COUNT),
              String(concurrency),
            ],
            { encoding: "utf8" },
          );
          xs.push(Number(out.trim()));
        }
        return median(xs);
      };
      const c1 = rate(1);
      const c4 = rate(4);
      if (n === 0) {
        base[1] = c1;
        base[4] = c4;
      }
      let add = "";
      let remove = "";
      if (n === SIZES[SIZES.length - 1]) {
        const adds: number[] = [];
        const removes: number[] = [];
        const entry = "198.19.255.255/32";
        for (let r = 0; r < RUNS; r++) {
          if (mode.variant === "nftables") {
            t0 = process.hrtime.bigint();
            await updateNftElements(runner, { list: "exclusions", add: [parseCidr(entry)] });
            adds.push(ms(t0));
            t0 = process.hrtime.bigint();
            await updateNftElements(runner, { list: "exclusions", remove: [parseCidr(entry)] });
            removes.push(ms(t0));
          } else {
            const tool = mode.variant === "iptables-legacy" ? "iptables-legacy" : "iptables-nft";
            const rule = ["-d", entry, "-j", "RETURN"];
            t0 = process.hrtime.bigint();
            await runner.run([tool, "-t", "nat", "-I", "OSM_PROXY_OUTBOUND", "5", ...rule]);
            adds.push(ms(t0));
            t0 = process.hrtime.bigint();
            await runner.run([tool, "-t", "nat", "-D", "OSM_PROXY_OUTBOUND", ...rule]);
            removes.push(ms(t0));
          }
        }
        add = median(adds).toFixed(1);
        remove = median(removes).toFixed(1);
      }
      await cleanupInterception(o);
      const ratio = (v: number, c: number) => `${v} (${(v / base[c]!).toFixed(2)}×)`;
      rows.push([
        mode.name,
        String(n),
        median(program).toFixed(0),
        engine.toFixed(0),
        ratio(c1, 1),
        ratio(c4, 4),
        add,
        remove,
      ]);
      process.stderr.write(`${rows[rows.length - 1]!.join(" | ")}\n`);
    }
  }
} finally {
  for (const variant of ["nftables", "iptables-legacy", "iptables-nft"] as const) {
    await cleanupInterception({ runner, variant }).catch(() => false);
  }
  lab.teardown();
}

const header = [
  "backend",
  "N",
  "program ms",
  "engine apply ms",
  "conn/s, 1 client (× N=0)",
  "conn/s, 4 clients (× N=0)",
  "add 1 ms",
  "remove 1 ms",
];
const lines = [
  `| ${header.join(" | ")} |`,
  `|${header.map(() => "---").join("|")}|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`),
];
process.stdout.write(`${lines.join("\n")}\n\nmedians of ${RUNS} runs; ${COUNT} connections per rate run\n`);

/**
 * Soak benchmark (`npm run bench:soak -- [--duration 10m] [--rate 40] [--relay splice|js]`, root): the
 * sidecar in the netns lab (test/netns/sidecar/lab.ts, names `osmt-sk-*`) under a steady rate of mixed
 * connections (soak-load.ts: short, slow readers both ways, half-close then reset from either side, resets,
 * refused and timing-out upstreams, long-lived) for the duration. Samples the sidecar's open fds, RSS, pairs
 * open and CPU; at the end checks that every connection the load made has its access-log line and that the
 * metrics agree, and prints a Markdown table (start / middle / end) and the outcomes by cause. Bounded: the
 * load stops at the duration, everything is removed afterwards.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { accessLog, EXTERNAL_V4, isRoot, Lab, MESH_V4 } from "../../test/netns/sidecar/lab.ts";
import { projectNode } from "../../test/support/install-access.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10m" },
    rate: { type: "string", default: "40" },
    relay: { type: "string", default: "splice" },
  },
});

/** `90`, `90s`, `5m` → milliseconds. */
function durationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text);
  if (match === null) throw new Error(`--duration: expected seconds or e.g. 5m, got ${JSON.stringify(text)}`);
  return Number(match[1]) * (match[2] === "m" ? 60_000 : 1000);
}

interface Sample {
  readonly atS: number;
  readonly fds: number;
  readonly rssMb: number;
  readonly pairs: number;
  readonly cpuPercent: number;
}

const CLOCK_TICKS = 100;

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 102.4) / 10;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  if (!isRoot()) throw new Error("the soak needs root (network namespaces)");
  const total = durationMs(values.duration);
  const rate = Number(values.rate);
  const lab = new Lab("osmt-sk");
  try {
    await lab.create();
    // Port 82 of the external host: SYNs dropped, so those upstreams time out.
    lab.silencePort(82);
    const meshEndpoints = [9000, 9002, 9003, 9004, 9005].map((port) => ({
      service: "demo/mesh",
      ip: MESH_V4,
      port,
    }));
    const config = lab.writeConfig({ enableEgress: true, meshEndpoints });
    const sidecar = await lab.startSidecar([
      "--config",
      config,
      "--relay",
      values.relay,
      "--idle-timeout",
      "60",
      "--connect-timeout",
      "1000",
    ]);
    const pid = sidecar.child.pid!;
    const samples: Sample[] = [];
    let lastTicks = cpuTicks(pid);
    let lastAt = performance.now();
    const started = lastAt;
    const sample = async (): Promise<void> => {
      const now = performance.now();
      const ticks = cpuTicks(pid);
      const pairs = JSON.parse(await lab.admin("/config_dump")).activeConnections as number;
      samples.push({
        atS: Math.round((now - started) / 1000),
        fds: readdirSync(`/proc/${pid}/fd`).length,
        rssMb: rssMb(pid),
        pairs,
        cpuPercent: Math.round(((ticks - lastTicks) / CLOCK_TICKS / ((now - lastAt) / 1000)) * 1000) / 10,
      });
      lastTicks = ticks;
      lastAt = now;
    };
    await sample();
    const load = lab.spawnIn(
      lab.clientNs,
      [projectNode(), join(import.meta.dirname, "soak-load.ts"), String(rate), MESH_V4, EXTERNAL_V4],
      { stdin: true },
    );
    const every = Math.max(5000, total / 20);
    while (performance.now() - started < total) {
      await sleep(Math.min(every, total - (performance.now() - started)));
      await sample();
      process.stderr.write(`soak: ${JSON.stringify(samples.at(-1))}\n`);
    }
    load.child.stdin!.write("stop\n");
    const summary = JSON.parse(await load.waitForLine((line) => line.startsWith("{"), 60_000)) as {
      started: number;
      unfinished: number;
      outcomes: Record<string, Record<string, number>>;
    };
    await lab.waitFor(
      async () => JSON.parse(await lab.admin("/config_dump")).activeConnections === 0,
      30_000,
    );
    await sleep(3000); // the pipe pool shrinks once its pipes stay unused
    await sample();
    const lines = accessLog(sidecar);
    const byError = new Map<string, number>();
    for (const line of lines) {
      const cause = String(
        line["error"] ?? (line["decision"] === "refuse" ? `refused:${line["reason"]}` : "clean"),
      );
      byError.set(cause, (byError.get(cause) ?? 0) + 1);
    }
    const metrics = await lab.admin("/stats/prometheus");
    const metricLines = metrics
      .split("\n")
      .filter((l) => /^osm_sidecar_(errors_total|dropped_connections_total|connections_total)\{/.test(l));
    const middle = samples[Math.floor(samples.length / 2)]!;
    const rows = [
      ["start", samples[0]!],
      ["middle", middle],
      ["end (load running)", samples.at(-2)!],
      ["after (idle 3 s)", samples.at(-1)!],
    ] as const;
    const out = [
      `soak: ${values.relay} relay, ${Math.round(total / 1000)} s at ${rate} connections/s, ${summary.started} connections`,
      "",
      "| when | at (s) | fds | RSS (MB) | pairs open | CPU (%) |",
      "| --- | --- | --- | --- | --- | --- |",
      ...rows.map(
        ([when, s]) => `| ${when} | ${s.atS} | ${s.fds} | ${s.rssMb} | ${s.pairs} | ${s.cpuPercent} |`,
      ),
      "",
      `max fds ${Math.max(...samples.map((s) => s.fds))}, max RSS ${Math.max(...samples.map((s) => s.rssMb))} MB, max pairs ${Math.max(...samples.map((s) => s.pairs))}`,
      "",
      `access log: ${lines.length} lines for ${summary.started} connections made (${summary.unfinished} unfinished at the end): ${lines.length === summary.started ? "every connection accounted for" : "MISMATCH"}`,
      "",
      "| access-log error (cause) | connections |",
      "| --- | --- |",
      ...[...byError].sort((a, b) => b[1] - a[1]).map(([cause, n]) => `| ${cause} | ${n} |`),
      "",
      "client outcomes by kind: " + JSON.stringify(summary.outcomes),
      "",
      "metrics:",
      ...metricLines.map((l) => `    ${l}`),
    ];
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    await lab.destroy();
  }
}

await main();

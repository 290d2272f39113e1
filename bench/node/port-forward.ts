/**
 * `kubectl port-forward` throughput: a pod serves N MB (default 10) of bytes; curl downloads them through the
 * forward (kubectl ⇄ API server ⇄ node ⇄ pod) and, as the baseline in the same rounds, straight from the
 * pod's IP. Rounds interleave the two; prints the medians and their ratio, per engine (`osm mesh up` on a
 * private bridge, `osmt-pb0`, 198.51.100.96/28). Root only; the real engine needs `bash scripts/kube-binaries`.
 *
 *   node bench/node/port-forward.ts [--engine embedded|kubernetes|both] [--mb 10] [--rounds 3]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostLeftovers, localMesh, meshDownPurgeArgs, runningPodIP } from "../../test/support/mesh.ts";
import { until } from "../../test/support/poll.ts";
import { freePorts, startForward } from "../../test/support/port-forward.ts";
import { run } from "../../test/support/run.ts";

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? (argv[i + 1] ?? fallback) : fallback;
};
const engines = (
  { embedded: ["embedded"], kubernetes: ["kubernetes"], both: ["embedded", "kubernetes"] } as const
)[opt("--engine", "both") as "embedded" | "kubernetes" | "both"];
const bytes = Math.round(Number(opt("--mb", "10")) * 1024 * 1024);
const rounds = Math.max(1, Math.min(Number(opt("--rounds", "3")), 20));
if (!engines || !(bytes > 0)) {
  process.stderr.write("usage: port-forward.ts [--engine embedded|kubernetes|both] [--mb 10] [--rounds 3]\n");
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write("port-forward bench needs root (osm mesh up)\n");
  process.exit(1);
}

const OSM = fileURLToPath(new URL("../../bin/osm", import.meta.url));
const PREFIX = "osmt-pb-";
const BRIDGE = "osmt-pb0";
/** The pod: GET /<n> answers n bytes, written from one 1 MiB buffer with backpressure. */
const SERVER = `const http = require("node:http"); const buf = Buffer.alloc(1 << 20, 120);
http.createServer((req, res) => {
  let left = Number(req.url.slice(1)) || 0;
  res.writeHead(200, { "Content-Length": left });
  const pump = () => {
    while (left > 0) {
      const chunk = buf.subarray(0, Math.min(left, buf.length));
      left -= chunk.length;
      if (!res.write(chunk)) return res.once("drain", pump);
    }
    res.end();
  };
  pump();
}).listen(8000);`;
const POD = `apiVersion: v1
kind: Pod
metadata: {name: bytes}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: node
    command: ${JSON.stringify([process.execPath, "-e", SERVER])}
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Seconds curl takes to download `bytes` from `url` (throws unless it got them all). */
async function download(url: string): Promise<number> {
  const got = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url], {
    timeoutMs: 120_000,
  });
  const [size, seconds] = got.stdout.split(" ").map(Number);
  if (got.code !== 0 || size !== bytes)
    throw new Error(`download of ${url} failed: ${got.stderr}${got.stdout}`);
  return seconds ?? Number.NaN;
}

async function benchEngine(engine: "embedded" | "kubernetes"): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "osmt-pfbench-"));
  const net = {
    bridge: BRIDGE,
    namePrefix: PREFIX,
    subnet4: "198.51.100.96/28",
    subnet6: "2001:db8:1:f1::/64",
    lastSlot: 14,
  };
  const { stateDir, kubeconfig, env, upArgs } = await localMesh(dir, net, engine);
  try {
    const up = await run(OSM, upArgs, { env, timeoutMs: 180_000 });
    if (up.code !== 0) throw new Error(`osm mesh up: ${up.stderr}`);
    const applied = await run("kubectl", ["apply", "-f", "-"], { env, input: POD });
    if (applied.code !== 0) throw new Error(`kubectl apply: ${applied.stderr}`);
    const podIP = await runningPodIP(env, "bytes");
    const direct = `http://${podIP}:8000/${bytes}`;
    await until(
      "the pod's server",
      async () => ((await run("curl", ["-sS", "-o", "/dev/null", direct])).code === 0 ? true : undefined),
      30_000,
    );
    const [local = 0] = await freePorts(1);
    const forward = await startForward(env, ["pod/bytes", `${local}:8000`], [local]);
    const viaForward = `http://127.0.0.1:${local}/${bytes}`;
    const times = { direct: [] as number[], forward: [] as number[] };
    try {
      await download(viaForward); // warm-up: the first stream pair, JIT
      for (let i = 0; i < rounds; i++) {
        times.direct.push(await download(direct));
        times.forward.push(await download(viaForward));
      }
    } finally {
      await forward.stop();
    }
    const mbps = (s: number) => bytes / 1024 / 1024 / s;
    const d = mbps(median(times.direct));
    const f = mbps(median(times.forward));
    const perRound = median(times.forward.map((t, i) => (times.direct[i] ?? Number.NaN) / t));
    return `| ${engine} | ${(bytes / 1024 / 1024).toFixed(0)} | ${d.toFixed(0)} | ${f.toFixed(0)} | ${perRound.toFixed(2)}× |`;
  } finally {
    await run(OSM, meshDownPurgeArgs(stateDir, kubeconfig), { env, timeoutMs: 120_000 });
    rmSync(dir, { recursive: true, force: true });
    const left = await hostLeftovers(PREFIX, BRIDGE);
    if (left.length > 0) process.stderr.write(`left on the host: ${left.join(" ")}\n`);
  }
}

const rows: string[] = [];
for (const engine of engines) rows.push(await benchEngine(engine));
process.stdout.write(
  [
    "| engine | MB | direct MB/s | through port-forward MB/s | forward / direct (median per round) |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
    `medians of ${rounds} interleaved rounds (curl to the pod IP, then through kubectl port-forward); load average ${(await import("node:os")).loadavg()[0]?.toFixed(1)}`,
    "",
  ].join("\n"),
);

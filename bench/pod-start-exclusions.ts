/**
 * Pod start time against the size of the MeshConfig's exclusion list, on the embedded engine (numbers, not
 * pass/fail): for N exclusions (default 0, 1000, 10000, 100000; distinct /32s that never aggregate, from
 * test/support/exclusions.ts), the time from `kubectl create` of a meshed pod to its Ready condition (2/2
 * Running), and how much of it the admission (`kubectl create` returning: the injector webhook) and osm-init
 * (its own log, for policies fetched by hash) took. Rounds are interleaved (every size once per round, the
 * MeshConfig patched before each); after each patch one pod is started and timed apart ("first pod": it also
 * waits for the controller to process the new list), then the measured one (steady state). Every ratio is the
 * median of per-round ratios to the same round's N = 0.
 *
 * Runs as root, unlocked: a bridge, name prefix, subnets and ports of its own; removes everything it created.
 * Run: node bench/pod-start-exclusions.ts [--rounds=5] [--sizes=0,1000,10000,100000]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { exclusionList } from "../test/support/exclusions.ts";
import { localMesh, meshDownPurgeArgs } from "../test/support/mesh.ts";
import { run } from "../test/support/run.ts";

const OSM = fileURLToPath(new URL("../bin/osm", import.meta.url));
const NS = "osmt-bps-app";
const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const rounds = Number(arg("rounds", "5"));
const sizes = arg("sizes", "0,1000,10000,100000").split(",").map(Number);

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const podYaml = (name: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: curlimages/curl
    command: ["sleep", "365d"]
`;

interface Sample {
  readonly total: number;
  readonly admission: number;
  readonly init: number | undefined;
}

const dir = mkdtempSync(join(tmpdir(), "osmt-bps-"));
const mesh = await localMesh(dir, {
  bridge: "osmt-bps0",
  namePrefix: "osmt-bps-",
  subnet4: "198.51.100.176/28",
  subnet6: "2001:db8:1:1d::/64",
  lastSlot: 14,
});
const env = mesh.env;
const osm = (...args: string[]) => run(OSM, args, { env, timeoutMs: 300_000 });
const kubectl = (...args: string[]) => run("kubectl", args, { env, timeoutMs: 300_000 });
const must = async (what: string, p: Promise<{ code: number | null; stderr: string }>) => {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
};

async function setExclusions(n: number): Promise<void> {
  const file = join(dir, "patch.json");
  writeFileSync(
    file,
    JSON.stringify({ spec: { traffic: { outboundIPRangeExclusionList: exclusionList(n) } } }),
  );
  await must(
    `patching ${n} exclusions`,
    kubectl(
      "patch",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "--type=merge",
      "--patch-file",
      file,
    ),
  );
}

async function startPod(name: string): Promise<Sample> {
  const started = performance.now();
  await must("kubectl create", run("kubectl", ["create", "-f", "-"], { env, input: podYaml(name) }));
  const admitted = performance.now();
  await must(
    "kubectl wait",
    kubectl("wait", "--for=condition=Ready", `pod/${name}`, "-n", NS, "--timeout=300s"),
  );
  const total = performance.now() - started;
  const log = await kubectl("logs", "-n", NS, name, "-c", "osm-init");
  const init = /in (\d+) ms$/m.exec(log.stdout)?.[1];
  await must("kubectl delete", kubectl("delete", "pod", name, "-n", NS, "--wait=true"));
  return { total, admission: admitted - started, init: init === undefined ? undefined : Number(init) };
}

/** The first pod after each MeshConfig change, and the next one (steady state), per size. */
const firsts = new Map<number, Sample[]>(sizes.map((n) => [n, []]));
const samples = new Map<number, Sample[]>(sizes.map((n) => [n, []]));
const cleanup = async () => {
  await osm(...meshDownPurgeArgs(mesh.stateDir, mesh.kubeconfig));
  rmSync(dir, { recursive: true, force: true });
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}
try {
  await must("osm mesh up", osm(...mesh.upArgs));
  await must("osm install", osm("install"));
  await must("kubectl create namespace", kubectl("create", "namespace", NS));
  await must("osm namespace add", osm("namespace", "add", NS));
  for (let round = 1; round <= rounds; round++) {
    for (const n of sizes) {
      await setExclusions(n);
      const first = await startPod(`bench-${n}-${round}-first`);
      const sample = await startPod(`bench-${n}-${round}`);
      firsts.get(n)!.push(first);
      samples.get(n)!.push(sample);
      process.stderr.write(
        `round ${round} N=${n}: first ${Math.round(first.total)} ms, then ${Math.round(sample.total)} ms (admission ${Math.round(sample.admission)}, osm-init ${sample.init ?? "-"})\n`,
      );
    }
  }
} finally {
  await cleanup();
}

const rows = [
  "| exclusions | create → 2/2 Running, ms (× N=0) | admission (kubectl create), ms | osm-init (fetch + program), ms | first pod after the MeshConfig change, ms (× N=0) |",
  "| ---------- | -------------------------------- | ------------------------------ | ------------------------------ | ------------------------------------------------- |",
];
const ms = (x: number) => Math.round(x);
const ratio = (of: Map<number, Sample[]>, n: number) =>
  median(of.get(n)!.map((x, i) => x.total / of.get(sizes[0]!)![i]!.total)).toFixed(2);
for (const n of sizes) {
  const s = samples.get(n)!;
  const inits = s.map((x) => x.init).filter((x): x is number => x !== undefined);
  const init = inits.length > 0 ? ms(median(inits)) : "- (script in the PodSpec)";
  rows.push(
    `| ${n} | ${ms(median(s.map((x) => x.total)))} (${ratio(samples, n)}×) | ${ms(median(s.map((x) => x.admission)))} | ${init} | ${ms(median(firsts.get(n)!.map((x) => x.total)))} (${ratio(firsts, n)}×) |`,
  );
}
process.stdout.write(`${rows.join("\n")}\n\nmedians of ${rounds} interleaved rounds\n`);

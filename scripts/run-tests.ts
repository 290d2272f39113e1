/**
 * Runs the suite in stages, because some tests share host-wide resources:
 *   1. unit + golden: pure, run two files at a time;
 *   2. netns: real namespaces with per-suite name prefixes, two files at a time;
 *   3. two lanes at once, each one file at a time:
 *      - on this host's network: the e2e suites (real daemons, bridges and kubeconfigs) on the embedded engine;
 *      - in a network and mount namespace of its own (scripts/own-network, so both lanes may use the same
 *        bridges, subnets and ports): nothing at first, since what is left needs the control plane's binaries;
 *      then both lanes take files from one queue of what runs on the real Kubernetes control plane: the suites
 *      that run a mesh again (OSM_TEST_ENGINE=kubernetes: test/support/mesh.ts then starts `osm mesh up
 *      --engine kubernetes`) and those that always do (test/e2e/kubernetes). A lane claims a file by creating
 *      its marker in a folder both share, so each file runs once, on whichever lane is free first.
 *      Whatever needs the binaries first waits for them (`scripts/kube-binaries`, which scripts/test starts
 *      building in the background on a machine that has none yet).
 * Prints each phase with the spec reporter (a lane beside another is printed once the first is done) and ends
 * with one line `tests: N passed, N failed, N skipped`.
 * Usage: node scripts/run-tests.ts [GLOB...]     (globs replace the stages' own; run one at a time)
 *        node scripts/run-tests.ts --lane NAME   (one lane, by its first phase's name: how a lane beside another runs)
 */
import { spawn } from "node:child_process";
import { glob, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "node:test";
import { spec } from "node:test/reporters";

interface Phase {
  name: string;
  patterns: string[];
  /** Files the patterns match that belong to another phase. */
  exclude?: string[];
  concurrency: number;
  /** Set for the phase's test processes. */
  env?: Record<string, string>;
  /** A command the phase runs first; the phase fails if it does. */
  prepare?: string[];
  /** Its files are shared with the same phase in another lane: each runs once, in the lane that claims it. */
  shared?: boolean;
}

/** Phases run one after the other. */
type Lane = Phase[];

/**
 * The suites that run on both engines: each starts its mesh (test/support/mesh.ts) or its API server
 * (test/support/apiserver.ts startTestApiServer) on the engine OSM_TEST_ENGINE names.
 */
const REAL_ENGINE_SUITES = [
  "test/e2e/guide/namespace.test.ts",
  "test/e2e/guide/proxy-status.test.ts",
  "test/e2e/demo/**/*.test.ts",
  "test/e2e/controlplane/**/*.test.ts",
  "test/e2e/mesh/**/*.test.ts",
  "test/e2e/dashboard/**/*.test.ts",
];
const ALWAYS_REAL_ENGINE = ["test/e2e/kubernetes/**/*.test.ts"];
const WAIT_FOR_KUBE_BINARIES = ["bash", "scripts/kube-binaries"];

const onRealEngine: Phase = {
  name: "end to end on the real Kubernetes control plane",
  patterns: REAL_ENGINE_SUITES,
  concurrency: 1,
  env: { OSM_TEST_ENGINE: "kubernetes" },
  prepare: WAIT_FOR_KUBE_BINARIES,
  shared: true,
};
const alwaysRealEngine: Phase = {
  name: "end to end with the real Kubernetes control plane",
  patterns: ALWAYS_REAL_ENGINE,
  concurrency: 1,
  prepare: WAIT_FOR_KUBE_BINARIES,
  shared: true,
};

/** Stages run one after the other; the lanes of a stage at the same time, each after the first in its own network. */
const stages: Lane[][] = [
  [
    [
      {
        name: "unit and golden",
        patterns: ["test/unit/**/*.test.ts", "test/golden/**/*.test.ts"],
        concurrency: 2,
      },
    ],
  ],
  [[{ name: "network namespaces", patterns: ["test/netns/**/*.test.ts"], concurrency: 2 }]],
  [
    [
      {
        name: "end to end",
        patterns: ["test/e2e/**/*.test.ts"],
        exclude: ALWAYS_REAL_ENGINE,
        concurrency: 1,
      },
      onRealEngine,
      alwaysRealEngine,
    ],
    [onRealEngine, alwaysRealEngine],
  ],
];

/** The folder where lanes claim the files of shared phases; one per run, made before the lanes start. */
const CLAIMS_ENV = "OSM_TS_TEST_CLAIMS";

const FILE_TIMEOUT_MS = 10 * 60_000;

async function filesOf(patterns: string[], exclude: string[] = []): Promise<string[]> {
  const files = new Set<string>();
  for (const pattern of patterns) {
    for await (const file of glob(pattern)) files.add(file);
  }
  for (const pattern of exclude) {
    for await (const file of glob(pattern)) files.delete(file);
  }
  return [...files].sort();
}

interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

function add(totals: Totals, more: Totals): void {
  totals.passed += more.passed;
  totals.failed += more.failed;
  totals.skipped += more.skipped;
}

/** Runs `command` with its output on ours; resolves with its exit code. */
function runCommand(command: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", () => resolve(127));
    child.on("close", (code) => resolve(code ?? 1));
  });
}

/** Runs `command` before a phase's first file; false (and one failure counted) if it fails. */
async function prepare(phase: Phase, totals: Totals): Promise<boolean> {
  if (!phase.prepare) return true;
  const code = await runCommand(phase.prepare);
  if (code === 0) return true;
  process.stdout.write(`== ${phase.name}: \`${phase.prepare.join(" ")}\` failed (exit ${code})\n`);
  totals.failed += 1;
  return false;
}

async function runFiles(files: string[], phase: Phase, totals: Totals): Promise<void> {
  // Test files run in child processes, which inherit this environment.
  const saved = { ...process.env };
  Object.assign(process.env, phase.env ?? {});
  const stream = run({ files, concurrency: phase.concurrency, timeout: FILE_TIMEOUT_MS });
  stream.on("test:summary", (summary) => {
    // The run's own summary has no file; per-file summaries carry theirs.
    if (summary.file !== undefined) return;
    const { tests, passed, skipped, todo } = summary.counts;
    // Everything that neither passed nor was skipped failed (including cancelled, e.g. timed out).
    add(totals, { passed, skipped: skipped + todo, failed: tests - passed - skipped - todo });
  });
  await new Promise<void>((resolve, reject) => {
    stream.compose(spec).on("end", resolve).on("error", reject).pipe(process.stdout, { end: false });
  }).finally(() => {
    for (const key of Object.keys(phase.env ?? {})) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });
}

/** The run's claims folder (made on first use; lanes started later inherit it through the environment). */
async function claimsFolder(): Promise<string> {
  process.env[CLAIMS_ENV] ??= await mkdtemp(join(tmpdir(), "osm-ts-test-claims-"));
  return process.env[CLAIMS_ENV];
}

/** Claims one file of a shared phase for this lane: false when another lane already has it (mkdir is atomic). */
async function claim(phase: Phase, file: string): Promise<boolean> {
  try {
    await mkdir(join(await claimsFolder(), encodeURIComponent(`${phase.name}:${file}`)));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}

async function runPhase(phase: Phase, totals: Totals): Promise<void> {
  const files = await filesOf(phase.patterns, phase.exclude);
  if (files.length === 0) return;
  if (!phase.shared) {
    process.stdout.write(`\n== ${phase.name}: ${files.length} files\n`);
    if (await prepare(phase, totals)) await runFiles(files, phase, totals);
    return;
  }
  let prepared = false;
  for (const file of files) {
    if (!(await claim(phase, file))) continue;
    if (!prepared) {
      process.stdout.write(`\n== ${phase.name}: ${files.length} files, shared with the other lane\n`);
      if (!(await prepare(phase, totals))) return;
      prepared = true;
    }
    process.stdout.write(`-- ${file}\n`);
    await runFiles([file], phase, totals);
  }
}

async function runLane(lane: Lane, totals: Totals): Promise<void> {
  for (const phase of lane) await runPhase(phase, totals);
}

const TOTALS_LINE = /tests: (\d+) passed, (\d+) failed, (\d+) skipped\s*$/;

/**
 * Starts `lane` as this script again (`--lane NAME`) in a network and mount namespace of its own. Its output
 * is kept until `showLive`, then passed on as it comes; `done` has its totals.
 */
function startInOwnNetwork(lane: Lane): { showLive(): void; done: Promise<Totals> } {
  const name = lane[0]!.name;
  const isolate = ["--net", "--mount", "--propagation", "private", "bash", "scripts/own-network"];
  const child = spawn("unshare", [...isolate, process.execPath, import.meta.filename, "--lane", name], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kept: Buffer[] = [];
  let live = false;
  let tail = "";
  const take = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-4096);
    if (live) process.stdout.write(chunk);
    else kept.push(chunk);
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const done = new Promise<Totals>((resolve) => {
    const end = (code: number | null, error?: Error): void => {
      const match = TOTALS_LINE.exec(tail);
      const laneTotals = match
        ? { passed: Number(match[1]), failed: Number(match[2]), skipped: Number(match[3]) }
        : { passed: 0, failed: 0, skipped: 0 };
      if (code !== 0 && laneTotals.failed === 0) {
        take(Buffer.from(`\n== ${name}: the lane ended with ${error?.message ?? `exit ${code}`}\n`));
        laneTotals.failed += 1;
      }
      resolve(laneTotals);
    };
    child.on("error", (error) => end(null, error));
    child.on("close", (code) => end(code));
  });
  return {
    showLive() {
      process.stdout.write(Buffer.concat(kept));
      live = true;
    },
    done,
  };
}

/** A stage's first lane here, the others beside it in networks of their own. */
async function runStage(stage: Lane[], totals: Totals): Promise<void> {
  const [first, ...beside] = stage;
  await claimsFolder();
  const started = beside.map(startInOwnNetwork);
  await runLane(first!, totals);
  for (const lane of started) {
    lane.showLive();
    add(totals, await lane.done);
  }
}

const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
const args = process.argv.slice(2);
// A run that makes the claims folder removes it; a lane started by another run uses that run's.
const ownsClaims = process.env[CLAIMS_ENV] === undefined;
try {
  if (args[0] === "--lane") {
    const lane = stages.flat().find((l) => l[0]!.name === args[1]);
    if (!lane) throw new Error(`no lane starts with a phase named ${args[1]}`);
    await runLane(lane, totals);
  } else if (args.length > 0) {
    await runPhase({ name: "selected", patterns: args, concurrency: 1 }, totals);
  } else {
    for (const stage of stages) await runStage(stage, totals);
  }
} finally {
  if (ownsClaims && process.env[CLAIMS_ENV] !== undefined) {
    await rm(process.env[CLAIMS_ENV], { recursive: true, force: true });
  }
}
process.stdout.write(
  `\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`,
);
process.exitCode = totals.failed > 0 ? 1 : 0;

/**
 * Runs the suite in phases, because some tests share host-wide resources:
 *   1. unit + golden: pure, run two files at a time;
 *   2. netns: real namespaces with per-suite name prefixes, two files at a time;
 *   3. e2e: real daemons, bridges and kubeconfigs, one file at a time;
 *   4. the suites that run a mesh again, on the real Kubernetes control plane (OSM_TEST_ENGINE=kubernetes:
 *      test/support/mesh.ts then starts `osm mesh up --engine kubernetes`), one file at a time.
 * Prints each phase with the spec reporter and ends with one line `tests: N passed, N failed, N skipped`.
 * Usage: node scripts/run-tests.ts [GLOB...]   (globs replace the phases' own; run one at a time)
 */
import { glob } from "node:fs/promises";
import { run } from "node:test";
import { spec } from "node:test/reporters";

interface Phase {
  name: string;
  patterns: string[];
  concurrency: number;
  /** Set for the phase's test processes. */
  env?: Record<string, string>;
}

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
];

const phases: Phase[] = [
  {
    name: "unit and golden",
    patterns: ["test/unit/**/*.test.ts", "test/golden/**/*.test.ts"],
    concurrency: 2,
  },
  { name: "network namespaces", patterns: ["test/netns/**/*.test.ts"], concurrency: 2 },
  { name: "end to end", patterns: ["test/e2e/**/*.test.ts"], concurrency: 1 },
  {
    name: "end to end on the real Kubernetes control plane",
    patterns: REAL_ENGINE_SUITES,
    concurrency: 1,
    env: { OSM_TEST_ENGINE: "kubernetes" },
  },
];

const FILE_TIMEOUT_MS = 10 * 60_000;

async function filesOf(patterns: string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const pattern of patterns) {
    for await (const file of glob(pattern)) files.add(file);
  }
  return [...files].sort();
}

interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

async function runPhase(phase: Phase, totals: Totals): Promise<void> {
  const files = await filesOf(phase.patterns);
  if (files.length === 0) return;
  process.stdout.write(`\n== ${phase.name}: ${files.length} files\n`);
  // Test files run in child processes, which inherit this environment.
  const saved = { ...process.env };
  Object.assign(process.env, phase.env ?? {});
  const stream = run({ files, concurrency: phase.concurrency, timeout: FILE_TIMEOUT_MS });
  stream.on("test:summary", (summary) => {
    // The run's own summary has no file; per-file summaries carry theirs.
    if (summary.file !== undefined) return;
    const { tests, passed, skipped, todo } = summary.counts;
    totals.passed += passed;
    totals.skipped += skipped + todo;
    // Everything that neither passed nor was skipped failed (including cancelled, e.g. timed out).
    totals.failed += tests - passed - skipped - todo;
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

const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
const selected = process.argv.slice(2);
const plan = selected.length > 0 ? [{ name: "selected", patterns: selected, concurrency: 1 }] : phases;
for (const phase of plan) await runPhase(phase, totals);
process.stdout.write(
  `\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`,
);
process.exitCode = totals.failed > 0 ? 1 : 0;

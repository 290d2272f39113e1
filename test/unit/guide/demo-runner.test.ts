import assert from "node:assert/strict";
import { test } from "node:test";
import type { CommandResult } from "../../../src/edge/command-runner.ts";
import { checkResult } from "../../../src/guide/demo/expect.ts";
import { type RunnerDeps, runSteps, type Step } from "../../../src/guide/demo/runner.ts";
import { formatCommand } from "../../../src/guide/demo/shell-quote.ts";

/** A fake world: each command's answers in order (the last repeats), a clock that sleeping advances. */
function fakeDeps(answers: Record<string, CommandResult[]>) {
  let clock = 0;
  const ran: string[] = [];
  let written = "";
  const deps: RunnerDeps = {
    runner: {
      run: async (argv) => {
        const line = argv.join(" ");
        ran.push(line);
        clock += 100;
        const queue = answers[line];
        if (!queue || queue.length === 0) return { code: 127, stdout: "", stderr: `${argv[0]}: not found\n` };
        return queue.length > 1 ? queue.shift()! : queue[0]!;
      },
    },
    write: (text) => {
      written += text;
    },
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
  };
  return { deps, ran, output: () => written };
}

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: "" });

test("each step prints a progress line and its command before its output, and the total time last", async () => {
  const world = fakeDeps({ "kubectl create namespace curl": [ok("namespace/curl created\n")] });
  const steps: Step[] = [
    {
      kind: "command",
      title: "Create the curl namespace",
      argv: ["kubectl", "create", "namespace", "curl"],
      expect: { stdout: [/namespace\/curl created/] },
    },
  ];
  const outcome = await runSteps(steps, [], world.deps);
  assert.equal(outcome.ok, true);
  const text = world.output();
  const progress = text.indexOf("[1/1] Create the curl namespace");
  const command = text.indexOf("$ kubectl create namespace curl");
  const output = text.indexOf("namespace/curl created");
  assert.ok(progress >= 0 && progress < command && command < output, text);
  assert.match(text, /Demo passed: 1\/1 steps in 0\.1s\n$/);
});

test("the first step that does not hold stops the run and is named with its reasons", async () => {
  const world = fakeDeps({
    a: [ok("fine\n")],
    b: [{ code: 0, stdout: "HTTP/1.1 403 Forbidden\n", stderr: "" }],
  });
  const steps: Step[] = [
    { kind: "command", title: "first", argv: ["a"], expect: { stdout: [/fine/] } },
    { kind: "command", title: "curl .10 answers", argv: ["b"], expect: { stdout: [/HTTP\/1\.1 200 OK/] } },
    { kind: "command", title: "never runs", argv: ["c"], expect: {} },
  ];
  const outcome = await runSteps(steps, [], world.deps);
  assert.equal(outcome.ok, false);
  assert.deepEqual(outcome.failure, {
    index: 2,
    title: "curl .10 answers",
    problems: ["expected the output to match /HTTP\\/1\\.1 200 OK/"],
  });
  assert.deepEqual(world.ran, ["a", "b"]);
  assert.match(world.output(), /FAILED: step 2\/3 "curl \.10 answers"\n {2}- expected the output to match/);
  assert.match(world.output(), /Demo FAILED at step 2\/3 "curl \.10 answers" \(1 steps passed\)/);
});

test("clean-up steps run after a failure and their problems are warnings, not the verdict", async () => {
  const world = fakeDeps({ boom: [{ code: 1, stdout: "", stderr: "nope\n" }] });
  const outcome = await runSteps(
    [{ kind: "command", title: "breaks", argv: ["boom"], expect: {} }],
    [
      { kind: "command", title: "delete namespace", argv: ["missing-tool"], expect: {} },
      {
        kind: "action",
        title: "stop the external host",
        run: async () => {
          throw new Error("already gone");
        },
      },
    ],
    world.deps,
  );
  assert.equal(outcome.failure?.index, 1);
  assert.deepEqual(world.ran, ["boom", "missing-tool"]);
  assert.match(world.output(), /warning: clean-up step "delete namespace": expected exit code 0, got 127/);
  assert.match(world.output(), /warning: clean-up step "stop the external host": already gone/);
});

test("a waiting step re-runs its command until the expectation holds and shows only the last output", async () => {
  const world = fakeDeps({
    "kubectl get pods -n curl": [
      ok("NAME READY STATUS\ncurl-1 0/2 Init:0/1\n"),
      ok("NAME READY STATUS\ncurl-1 1/2 Running\n"),
      ok("NAME READY STATUS\ncurl-1 2/2 Running\n"),
    ],
  });
  const outcome = await runSteps(
    [
      {
        kind: "command",
        title: "wait",
        argv: ["kubectl", "get", "pods", "-n", "curl"],
        expect: { stdout: [/2\/2\s+Running/] },
        waitUntil: { timeoutMs: 10_000, intervalMs: 1000 },
      },
    ],
    [],
    world.deps,
  );
  assert.equal(outcome.ok, true);
  assert.equal(world.ran.length, 3);
  assert.doesNotMatch(world.output(), /Init:0\/1/);
  assert.match(world.output(), /curl-1 2\/2 Running/);
});

test("a waiting step gives up at its deadline and says how long it waited", async () => {
  const world = fakeDeps({ poll: [ok("0/2 Pending\n")] });
  const outcome = await runSteps(
    [
      {
        kind: "command",
        title: "wait",
        argv: ["poll"],
        expect: { stdout: [/2\/2/] },
        waitUntil: { timeoutMs: 5000, intervalMs: 1000 },
      },
    ],
    [],
    world.deps,
  );
  assert.equal(outcome.ok, false);
  assert.ok(world.ran.length <= 6, `polled ${world.ran.length} times`);
  assert.match(outcome.failure?.problems.at(-1) ?? "", /^still not so after waiting \d+\.\ds$/);
});

test("a captured value feeds a later command", async () => {
  const world = fakeDeps({
    "kubectl get pod -n curl": [ok("curl-54ccc6954c-9rlvp")],
    "kubectl exec -n curl curl-54ccc6954c-9rlvp -c curl -- curl -sSI http://203.0.113.10:80": [
      ok("HTTP/1.1 200 OK\n"),
    ],
  });
  const outcome = await runSteps(
    [
      {
        kind: "command",
        title: "pod",
        argv: ["kubectl", "get", "pod", "-n", "curl"],
        expect: {},
        capture: "pod",
      },
      {
        kind: "command",
        title: "curl",
        argv: (vars) => [
          "kubectl",
          "exec",
          "-n",
          "curl",
          vars.get("pod") ?? "",
          "-c",
          "curl",
          "--",
          "curl",
          "-sSI",
          "http://203.0.113.10:80",
        ],
        expect: { stdout: [/HTTP\/1\.1 200 OK/] },
      },
    ],
    [],
    world.deps,
  );
  assert.equal(outcome.ok, true);
});

test("expected failures are checked by exit code and message", () => {
  const refused: CommandResult = {
    code: 7,
    stdout: "",
    stderr: "curl: (7) Failed to connect to 203.0.113.11 port 80 after 0 ms: Couldn't connect to server\n",
  };
  assert.deepEqual(checkResult({ exitCode: 7, output: [/curl: \(7\)/] }, refused), []);
  assert.deepEqual(checkResult({ stdout: [/200 OK/] }, refused), [
    "expected exit code 0, got 7",
    "expected the output to match /200 OK/",
  ]);
  assert.deepEqual(
    checkResult(
      { stdoutEquals: '["203.0.113.10/32"]' },
      { code: 0, stdout: '["203.0.113.10/32"]\n', stderr: "" },
    ),
    [],
  );
  assert.deepEqual(checkResult({}, { code: 137, stdout: "", stderr: "", error: "timed out after 60s" }), [
    "the command did not complete: timed out after 60s",
    "expected exit code 0, got none",
  ]);
  assert.deepEqual(checkResult({ notOutput: [/STALE/] }, ok("curl-1 STALE\n")), [
    "expected the output not to match /STALE/",
  ]);
});

test("commands are printed as a shell user would type them", () => {
  assert.equal(
    formatCommand([
      "kubectl",
      "patch",
      "meshconfig",
      "osm-mesh-config",
      "-p",
      '{"spec":{"traffic":{"enableEgress":false}}}',
      "--type=merge",
    ]),
    `kubectl patch meshconfig osm-mesh-config -p '{"spec":{"traffic":{"enableEgress":false}}}' --type=merge`,
  );
  assert.equal(formatCommand(["echo", "it's", ""]), `echo 'it'\\''s' ''`);
});

test("a step whose skip condition holds does not run and says why", async () => {
  const world = fakeDeps({ "kubectl get deployments": [ok("deployment.apps/osm-controller\n")] });
  const outcome = await runSteps(
    [
      {
        kind: "command",
        title: "is it installed",
        argv: ["kubectl", "get", "deployments"],
        expect: {},
        capture: "ctl",
      },
      {
        kind: "command",
        title: "install",
        argv: ["osm", "install"],
        expect: {},
        skip: (vars) => (vars.get("ctl") ? "the mesh is already installed" : undefined),
      },
    ],
    [],
    world.deps,
  );
  assert.equal(outcome.ok, true);
  assert.deepEqual(world.ran, ["kubectl get deployments"]);
  assert.match(world.output(), /\[2\/2\] install\n {2}skipped: the mesh is already installed\n/);
});

test("a refused connection may be any of several curl exit codes", () => {
  const reset: CommandResult = {
    code: 56,
    stdout: "",
    stderr: "curl: (56) Recv failure: Connection reset by peer\n",
  };
  assert.deepEqual(checkResult({ exitCodeIn: [7, 52, 56] }, reset), []);
  assert.deepEqual(checkResult({ exitCodeIn: [7, 52, 56] }, ok("HTTP/1.1 200 OK\n")), [
    "expected exit code 7 or 52 or 56, got 0",
  ]);
});

test("a failed step runs its diagnostics and shows their output", async () => {
  const world = fakeDeps({
    "kubectl rollout status deployment osm-controller": [{ code: 1, stdout: "", stderr: "timed out\n" }],
    "kubectl get pods -n osm-system": [ok("osm-controller-1 0/1 CrashLoopBackOff\n")],
  });
  const outcome = await runSteps(
    [
      {
        kind: "command",
        title: "wait",
        argv: ["kubectl", "rollout", "status", "deployment", "osm-controller"],
        expect: {},
        diagnose: [["kubectl", "get", "pods", "-n", "osm-system"]],
      },
    ],
    [],
    world.deps,
  );
  assert.equal(outcome.ok, false);
  assert.match(
    world.output(),
    /\(diagnostics\) \$ kubectl get pods -n osm-system\nosm-controller-1 0\/1 CrashLoopBackOff\n/,
  );
});

test("what a step checked is printed readably", async () => {
  const { describeExpectation } = await import("../../../src/guide/demo/expect.ts");
  assert.equal(
    describeExpectation({ stdout: [/namespace\/curl created/] }),
    'exit 0, "namespace/curl created"',
  );
  assert.equal(describeExpectation({ exitCodeIn: [7, 56], describe: "refused" }), "exit 7|56, refused");
  assert.equal(
    describeExpectation({ notOutput: [/STALE/], stdoutEquals: "[]" }),
    'exit 0, not "STALE", "[]"',
  );
});

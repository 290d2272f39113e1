/**
 * Issue 13's "Done when" for exec with a TTY, in a real terminal (tmux) with the real kubectl against the
 * embedded engine (`osm mesh up` on bridge `osmt-nt0`, 198.51.100.224/28): `kubectl exec -ti POD -c curl -- sh`
 * gives a prompt, `tty` prints /dev/pts/N, lines end in CR LF (no staircase), the terminal's size reaches the
 * pod, Ctrl-C interrupts the foreground job, `exit 3` returns 3; `kubectl attach` to a container started with
 * stdin and a TTY, and to one without.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hostLeftovers, localMesh, meshDownPurgeArgs } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";
import { openTerminal, type Terminal } from "../../support/tmux.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-nt-";
const BRIDGE = "osmt-nt0";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

const POD = `apiVersion: v1
kind: Pod
metadata: {name: term}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: curl, image: curlimages/curl, command: ["sleep", "365d"]}
  - {name: shell, image: busybox, command: ["sh"], stdin: true, tty: true}
  - {name: talker, image: busybox, command: ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]}
`;

describe("kubectl exec -ti and attach in a real terminal", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  let term: Terminal | undefined;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-term-"));
    let upArgs: string[];
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "198.51.100.224/28",
      subnet6: "2001:db8:1:c::/64",
      lastSlot: 14,
    }));
    const up = await run(OSM, upArgs, { env });
    assert.equal(up.code, 0, up.stderr);
    const applied = await run("kubectl", ["apply", "-f", "-"], { env, input: POD });
    assert.equal(applied.code, 0, applied.stderr);
    await until(
      "pod term 3/3 Running",
      async () => {
        const r = await kubectl("get", "pod", "term", "--no-headers");
        return /\s3\/3\s+Running\s/.test(r.stdout) ? true : undefined;
      },
      45_000,
      200,
    );
  });

  after(async () => {
    await term?.close();
    if (stateDir) await run(OSM, meshDownPurgeArgs(stateDir, kubeconfig), { env });
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("exec -ti sh: a prompt, tty is /dev/pts/N, CR LF lines, the window size, Ctrl-C, exit 3 returns 3", async () => {
    term = await openTerminal(dir, ["kubectl", "exec", "-ti", "term", "-c", "curl", "--", "sh"], env, {
      width: 120,
      height: 40,
    });
    await term.waitFor(/^#$/m, "a prompt");
    await term.type("tty", true);
    // Column 0: with bare line feeds the answer would start below the end of the typed line (a staircase).
    await term.waitFor(/^# tty\n\/dev\/pts\/\d+\n#$/m, "tty's answer at the start of the next line");
    await term.type("stty size", true);
    await term.waitFor(/^# stty size\n40 120\n#$/m, "the terminal's size inside the pod");
    await term.type("sleep 30; echo not-interrupted", true);
    await new Promise((r) => setTimeout(r, 500));
    await term.keys("C-c");
    await term.waitFor(/\^C\n#$/m, "the prompt back after Ctrl-C");
    await term.type("exit 3", true);
    assert.equal(await term.exitStatus(), 3);
    assert.doesNotMatch((await term.screen()).join("\n"), /^not-interrupted$/m);
    await term.close();
    term = undefined;
  });

  test("exec -ti with a command prints as on a cluster and Ctrl-D ends an interactive shell with 0", async () => {
    term = await openTerminal(dir, ["kubectl", "exec", "-ti", "term", "-c", "curl", "--", "sh"], env);
    await term.waitFor(/^#$/m, "a prompt");
    await term.type("printf 'one\\ntwo\\n'", true);
    await term.waitFor(/^one\ntwo\n#$/m, "two lines, each at column 0");
    await term.keys("C-d");
    // Under a loaded machine the first ^D has been seen to arrive before the shell re-read its terminal; a
    // second one at the same empty prompt is what a person would type, and still proves ^D ends it with 0.
    const ended = await term.exitStatus(5000).catch(() => undefined);
    if (ended === undefined) await term.keys("C-d");
    assert.equal(ended ?? (await term.exitStatus()), 0);
    await term.close();
    term = undefined;
  });

  test("attach -ti joins the container's own shell (stdin and tty in its spec)", async () => {
    term = await openTerminal(dir, ["kubectl", "attach", "-ti", "term", "-c", "shell"], env);
    await term.waitFor(/If you don't see a command prompt, try pressing enter\./, "kubectl's attach hint");
    await term.type("echo attached-$((40+2))", true);
    await term.waitFor(/^attached-42$/m, "the attached shell's answer");
    await term.close();
    term = undefined;
    const r = await kubectl(
      "get",
      "pod",
      "term",
      "-o",
      "jsonpath={.status.containerStatuses[?(@.name=='shell')].state}",
    );
    assert.match(r.stdout, /running/, "detaching leaves the container running");
  });

  test("attach without -i shows a container's output from then on", async () => {
    const r = await run("kubectl", ["attach", "term", "-c", "talker"], {
      env,
      timeoutMs: 2000,
      killSignal: "SIGINT",
    });
    assert.match(r.stdout, /^tick\ntick\n/m);
  });

  test("exec without -t still separates stdout and stderr and returns the exit code", async () => {
    const r = await kubectl("exec", "term", "-c", "curl", "--", "sh", "-c", "echo out; echo err >&2; exit 4");
    assert.equal(r.code, 4);
    assert.equal(r.stdout, "out\n");
    assert.match(r.stderr, /^err\n/);
  });
});

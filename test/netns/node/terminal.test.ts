/**
 * Exec on a pseudo-terminal and attach, on the node runtime alone (bridge `osmt-nk0`, 198.51.100.240/28):
 * `tty` inside, CR LF output, resize, Ctrl-C reaching the foreground job, exit codes, and `attach` to a
 * container started with `stdin`/`tty`, and to one without (its output from then on).
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import type { NodeNetworkConfig } from "../../../src/local/node/network-config.ts";
import type { NodeRuntime } from "../../../src/local/node/runtime.ts";
import { TerminalSizeQueue } from "../../../src/local/remote-command.ts";
import { until } from "../../support/poll.ts";
import { allRunning, destroyRuntime, leftovers, makePod, newRuntime, rootSkip, waitFor } from "./harness.ts";

const NETWORK: NodeNetworkConfig = {
  bridge: "osmt-nk0",
  namePrefix: "osmt-nk-",
  subnet4: "198.51.100.240/28",
  subnet6: "2001:db8:1:a::/64",
  gatewayOffset: 1,
  firstSlot: 2,
  lastSlot: 14,
};

/** A client session: what it typed goes in, what came out is collected. */
function session() {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  stdout.on("data", (b: Buffer) => out.push(b));
  stderr.on("data", (b: Buffer) => out.push(b));
  const resize = new TerminalSizeQueue();
  return { stdin, stdout, stderr, resize, text: () => Buffer.concat(out).toString() };
}

const ref = (pod: V1Pod, container: string) => ({
  namespace: pod.metadata?.namespace ?? "",
  pod: pod.metadata?.name ?? "",
  container,
});

describe("exec with a TTY and attach on the node runtime", { skip: rootSkip, concurrency: false }, () => {
  let runtime: NodeRuntime;
  let stateDir: string;
  let pod: V1Pod;

  before(async () => {
    ({ runtime, stateDir } = newRuntime(NETWORK));
    await runtime.start();
    pod = makePod({
      containers: [
        { name: "sleeper", image: "busybox", command: ["sleep", "3600"] },
        { name: "shell", image: "busybox", command: ["sh"], stdin: true, tty: true },
        { name: "cat", image: "busybox", command: ["cat"], stdin: true, stdinOnce: true },
        {
          name: "talker",
          image: "busybox",
          command: ["sh", "-c", "while true; do echo tick; echo tock >&2; sleep 0.2; done"],
        },
      ],
    });
    runtime.runPod(pod);
    await waitFor(runtime, pod.metadata?.uid ?? "", allRunning, "all containers running");
  });

  after(async () => {
    if (runtime) await destroyRuntime(runtime, stateDir);
    assert.deepEqual(await leftovers(NETWORK.namePrefix), []);
  });

  test("exec -t runs on a pseudo-terminal: tty is /dev/pts/N, lines end in CR LF, the size follows resize", async () => {
    const s = session();
    s.resize.push({ width: 123, height: 45 });
    const { exitCode } = await runtime.exec(
      { ...ref(pod, "sleeper"), command: ["sh", "-c", "tty; stty size; echo err >&2; exit 3"], tty: true },
      { stdin: null, stdout: s.stdout, stderr: s.stderr, resize: s.resize },
      AbortSignal.timeout(10_000),
    );
    assert.equal(exitCode, 3);
    assert.match(s.text(), /^\/dev\/pts\/\d+\r\n45 123\r\nerr\r\n$/);
  });

  test("an interactive shell: typed commands answer, Ctrl-C interrupts the foreground job, exit N returns N", async () => {
    const s = session();
    const done = runtime.exec(
      { ...ref(pod, "sleeper"), command: ["sh"], tty: true },
      { stdin: s.stdin, stdout: s.stdout, stderr: s.stderr, resize: s.resize },
      AbortSignal.timeout(15_000),
    );
    s.stdin.write("echo hello-$((6*7))\n");
    await until("the shell's answer", () => s.text().includes("hello-42\r\n") || undefined, 5000, 20);
    s.stdin.write("sleep 30; echo after-sleep\n");
    await new Promise((r) => setTimeout(r, 300));
    s.stdin.write("\x03");
    s.stdin.write("echo interrupted\n");
    await until(
      "the prompt back after Ctrl-C",
      () => s.text().includes("interrupted\r\n") || undefined,
      5000,
      20,
    );
    // The typed line is echoed; the command after the interrupted sleep never ran.
    assert.doesNotMatch(s.text(), /\nafter-sleep\r\n/);
    s.stdin.write("exit 5\n");
    assert.equal((await done).exitCode, 5);
  });

  test("Ctrl-D on an empty line ends the shell with 0", async () => {
    const s = session();
    const done = runtime.exec(
      { ...ref(pod, "sleeper"), command: ["sh"], tty: true },
      { stdin: s.stdin, stdout: s.stdout, stderr: s.stderr, resize: s.resize },
      AbortSignal.timeout(10_000),
    );
    s.stdin.write("\x04");
    assert.equal((await done).exitCode, 0);
  });

  test("attach to a tty container: typed input reaches its shell, detaching leaves it running", async () => {
    const s = session();
    const abort = new AbortController();
    const done = runtime.attach(ref(pod, "shell"), s, abort.signal);
    s.stdin.write("echo attached-$((2+3))\n");
    await until("the shell's answer", () => s.text().includes("attached-5\r\n") || undefined, 5000, 20);
    abort.abort();
    assert.equal((await done).exitCode, 0);
    const view = runtime.view(pod.metadata?.uid ?? "");
    assert.ok(view?.containers.find((c) => c.name === "shell" && "running" in c.state));
  });

  test("attach with stdinOnce: input reaches cat's stdin, and closing it ends the container", async () => {
    const s = session();
    const done = runtime.attach(ref(pod, "cat"), { ...s, resize: null }, AbortSignal.timeout(10_000));
    s.stdin.write("through cat\n");
    await until("cat's echo", () => s.text().includes("through cat\n") || undefined, 5000, 20);
    s.stdin.end();
    assert.equal((await done).exitCode, 0);
  });

  test("attach to a container without stdin shows its stdout and stderr from then on", async () => {
    const s = session();
    const abort = new AbortController();
    const done = runtime.attach(ref(pod, "talker"), { ...s, stdin: null, resize: null }, abort.signal);
    await until("tick and tock", () => (/tick\n[\s\S]*tock\n/.test(s.text()) ? true : undefined), 5000, 20);
    abort.abort();
    assert.equal((await done).exitCode, 0);
  });
});

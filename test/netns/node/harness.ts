/**
 * Shared set-up of the node runtime tests: a runtime on the test bridge `osmt-nb0` (198.51.100.128/26,
 * 2001:db8:1:1::/64, names `osmt-nd-<slot>`), never the daemon's `osm0`, plus helpers to wait and to exec.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import { createProcessRunner } from "../../../src/edge/command-runner.ts";
import type { NodeNetworkConfig } from "../../../src/local/node/network-config.ts";
import type { PodView } from "../../../src/local/node/pod-context.ts";
import { NodeRuntime } from "../../../src/local/node/runtime.ts";

const runCommand = (argv: readonly string[]) => createProcessRunner().run(argv);

export const TEST_NETWORK: NodeNetworkConfig = {
  bridge: "osmt-nb0",
  namePrefix: "osmt-nd-",
  subnet4: "198.51.100.128/26",
  subnet6: "2001:db8:1:1::/64",
  gatewayOffset: 1,
  firstSlot: 2,
  lastSlot: 62,
};

export const isRoot = process.getuid?.() === 0;
export const rootSkip = isRoot ? false : "needs root: creates network namespaces, veths and a bridge";

export function newRuntime(network: NodeNetworkConfig = TEST_NETWORK): {
  runtime: NodeRuntime;
  stateDir: string;
} {
  const stateDir = mkdtempSync(join(tmpdir(), "osmt-node-"));
  const runtime = new NodeRuntime({
    stateDir,
    network,
    nodeName: "osm-local",
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    backoff: { baseMs: 100, maxMs: 400 },
  });
  return { runtime, stateDir };
}

/** Stops every pod, removes the bridge and anything with our prefix, deletes the state dir. */
export async function destroyRuntime(runtime: NodeRuntime, stateDir: string): Promise<void> {
  await runtime.shutdown({ graceSeconds: 0, removeBridge: true });
  rmSync(stateDir, { recursive: true, force: true });
}

let counter = 0;
export function makePod(spec: V1Pod["spec"], name = `p${++counter}`): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "t", uid: `uid-${name}-${process.pid}-${Date.now()}` },
    spec: { terminationGracePeriodSeconds: 2, ...spec } as V1Pod["spec"],
  };
}

/** Polls `view(uid)` until `predicate` holds (bounded). */
export async function waitFor(
  runtime: NodeRuntime,
  uid: string,
  predicate: (v: PodView) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<PodView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = runtime.view(uid);
    if (v && predicate(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last view: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const allRunning = (v: PodView) => v.containers.every((c) => "running" in c.state && c.ready);

/** Runs a command in a container and captures its output. */
export async function execIn(
  runtime: NodeRuntime,
  pod: V1Pod,
  command: string[],
  container?: string,
  stdinText?: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (b: Buffer) => out.push(b));
  stderr.on("data", (b: Buffer) => err.push(b));
  const stdin = stdinText === undefined ? null : PassThrough.from([Buffer.from(stdinText)]);
  const { exitCode } = await runtime.exec(
    {
      namespace: pod.metadata?.namespace ?? "",
      pod: pod.metadata?.name ?? "",
      container,
      command,
      tty: false,
    },
    { stdin, stdout, stderr },
    AbortSignal.timeout(20_000),
  );
  return { exitCode, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

/** The full log of a container as a string. */
export async function logsOf(
  runtime: NodeRuntime,
  pod: V1Pod,
  container?: string,
  previous = false,
): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (b: Buffer) => chunks.push(b));
  await runtime.logs(
    {
      namespace: pod.metadata?.namespace ?? "",
      pod: pod.metadata?.name ?? "",
      container,
      follow: false,
      previous,
      tailLines: undefined,
      timestamps: false,
    },
    out,
    AbortSignal.timeout(10_000),
  );
  return Buffer.concat(chunks).toString();
}

/** Netns and links on the host with the test prefix (should be none after teardown). */
export async function leftovers(prefix = TEST_NETWORK.namePrefix): Promise<string[]> {
  const ns = (await runCommand(["ip", "netns", "list"])).stdout;
  const links = (await runCommand(["ip", "-o", "link", "show"])).stdout;
  return [...ns.split("\n"), ...links.split("\n").map((l) => l.split(": ")[1] ?? "")]
    .map((l) => (l.split(" ")[0] ?? "").split("@")[0] ?? "")
    .filter((n) => n.startsWith(prefix));
}

/** True while a process with this pid runs; a zombie (exited, not yet reaped by its adopter) counts as gone. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

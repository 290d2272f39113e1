/**
 * `kubectl port-forward` as a test runs it (the real kubectl, its output collected), and curl through it to an
 * httpbin `/anything`, which echoes the request body back in JSON (`data`): a byte-exact round trip.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, until } from "./poll.ts";
import { run } from "./run.ts";

export interface Forward {
  readonly child: ChildProcess;
  /** Everything kubectl printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (null after a signal) once kubectl has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (as ^C) and wait; the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `kubectl port-forward <args>` and waits until it listens on every `localPorts`. */
export async function startForward(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  localPorts: readonly number[],
): Promise<Forward> {
  const child = spawn("kubectl", ["port-forward", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const forward: Forward = {
    child,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
  await until(
    `kubectl port-forward listening on ${localPorts.join(", ")}`,
    () => {
      if (child.exitCode !== null)
        throw new Error(`kubectl port-forward exited ${child.exitCode}: ${output}`);
      return localPorts.every((p) => output.includes(`Forwarding from 127.0.0.1:${p} `)) ? true : undefined;
    },
    30_000,
  );
  return forward;
}

/** curl to 127.0.0.1:`port``path` (extra curl arguments before the URL). */
export function curlLocal(port: number, path: string, ...args: string[]) {
  return run("curl", ["-sS", "--max-time", "30", ...args, `http://127.0.0.1:${port}${path}`], {
    timeoutMs: 40_000,
  });
}

/** A body of `size` printable bytes, different for every call (httpbin echoes it as a JSON string). */
export function distinctBody(size: number): string {
  return randomBytes(Math.ceil(size / 2))
    .toString("hex")
    .slice(0, size);
}

/**
 * POSTs each body to `/anything` through the forward, all at once (one curl, one connection each), and
 * asserts that each comes back byte for byte.
 */
export async function echoAtOnce(port: number, dir: string, bodies: readonly string[]): Promise<void> {
  const files = bodies.map((body, i) => {
    const file = join(dir, `body-${i}-${body.length}`);
    writeFileSync(file, body);
    return file;
  });
  const answers = await Promise.all(
    files.map((file) =>
      curlLocal(
        port,
        "/anything",
        "--data-binary",
        `@${file}`,
        "-H",
        "Content-Type: application/octet-stream",
      ),
    ),
  );
  for (const [i, answer] of answers.entries()) {
    assert.equal(answer.code, 0, `connection ${i}: ${answer.stderr}`);
    const data = (JSON.parse(answer.stdout) as { data: string }).data;
    assert.equal(data.length, bodies[i]?.length, `connection ${i}: echoed length`);
    assert.ok(data === bodies[i], `connection ${i}: the echo differs from what was sent`);
  }
}

/** `n` distinct TCP ports on 127.0.0.1 that were free a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * A connection to `deadLocal`, forwarded to a pod port nothing listens on: curl fails, and kubectl 1.32 prints
 * the node's `reason` for it, then `error: lost connection to pod`, and exits 1 (as against a real kubelet).
 */
export async function expectForwardToDeadPort(
  forward: Forward,
  deadLocal: number,
  deadPort: number,
  reason: string,
): Promise<void> {
  const dead = await curlLocal(deadLocal, "/");
  assert.notEqual(dead.code, 0);
  assert.equal(await forward.exited, 1, forward.output());
  assert.ok(
    forward.output().includes(`an error occurred forwarding ${deadLocal} -> ${deadPort}: ${reason}`),
    forward.output(),
  );
  assert.match(forward.output(), /error: lost connection to pod/);
}

/**
 * httpbin through the forward: `/get?value=…` one request after another (one connection each, each answer
 * its own), then 8 connections at once, each echoing a distinct 1 MB body byte for byte.
 */
export async function expectSequentialThenConcurrent(port: number, dir: string): Promise<void> {
  for (const value of ["a", "b", "c"]) {
    const got = await curlLocal(port, `/get?value=${value}`);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual(JSON.parse(got.stdout).args, { value });
  }
  await echoAtOnce(
    port,
    dir,
    Array.from({ length: 8 }, () => distinctBody(1 << 20)),
  );
}

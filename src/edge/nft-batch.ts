/**
 * nft in many network namespaces without a process per command: one long-lived `osm-nft-batch`
 * (`native/nft-batch.c`, built by `npm run build` into `build/`) enters each namespace in turn and runs the
 * command text through libnftables, the library the `nft` command is built on, so a command is parsed and
 * committed exactly as `nft -f -` would. Requests are answered in order. `nftBatchRunner` puts it behind the
 * CommandRunner seam for the two shapes the live updates send (`nft -f -` with the text on stdin, and
 * `nft [-t] list …`); every other command, and every command when the helper is not built, goes to the
 * fallback runner.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { CommandResult, CommandRunner } from "./command-runner.ts";

/** Where `npm run build` writes the helper: `<repo>/build/osm-nft-batch` (git-ignored). */
export function nftBatchPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "build", "osm-nft-batch");
}

/** libnftables' NFT_CTX_OUTPUT_TERSE: list sets without their elements (`nft -t`). */
const OUTPUT_TERSE = 1 << 11;

interface Pending {
  readonly resolve: (r: CommandResult) => void;
}

/** One helper process: requests answered in order. */
class HelperProcess {
  readonly #binary: string;
  #child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  #pending: Pending[] = [];
  #buffered = Buffer.alloc(0);

  /** Called when the helper cannot work here at all (exit 3: libnftables is not installed). */
  readonly #onUnusable: () => void;

  constructor(binary: string, onUnusable: () => void) {
    this.#binary = binary;
    this.#onUnusable = onUnusable;
  }

  get queued(): number {
    return this.#pending.length;
  }

  run(netns: string, text: string, terse: boolean): Promise<CommandResult> {
    const child = this.#start();
    const body = Buffer.from(text);
    return new Promise((resolve) => {
      this.#pending.push({ resolve });
      child.stdin.write(`${netns}\t${terse ? OUTPUT_TERSE : 0}\t${body.length}\n`);
      child.stdin.write(body);
    });
  }

  close(): void {
    this.#child?.stdin.end();
    this.#child = undefined;
  }

  #start(): ChildProcessByStdio<Writable, Readable, null> {
    if (this.#child) return this.#child;
    const child = spawn(this.#binary, [], { stdio: ["pipe", "pipe", "inherit"] });
    this.#child = child;
    this.#buffered = Buffer.alloc(0);
    child.stdout.on("data", (chunk: Buffer) => {
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
      this.#drain();
    });
    const gone = (why: string) => {
      if (this.#child === child) this.#child = undefined;
      const pending = this.#pending;
      this.#pending = [];
      for (const p of pending) p.resolve({ code: 127, stdout: "", stderr: why, error: why });
    };
    child.on("error", (e) => gone(`osm-nft-batch: ${e.message}`));
    child.on("exit", (code, signal) => {
      if (code === 3) this.#onUnusable();
      gone(`osm-nft-batch exited (${signal ?? code})`);
    });
    child.stdin.on("error", () => {
      // the exit handler answers what was queued
    });
    return child;
  }

  /** Answers every complete reply in the buffer: "<code> <out bytes> <err bytes>\n<out><err>". */
  #drain(): void {
    for (;;) {
      const newline = this.#buffered.indexOf(10);
      if (newline < 0) return;
      const [code, outBytes, errBytes] = this.#buffered
        .subarray(0, newline)
        .toString()
        .split(" ")
        .map(Number);
      const end = newline + 1 + outBytes! + errBytes!;
      if (this.#buffered.length < end) return;
      const stdout = this.#buffered.subarray(newline + 1, newline + 1 + outBytes!).toString();
      const stderr = this.#buffered.subarray(newline + 1 + outBytes!, end).toString();
      this.#buffered = this.#buffered.subarray(end);
      this.#pending.shift()?.resolve({ code: code!, stdout, stderr });
    }
  }
}

/**
 * A few helper processes, started on first use; a request goes to the one with the fewest queued. Several,
 * because a transaction can wait in the kernel without using the CPU (a removal's RCU grace period, longer
 * on a loaded machine), and the others go on meanwhile.
 */
export class NftBatch {
  readonly #binary: string;
  readonly #processes: HelperProcess[];
  #unusable = false;

  constructor(binary = nftBatchPath(), processes = 4) {
    this.#binary = binary;
    const unusable = () => {
      this.#unusable = true;
    };
    this.#processes = Array.from({ length: processes }, () => new HelperProcess(binary, unusable));
  }

  /**
   * Whether the helper is built and can run here (else callers use `nft` processes): once it exited because
   * libnftables cannot be loaded, never again.
   */
  get available(): boolean {
    return !this.#unusable && existsSync(this.#binary);
  }

  /** Runs `text` as one nft transaction (or listing) inside the namespace at `netns`. Never throws. */
  run(netns: string, text: string, options: { terse?: boolean } = {}): Promise<CommandResult> {
    const idle = this.#processes.reduce((a, b) => (b.queued < a.queued ? b : a));
    return idle.run(netns, text, options.terse ?? false);
  }

  /** Ends the helpers; requests still queued resolve as failed. */
  close(): void {
    for (const p of this.#processes) p.close();
  }
}

/**
 * A runner for the namespace at `netns` that sends `nft -f -` (text on stdin) and `nft [-t] list …` to the
 * batch helper, and everything else to `fallback` (also everything when the helper is not built).
 */
export function nftBatchRunner(
  batch: Pick<NftBatch, "available" | "run">,
  netns: string,
  fallback: CommandRunner,
): CommandRunner {
  return {
    run(argv, options = {}) {
      if (argv[0] === "nft" && batch.available) {
        if (argv.length === 3 && argv[1] === "-f" && argv[2] === "-" && options.stdin !== undefined)
          return batch.run(netns, options.stdin);
        const terse = argv[1] === "-t";
        const rest = argv.slice(terse ? 2 : 1);
        if (rest[0] === "list" && rest.every((a) => /^[\w.-]+$/.test(a)))
          return batch.run(netns, rest.join(" "), { terse });
      }
      return fallback.run(argv, options);
    },
  };
}

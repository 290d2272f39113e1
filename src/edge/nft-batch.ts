/**
 * nft in many network namespaces without a process per command: long-lived `osm-nft-batch` processes
 * (`native/nft-batch.c`, built by `npm run build` into `build/`) enter each namespace in turn and run the
 * command text through libnftables, the library the `nft` command is built on, so a command is parsed and
 * committed exactly as `nft -f -` would; or send a netlink batch built once for every pod; or digest sets.
 * Requests are answered in order. `nftBatchRunner` puts the text path behind the CommandRunner seam for the
 * two shapes the live updates send (`nft -f -` with the text on stdin, and `nft [-t] list …`); every other
 * command, and every command when the helper is not built, goes to the fallback runner. `nftBatchNetlink`
 * gives the netlink path for one namespace.
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

/** What the helper does with a request's body (see `native/nft-batch.c`). */
type Mode = "t" | "T" | "n" | "d" | "g";

/**
 * nf_tables over netlink in one namespace, through the helper: for what nft's text would cost a parse per
 * pod (a 50,000-element change) and for a cheap look at set contents.
 */
export interface NftNetlink {
  /** Sends an nf_tables netlink batch as it is: one transaction, all or nothing. */
  send(batch: Uint8Array): Promise<CommandResult>;
  /**
   * Per set of the inet `table`, a line "<set> <count> <sum>": its elements that do not end an interval, and
   * the sum modulo 2^64 of the FNV-1a 64 hash of each one's key bytes (16 hex digits).
   */
  digests(table: string, sets: readonly string[]): Promise<CommandResult>;
  /**
   * The namespace's nf_tables generation: the kernel adds one per committed transaction, whoever made it (nft,
   * iptables-nft, this helper), so the same number means the same rules. undefined when it cannot be read.
   */
  generation(): Promise<number | undefined>;
}

/** A netlink batch this big (about 4,000 IPv4 elements) holds a core in the kernel for milliseconds. */
export const BIG_BATCH_BYTES = 64 * 1024;

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

  run(netns: string, mode: Mode, body: Uint8Array): Promise<CommandResult> {
    const child = this.#start();
    return new Promise((resolve) => {
      this.#pending.push({ resolve });
      child.stdin.write(`${netns}\t${mode}\t${body.length}\n`);
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

  readonly #bigBatchProcesses: number;

  /**
   * `bigBatchProcesses`: how many of the processes may run a big netlink batch (≥ BIG_BATCH_BYTES) at once.
   * The kernel applies a batch inside one system call, without yielding the CPU on a kernel that does not
   * preempt (this one's default): a 50,000-element batch holds a core for tens of milliseconds, so big ones
   * wait for each other and leave the other core to the pods.
   */
  constructor(binary = nftBatchPath(), processes = 4, bigBatchProcesses = 1) {
    this.#binary = binary;
    this.#bigBatchProcesses = Math.max(1, Math.min(processes, bigBatchProcesses));
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
    return this.#request(netns, options.terse ? "T" : "t", Buffer.from(text));
  }

  /** Sends an nf_tables netlink batch into the namespace at `netns` as it is. Never throws. */
  send(netns: string, batch: Uint8Array): Promise<CommandResult> {
    return this.#request(
      netns,
      "n",
      batch,
      batch.length >= BIG_BATCH_BYTES ? this.#bigBatchProcesses : undefined,
    );
  }

  /** Digests of sets of the inet `table` in the namespace at `netns` (see NftNetlink). Never throws. */
  digests(netns: string, table: string, sets: readonly string[]): Promise<CommandResult> {
    return this.#request(netns, "d", Buffer.from([table, ...sets].join("\n")));
  }

  /** The nf_tables generation of the namespace at `netns` (see NftNetlink). Never throws. */
  async generation(netns: string): Promise<number | undefined> {
    const r = await this.#request(netns, "g", Buffer.alloc(0));
    return r.code === 0 && /^\d+\n$/.test(r.stdout) ? Number(r.stdout) : undefined;
  }

  #request(
    netns: string,
    mode: Mode,
    body: Uint8Array,
    among = this.#processes.length,
  ): Promise<CommandResult> {
    const idle = this.#processes.slice(0, among).reduce((a, b) => (b.queued < a.queued ? b : a));
    return idle.run(netns, mode, body);
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

/** The netlink path into the namespace at `netns`, or undefined when the helper is not built or not usable. */
export function nftBatchNetlink(
  batch: Pick<NftBatch, "available" | "send" | "digests" | "generation">,
  netns: string,
): NftNetlink | undefined {
  if (!batch.available) return undefined;
  return {
    send: (bytes) => batch.send(netns, bytes),
    digests: (table, sets) => batch.digests(netns, table, sets),
    generation: () => batch.generation(netns),
  };
}

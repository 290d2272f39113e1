/**
 * Captured container output, one file per container attempt: `<dir>/<podUid>/<container>/<attempt>.log`, in
 * the CRI log format (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`), so `--timestamps` and interleaving of
 * stdout/stderr are exact. Followers of a live attempt are fed from memory, never by polling the file.
 */
import { EventEmitter } from "node:events";
import { appendFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";

export interface LogLine {
  readonly time: string;
  readonly stream: "stdout" | "stderr";
  /** False for a last line that had no newline. */
  readonly full: boolean;
  readonly text: string;
}

export interface LogWriter {
  write(stream: "stdout" | "stderr", chunk: Buffer): void;
  /** Flushes partial lines and ends followers. */
  close(): void;
}

export interface ReadOptions {
  readonly follow: boolean;
  readonly tailLines: number | undefined;
  readonly timestamps: boolean;
  /** Only lines written in the last N seconds. */
  readonly sinceSeconds?: number | undefined;
  /** Stop after this many bytes (the last line cut), as the kubelet's `limitBytes`. */
  readonly limitBytes?: number | undefined;
}

function nowNano(): string {
  // RFC3339 with nanoseconds, as the kubelet prints them; the clock has ms resolution, so pad.
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

export function formatLine(line: LogLine, timestamps: boolean): string {
  return `${timestamps ? `${line.time} ` : ""}${line.text}${line.full ? "\n" : ""}`;
}

function parseLine(raw: string): LogLine | undefined {
  const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(raw);
  if (!m) return undefined;
  return {
    time: m[1] as string,
    stream: m[2] as "stdout" | "stderr",
    full: m[3] === "F",
    text: m[4] as string,
  };
}

/**
 * Writes and waits until `out` has taken the chunk: a caller that ends its response right after `read`
 * resolves must not lose lines still buffered in `out`.
 */
function writeFully(out: Writable, text: string | Buffer): Promise<void> {
  if (text.length === 0 || out.destroyed) return Promise.resolve();
  return new Promise((resolve) => out.write(text, () => resolve()));
}

/** A writer that stops at `limit` bytes (cutting the chunk that crosses it); `full` tells when it got there. */
function limitedWriter(out: Writable, limit: number | undefined) {
  let left = limit ?? Number.POSITIVE_INFINITY;
  return {
    write: (text: string) => {
      if (left === Number.POSITIVE_INFINITY) return writeFully(out, text);
      const bytes = Buffer.from(text).subarray(0, Math.max(0, left));
      left -= bytes.length;
      return writeFully(out, bytes);
    },
    full: () => left <= 0,
  };
}

export class LogStore {
  readonly dir: string;
  readonly #live = new EventEmitter<Record<string, [LogLine | null]>>();
  readonly #open = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
    this.#live.setMaxListeners(0);
  }

  #file(podUid: string, container: string, attempt: number): string {
    return join(this.dir, podUid, container, `${attempt}.log`);
  }

  /** Opens the log of one attempt for writing (created empty, so a reader sees it at once). */
  open(podUid: string, container: string, attempt: number): LogWriter {
    const file = this.#file(podUid, container, attempt);
    mkdirSync(join(this.dir, podUid, container), { recursive: true });
    appendFileSync(file, "");
    const key = file;
    this.#open.add(key);
    const partial: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
    const emit = (line: LogLine) => {
      appendFileSync(file, `${line.time} ${line.stream} ${line.full ? "F" : "P"} ${line.text}\n`);
      this.#live.emit(key, line);
    };
    return {
      write: (stream, chunk) => {
        const text = partial[stream] + chunk.toString("utf8");
        const parts = text.split("\n");
        partial[stream] = parts.pop() ?? "";
        const time = nowNano();
        for (const p of parts) emit({ time, stream, full: true, text: p });
      },
      close: () => {
        for (const stream of ["stdout", "stderr"] as const) {
          if (partial[stream]) emit({ time: nowNano(), stream, full: false, text: partial[stream] });
          partial[stream] = "";
        }
        this.#open.delete(key);
        this.#live.emit(key, null);
      },
    };
  }

  /** Lines of one attempt so far. */
  lines(podUid: string, container: string, attempt: number): LogLine[] {
    let raw: string;
    try {
      raw = readFileSync(this.#file(podUid, container, attempt), "utf8");
    } catch {
      return [];
    }
    const out: LogLine[] = [];
    for (const l of raw.split("\n")) {
      const line = l ? parseLine(l) : undefined;
      if (line) out.push(line);
    }
    return out;
  }

  /** Writes the attempt's log to `out`; with `follow`, keeps writing until the attempt ends or `signal` aborts. */
  async read(
    podUid: string,
    container: string,
    attempt: number,
    options: ReadOptions,
    out: Writable,
    signal: AbortSignal,
  ): Promise<void> {
    const key = this.#file(podUid, container, attempt);
    const queued: LogLine[] = [];
    let ended = !this.#open.has(key) || !options.follow;
    let wake: (() => void) | undefined;
    const onLine = (line: LogLine | null) => {
      if (line === null) ended = true;
      else queued.push(line);
      wake?.();
    };
    if (!ended) this.#live.on(key, onLine);
    const onAbort = () => {
      ended = true;
      wake?.();
    };
    signal.addEventListener("abort", onAbort);
    const sink = limitedWriter(out, options.limitBytes);
    try {
      // Synchronous read right after subscribing: no line can be emitted in between (one thread).
      const since = options.sinceSeconds;
      const cutoff = since === undefined ? "" : new Date(Date.now() - since * 1000).toISOString();
      // RFC3339 timestamps of one clock compare as strings (ms vs ns padding: the first 23 chars decide).
      const existing = this.lines(podUid, container, attempt).filter(
        (l) => l.time.slice(0, 23) >= cutoff.slice(0, 23),
      );
      const n = options.tailLines;
      const start = n === undefined || n < 0 ? existing : n === 0 ? [] : existing.slice(-n);
      await sink.write(start.map((l) => formatLine(l, options.timestamps)).join(""));
      while (!signal.aborted && !sink.full()) {
        await sink.write(
          queued
            .splice(0)
            .map((l) => formatLine(l, options.timestamps))
            .join(""),
        );
        if (ended || sink.full()) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.#live.off(key, onLine);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Every line of a live attempt from now on (null: the attempt ended); returns the unsubscribe function. */
  subscribe(podUid: string, container: string, attempt: number, listener: (line: LogLine | null) => void) {
    const key = this.#file(podUid, container, attempt);
    if (!this.#open.has(key)) {
      listener(null);
      return () => {};
    }
    this.#live.on(key, listener);
    return () => {
      this.#live.off(key, listener);
    };
  }

  /** Deletes every log of a pod. */
  removePod(podUid: string): void {
    rmSync(join(this.dir, podUid), { recursive: true, force: true });
  }
}

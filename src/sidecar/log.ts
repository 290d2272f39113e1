/**
 * The sidecar's log: one JSON object per line on stdout, in pino's shape (`level` as a number, `time`, the
 * base fields, the call's fields, `msg`), so the same tools read it as the other components' logs.
 *
 * Why not pino here: it costs every pod ~7 MB of RSS (bench/README.md), and the sidecar needs only leveled
 * JSON lines. Lines go out in batches, at most LOG_BATCH_MS after the first line of a batch, in one
 * asynchronous write (a thread-pool job) per batch, never on the data path: one write per connection cost
 * ~50 µs of CPU per connection, a third of the proxy's. While a batch is being written the next one
 * collects; past MAX_PENDING_BYTES lines are dropped and counted (a stuck reader of stdout must cost memory
 * up to a bound, never the proxy), and a line says how many once the log moves again. A closed stdout
 * (EPIPE) ends logging, nothing else.
 */
import { write } from "node:fs";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

const LEVELS: Record<LogLevel, number> = {
  fatal: 60,
  error: 50,
  warn: 40,
  info: 30,
  debug: 20,
  trace: 10,
  silent: Number.POSITIVE_INFINITY,
};

export const LOG_LEVELS = Object.keys(LEVELS) as LogLevel[];

/** What the sidecar's modules log through; a pino Logger fits it too (the unit tests pass one). */
export interface SidecarLogger {
  fatal(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
}

/**
 * The access log: one line per connection (msg `connection`, at level info), written whatever the log level,
 * as Envoy's access log is. OSM's default sidecar log level is `error`; the decisions must still be visible
 * (`osm dashboard`'s live stream, `kubectl logs`). `--access-log off` turns it off.
 */
export interface AccessLog {
  connection(fields: object): void;
}

export const LOG_BATCH_MS = 10;
/** Bytes waiting for stdout beyond which new lines are dropped (counted). */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;
/** How long to wait before retrying a write that stdout refused with EAGAIN (a non-blocking pipe, full). */
const RETRY_MS = 10;

/** Errors as pino's `err` serializer shows them: type, message, stack, code. */
function replacer(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code = (value as NodeJS.ErrnoException).code;
  return { type: value.name, message: value.message, stack: value.stack, ...(code ? { code } : {}) };
}

export interface JsonLog extends SidecarLogger, AccessLog {
  /** Writes what is pending; resolves once it is written, the log broke, or `timeoutMs` passed. */
  flush(timeoutMs: number): Promise<void>;
}

/**
 * A logger writing to `fd` (1: stdout). `base` goes into every line after `time`. `clock` gives `time`.
 */
export function createJsonLog(options: {
  level: LogLevel;
  /** Connection lines whatever `level` is (default true). */
  accessLog?: boolean;
  base: Record<string, unknown>;
  fd?: number;
  clock?: () => Date;
}): JsonLog {
  const fd = options.fd ?? 1;
  const threshold = LEVELS[options.level];
  // `time` of every line: toISOString() costs microseconds, and a batch of access-log lines mostly shares
  // its millisecond, so the text is kept for the millisecond it was made in.
  let lastMs = Number.NaN;
  let lastIso = "";
  const { clock } = options;
  const isoNow =
    clock === undefined
      ? (): string => {
          const ms = Date.now();
          if (ms !== lastMs) {
            lastMs = ms;
            lastIso = new Date(ms).toISOString();
          }
          return lastIso;
        }
      : (): string => clock().toISOString();
  const base = JSON.stringify(options.base).slice(1, -1);
  let pending: string[] = [];
  let pendingBytes = 0;
  let dropped = 0;
  let writing = false;
  let broken = false;
  let timer: NodeJS.Timeout | undefined;
  let waiters: Array<() => void> = [];

  const settle = (): void => {
    if (!broken && (writing || pending.length > 0)) return;
    const done = waiters;
    waiters = [];
    for (const resolve of done) resolve();
  };
  const writeOut = (buffer: Buffer, offset: number): void => {
    write(fd, buffer, offset, buffer.length - offset, null, (error, written) => {
      if (error?.code === "EAGAIN") {
        setTimeout(() => writeOut(buffer, offset), RETRY_MS).unref();
        return;
      }
      if (error) {
        broken = true;
        writing = false;
        pending = [];
        settle();
        return;
      }
      if (offset + written < buffer.length) {
        writeOut(buffer, offset + written);
        return;
      }
      writing = false;
      if (pending.length > 0) startBatch();
      else settle();
    });
  };
  const startBatch = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (writing || broken || pending.length === 0) return;
    if (dropped > 0) {
      pending.push(format(LEVELS.warn, { dropped }, "log lines dropped (stdout too slow)"));
      dropped = 0;
    }
    const text = pending.join("");
    pending = [];
    pendingBytes = 0;
    writing = true;
    writeOut(Buffer.from(text), 0);
  };
  /** `plain`: the fields hold no Error (access-log lines), so JSON.stringify needs no replacer (its slow path). */
  const format = (level: number, fields: object, msg: string, plain = false): string => {
    const body = (plain ? JSON.stringify(fields) : JSON.stringify(fields, replacer)).slice(1, -1);
    return `{"level":${level},"time":"${isoNow()}"${base ? `,${base}` : ""}${body ? `,${body}` : ""},"msg":${JSON.stringify(msg)}}\n`;
  };
  const log =
    (level: number, always = false) =>
    (fields: object, msg: string): void => {
      if ((level < threshold && !always) || broken) return;
      if (pendingBytes > MAX_PENDING_BYTES) {
        dropped += 1;
        return;
      }
      const line = format(level, fields, msg, always);
      pending.push(line);
      pendingBytes += line.length;
      if (!writing) timer ??= setTimeout(startBatch, LOG_BATCH_MS);
    };
  const connectionLine = log(LEVELS.info, true);
  return {
    fatal: log(LEVELS.fatal),
    error: log(LEVELS.error),
    warn: log(LEVELS.warn),
    info: log(LEVELS.info),
    debug: log(LEVELS.debug),
    connection:
      options.accessLog === false ? () => {} : (fields: object) => connectionLine(fields, "connection"),
    flush(timeoutMs: number): Promise<void> {
      startBatch();
      return new Promise((resolve) => {
        const giveUp = setTimeout(resolve, timeoutMs);
        waiters.push(() => {
          clearTimeout(giveUp);
          resolve();
        });
        settle();
      });
    },
  };
}

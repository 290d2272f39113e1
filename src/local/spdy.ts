/**
 * The server side of a SPDY/3.1 session, the subset Kubernetes streaming uses (its client is moby/spdystream,
 * in kubectl and kube-apiserver): the client opens streams with SYN_STREAM whose headers say what they are (no
 * `:method`/`:path`), the server accepts one with an empty SYN_REPLY or refuses it with RST_STREAM, DATA flows
 * both ways, a FIN half-closes, RST_STREAM aborts, PINGs are echoed, GOAWAY stops new streams. spdystream never
 * sends WINDOW_UPDATE, so no flow-control window is kept: SETTINGS, WINDOW_UPDATE and HEADERS are read and
 * ignored, and backpressure is TCP's (reading pauses while a stream's reader is behind, as spdystream's frame
 * workers block).
 *
 * Header blocks: the peer's form one zlib stream for the whole session, primed with SPDY/3's dictionary and
 * sync-flushed after each block, so one inflater reads them in order, a block at a time. Ours are zlib stored
 * (uncompressed) blocks: a valid zlib stream that needs no compressor state, so a reply is written at once.
 */
import { Duplex } from "node:stream";
import { constants, createInflate, type Inflate } from "node:zlib";
import { SPDY3_DICTIONARY } from "./spdy-dictionary.ts";

export const SYN_STREAM = 1;
export const SYN_REPLY = 2;
export const RST_STREAM = 3;
export const SETTINGS = 4;
export const PING = 6;
export const GOAWAY = 7;
export const HEADERS = 8;
export const WINDOW_UPDATE = 9;
export const FLAG_FIN = 0x01;
/** RST_STREAM status codes used here. */
export const PROTOCOL_ERROR = 1;
export const REFUSED_STREAM = 3;
export const CANCEL = 5;

const VERSION = 3;
const EMPTY = Buffer.alloc(0);
/** DATA written in frames of at most this much (spdystream reads any length up to 2^24 - 1). */
const MAX_DATA = 64 * 1024;
/** A peer's header block inflating to more than this ends the session. */
const MAX_HEADER_BLOCK = 256 * 1024;

export type Frame =
  | { readonly kind: "data"; readonly streamId: number; readonly flags: number; readonly data: Buffer }
  | {
      readonly kind: "control";
      readonly version: number;
      readonly type: number;
      readonly flags: number;
      readonly body: Buffer;
    };

/** The first whole frame in `input` and its size in bytes, or undefined while it is still incomplete. */
export function splitFrame(input: Buffer): { frame: Frame; size: number } | undefined {
  if (input.length < 8) return undefined;
  const length = input.readUInt32BE(4) & 0xffffff;
  if (input.length < 8 + length) return undefined;
  const flags = input[4] ?? 0;
  const body = input.subarray(8, 8 + length);
  const first = input.readUInt32BE(0);
  const frame: Frame =
    first & 0x80000000
      ? { kind: "control", version: (first >>> 16) & 0x7fff, type: first & 0xffff, flags, body }
      : { kind: "data", streamId: first & 0x7fffffff, flags, data: body };
  return { frame, size: 8 + length };
}

function frameHead(first: number, flags: number, length: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(first >>> 0, 0);
  head.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return head;
}

export function encodeControlFrame(type: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([frameHead(0x80000000 | (VERSION << 16) | type, flags, body.length), body]);
}

/** DATA frames carrying `data` (split at 64 KiB); FIN, when asked for, on the last (an empty frame if no data). */
export function encodeDataFrames(streamId: number, data: Buffer, fin: boolean): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  do {
    const part = data.subarray(at, at + MAX_DATA);
    at += part.length;
    parts.push(frameHead(streamId & 0x7fffffff, fin && at >= data.length ? FLAG_FIN : 0, part.length), part);
  } while (at < data.length);
  return Buffer.concat(parts);
}

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  for (const [i, v] of values.entries()) b.writeUInt32BE(v >>> 0, 4 * i);
  return b;
}

/** An uncompressed SPDY/3 header block: a 32-bit count, then each name and value after its 32-bit length. */
export function encodeHeaderBlock(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts = [u32(headers.length)];
  for (const [name, value] of headers) {
    for (const text of [name.toLowerCase(), value]) {
      const bytes = Buffer.from(text, "utf8");
      parts.push(u32(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Reads an uncompressed header block. Names are lower-cased; a value with several parts keeps its NUL
 * separators. Throws on a truncated block.
 */
export function decodeHeaderBlock(block: Buffer): Map<string, string> {
  if (block.length < 4) throw new Error("SPDY header block truncated");
  let at = 4;
  const take = (): string => {
    if (at + 4 > block.length) throw new Error("SPDY header block truncated");
    const length = block.readUInt32BE(at);
    if (length > block.length - at - 4) throw new Error("SPDY header block truncated");
    const text = block.toString("utf8", at + 4, at + 4 + length);
    at += 4 + length;
    return text;
  };
  const headers = new Map<string, string>();
  for (let i = block.readUInt32BE(0); i > 0; i--) {
    const name = take().toLowerCase();
    headers.set(name, take());
  }
  return headers;
}

/** zlib's header for a stream primed with SPDY/3's dictionary: CMF, FLG (FDICT set), the dictionary's Adler-32. */
function zlibHeader(): Buffer {
  let a = 1;
  let b = 0;
  for (const byte of SPDY3_DICTIONARY) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return Buffer.concat([Buffer.from([0x78, 0xbb]), u32(((b << 16) | a) >>> 0)]);
}

/**
 * `data` as deflate stored blocks (at most 65535 bytes each, never final), then the empty stored block that a
 * sync flush writes: a reader such as Go's hands out what it has decoded only when it meets that marker.
 */
function storedBlocks(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const part = data.subarray(at, at + 0xffff);
    at += part.length;
    parts.push(storedBlockHead(part.length), part);
  }
  parts.push(storedBlockHead(0));
  return Buffer.concat(parts);
}

function storedBlockHead(length: number): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt16LE(length, 1);
  head.writeUInt16LE(~length & 0xffff, 3);
  return head;
}

/** The sending side's header compression: the zlib header once, then each block stored. */
export class HeaderDeflater {
  #started = false;

  compress(block: Buffer): Buffer {
    const out = this.#started ? storedBlocks(block) : Buffer.concat([zlibHeader(), storedBlocks(block)]);
    this.#started = true;
    return out;
  }
}

/** The receiving side's: one inflater for the session; each block is inflated through its sync flush. */
export class HeaderInflater {
  readonly #zlib: Inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
  #out: Buffer[] = [];
  #size = 0;
  #failure: Error | undefined;
  #pending: ((error?: Error) => void) | undefined;

  constructor() {
    // A listener from the start keeps the stream flowing, so a flush's output is emitted before its callback.
    this.#zlib.on("data", (chunk: Buffer) => {
      this.#size += chunk.length;
      if (this.#size > MAX_HEADER_BLOCK) this.#fail(new Error("SPDY header block too large"));
      else this.#out.push(chunk);
    });
    this.#zlib.on("error", (error) => this.#fail(new Error(`SPDY header block: ${error.message}`)));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#pending?.(error);
    this.#pending = undefined;
  }

  /** The next block's bytes; one call at a time (the next only after this one settles). */
  inflate(compressed: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      this.#pending = (error) => (error ? reject(error) : resolve(Buffer.concat(this.#out)));
      this.#out = [];
      this.#size = 0;
      this.#zlib.write(compressed);
      this.#zlib.flush(constants.Z_SYNC_FLUSH, () => {
        this.#pending?.();
        this.#pending = undefined;
      });
    });
  }

  close(): void {
    this.#zlib.close();
  }
}

/** One SPDY stream as a Duplex: reads are the peer's DATA, writes go out as DATA, `end()` sends FIN. */
export class SpdyStream extends Duplex {
  readonly id: number;
  /** The SYN_STREAM's headers (see decodeHeaderBlock). */
  readonly headers: ReadonlyMap<string, string>;
  readonly #session: SpdySession;
  /** The peer reset it (or the session ended), so closing it sends no RST_STREAM. */
  #gone = false;

  constructor(session: SpdySession, id: number, headers: ReadonlyMap<string, string>) {
    super({ allowHalfOpen: true });
    this.#session = session;
    this.id = id;
    this.headers = headers;
  }

  /** Ends it without telling the peer (it reset the stream, or the session is over). */
  abandon(): void {
    this.#gone = true;
    this.destroy();
  }

  override _read(): void {
    this.#session.readingResumed(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#session.sendData(this.id, chunk, false, cb);
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.#session.sendData(this.id, EMPTY, true, cb);
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    const finished = this.readableEnded && this.writableFinished;
    this.#session.forget(this, !this.#gone && !finished);
    cb(error);
  }
}

export interface SpdyHandlers {
  /** Why a new stream is refused (it is reset without a reply), or undefined to accept it. */
  readonly refuse?: (headers: ReadonlyMap<string, string>) => string | undefined;
  /** Each accepted stream, after its SYN_REPLY. */
  readonly onStream: (stream: SpdyStream) => void;
  /** A stream refused or a session ended by a protocol error, with the reason. */
  readonly onProblem?: (message: string) => void;
}

/** A SPDY/3.1 server session on `socket` (already upgraded). */
export class SpdySession {
  readonly #socket: Duplex;
  readonly #handlers: SpdyHandlers;
  readonly #streams = new Map<number, SpdyStream>();
  readonly #inflater = new HeaderInflater();
  readonly #deflater = new HeaderDeflater();
  /** Streams whose reader is behind; the socket is paused while there are any. */
  readonly #behind = new Set<SpdyStream>();
  #drainWaiters: Array<(error?: Error | null) => void> = [];
  #input: Buffer = EMPTY;
  /** A header block is inflating: frames after it wait. */
  #inflating = false;
  #lastStreamId = -1;
  #goingAway = false;
  #closed = false;

  constructor(socket: Duplex, handlers: SpdyHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.on("data", (chunk: Buffer) => {
      this.#input = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
      this.#pump();
    });
    socket.on("drain", () => {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const cb of waiters) cb();
    });
    socket.on("end", () => this.close());
    socket.on("close", () => this.close());
    socket.on("error", () => this.close());
  }

  /** Ends the session: every stream is abandoned and the socket destroyed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.abandon();
    this.#streams.clear();
    for (const cb of this.#drainWaiters.splice(0)) cb(new Error("SPDY session closed"));
    this.#socket.destroy();
    this.#inflater.close();
  }

  /** Writes DATA for a stream; `cb` runs once the socket takes more (TCP backpressure). */
  sendData(id: number, data: Buffer, fin: boolean, cb: (error?: Error | null) => void): void {
    if (this.#closed) cb(new Error("SPDY session closed"));
    else if (this.#socket.write(encodeDataFrames(id, data, fin))) cb();
    else this.#drainWaiters.push(cb);
  }

  /** A stream left: RST_STREAM CANCEL when it ended early on this side. */
  forget(stream: SpdyStream, reset: boolean): void {
    this.readingResumed(stream);
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (reset) this.#write(encodeControlFrame(RST_STREAM, 0, u32(stream.id, CANCEL)));
    if (this.#goingAway && this.#streams.size === 0) this.close();
  }

  /** A stream's reader wants more: reading resumes once no stream is behind. */
  readingResumed(stream: SpdyStream): void {
    if (this.#behind.delete(stream) && this.#behind.size === 0 && !this.#closed) this.#socket.resume();
  }

  #write(bytes: Buffer): void {
    if (!this.#closed) this.#socket.write(bytes);
  }

  /** A protocol error: GOAWAY PROTOCOL_ERROR, then the session ends. */
  #fail(message: string): void {
    if (this.#closed) return;
    this.#handlers.onProblem?.(message);
    this.#write(encodeControlFrame(GOAWAY, 0, u32(Math.max(this.#lastStreamId, 0), PROTOCOL_ERROR)));
    this.#socket.end();
    this.close();
  }

  #pump(): void {
    while (!this.#inflating && !this.#closed) {
      const split = splitFrame(this.#input);
      if (!split) return;
      const { frame } = split;
      this.#input = this.#input.subarray(split.size);
      if (frame.kind === "data") {
        this.#onData(frame.streamId, frame.flags, frame.data);
        continue;
      }
      if (frame.version !== VERSION) {
        this.#fail(`SPDY version ${frame.version} is not 3`);
        return;
      }
      const headerAt = { [SYN_STREAM]: 10, [SYN_REPLY]: 4, [HEADERS]: 4 }[frame.type];
      if (headerAt === undefined) {
        this.#onControl(frame.type, frame.body);
        continue;
      }
      if (frame.body.length < headerAt) {
        this.#fail(`SPDY frame type ${frame.type} too short`);
        return;
      }
      // The header block must go through the inflater even when the frame is ignored, to keep it in step.
      this.#inflating = true;
      this.#inflater.inflate(frame.body.subarray(headerAt)).then(
        (block) => {
          this.#inflating = false;
          try {
            if (frame.type === SYN_STREAM)
              this.#onSynStream(frame.flags, frame.body, decodeHeaderBlock(block));
          } catch (error) {
            return this.#fail((error as Error).message);
          }
          this.#pump();
        },
        (error: Error) => this.#fail(error.message),
      );
    }
  }

  #onData(id: number, flags: number, data: Buffer): void {
    const stream = this.#streams.get(id);
    if (!stream || stream.destroyed) return;
    if (data.length > 0 && !stream.readableEnded && !stream.push(Buffer.from(data))) {
      if (this.#behind.size === 0) this.#socket.pause();
      this.#behind.add(stream);
    }
    if (flags & FLAG_FIN) {
      stream.push(null);
      // No more data comes for it, and an ended stream's reader never asks again: stop waiting for it.
      this.readingResumed(stream);
    }
  }

  #onControl(type: number, body: Buffer): void {
    if (type === RST_STREAM && body.length >= 4)
      this.#streams.get(body.readUInt32BE(0) & 0x7fffffff)?.abandon();
    else if (type === PING && body.length >= 4 && body.readUInt32BE(0) & 1)
      this.#write(encodeControlFrame(PING, 0, body.subarray(0, 4)));
    else if (type === GOAWAY) {
      this.#goingAway = true;
      if (this.#streams.size === 0) this.close();
    }
    // SETTINGS, WINDOW_UPDATE and unknown types: nothing to do (no flow-control windows are kept).
  }

  #onSynStream(flags: number, body: Buffer, headers: Map<string, string>): void {
    const id = body.readUInt32BE(0) & 0x7fffffff;
    if (id % 2 === 0 || id <= this.#lastStreamId) {
      this.#write(encodeControlFrame(RST_STREAM, 0, u32(id, PROTOCOL_ERROR)));
      return;
    }
    this.#lastStreamId = id;
    const refusal = this.#goingAway ? "the session is going away" : this.#handlers.refuse?.(headers);
    if (refusal !== undefined) {
      this.#handlers.onProblem?.(`stream ${id} refused: ${refusal}`);
      this.#write(encodeControlFrame(RST_STREAM, 0, u32(id, REFUSED_STREAM)));
      return;
    }
    const stream = new SpdyStream(this, id, headers);
    this.#streams.set(id, stream);
    this.#write(encodeControlFrame(SYN_REPLY, 0, Buffer.concat([u32(id), this.#deflater.compress(u32(0))])));
    if (flags & FLAG_FIN) stream.push(null);
    this.#handlers.onStream(stream);
  }
}

/**
 * A SPDY/3.1 client for the unit tests, shaped as spdystream behaves: its header blocks come from one zlib
 * deflater primed with the dictionary and sync-flushed per block; it collects every frame the server sends
 * (header blocks of SYN_REPLY inflated in order).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { constants, createDeflate } from "node:zlib";
import {
  encodeControlFrame,
  encodeDataFrames,
  encodeHeaderBlock,
  type Frame,
  HeaderInflater,
  SYN_REPLY,
  SYN_STREAM,
  splitFrame,
  u32,
} from "../../../src/local/spdy.ts";
import { SPDY3_DICTIONARY } from "../../../src/local/spdy-dictionary.ts";

/** What the client saw: each frame, and for a SYN_REPLY its decoded headers count. */
export interface Seen {
  readonly frame: Frame;
  readonly replyHeaders?: number;
}

/** One zlib stream per direction, as spdystream's framer keeps: each block ends at a sync flush. */
export class HeaderCompressor {
  readonly #zlib = createDeflate({ dictionary: SPDY3_DICTIONARY });
  #out: Buffer[] = [];

  constructor() {
    this.#zlib.on("data", (c: Buffer) => this.#out.push(c));
  }

  compress(block: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.#out = [];
      this.#zlib.write(block);
      this.#zlib.flush(constants.Z_SYNC_FLUSH, () => resolve(Buffer.concat(this.#out)));
    });
  }

  close(): void {
    this.#zlib.close();
  }
}

export class SpdyTestClient {
  readonly socket: Socket;
  readonly seen: Seen[] = [];
  readonly #compressor = new HeaderCompressor();
  readonly #inflater = new HeaderInflater();
  #input = Buffer.alloc(0);
  #chain: Promise<void> = Promise.resolve();
  #waiters: Array<() => void> = [];

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#input = Buffer.concat([this.#input, chunk]);
      for (let split = splitFrame(this.#input); split; split = splitFrame(this.#input)) {
        const { frame } = split;
        this.#input = this.#input.subarray(split.size);
        this.#chain = this.#chain.then(async () => {
          if (frame.kind === "control" && frame.type === SYN_REPLY) {
            // After close() the inflater is gone: -1 marks a reply that was not read.
            const block = await this.#inflater.inflate(frame.body.subarray(4)).catch(() => Buffer.alloc(0));
            this.seen.push({ frame, replyHeaders: block.length >= 4 ? block.readUInt32BE(0) : -1 });
          } else this.seen.push({ frame });
          for (const w of this.#waiters.splice(0)) w();
        });
      }
    });
    socket.on("close", () => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Opens stream `id` with `headers` (FIN when `fin`). */
  async open(id: number, headers: Record<string, string>, fin = false): Promise<void> {
    const block = await this.#compressor.compress(encodeHeaderBlock(Object.entries(headers)));
    const body = Buffer.concat([u32(id, 0), Buffer.from([0, 0]), block]);
    this.socket.write(encodeControlFrame(SYN_STREAM, fin ? 1 : 0, body));
  }

  send(id: number, data: Buffer | string, fin = false): void {
    this.socket.write(encodeDataFrames(id, Buffer.from(data), fin));
  }

  control(type: number, body: Buffer, flags = 0): void {
    this.socket.write(encodeControlFrame(type, flags, body));
  }

  /** Waits until `test` holds for what was seen (or the socket closed: then the last check decides). */
  async waitFor<T>(what: string, test: (seen: Seen[]) => T | undefined, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = test(this.seen);
      if (got !== undefined) return got;
      if (this.socket.destroyed || Date.now() > deadline)
        throw new Error(`no ${what} (saw ${this.describe()})`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** DATA received on stream `id`, and whether it was FIN'd. */
  received(id: number): { data: Buffer; fin: boolean } {
    const frames = this.seen.flatMap((s) =>
      s.frame.kind === "data" && s.frame.streamId === id ? [s.frame] : [],
    );
    return { data: Buffer.concat(frames.map((f) => f.data)), fin: frames.some((f) => f.flags & 1) };
  }

  describe(): string {
    return this.seen
      .map(({ frame: f }) =>
        f.kind === "data" ? `DATA(${f.streamId},${f.data.length},${f.flags})` : `CTRL(${f.type})`,
      )
      .join(" ");
  }

  close(): void {
    this.socket.destroy();
    this.#compressor.close();
    this.#inflater.close();
  }
}

/** A loopback server running `serve` on each connection, and a connected test client. */
export async function withSession(
  serve: (socket: Duplex) => void,
): Promise<{ client: SpdyTestClient; server: Server }> {
  const server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.on("error", () => {});
  return { client: new SpdyTestClient(socket), server };
}

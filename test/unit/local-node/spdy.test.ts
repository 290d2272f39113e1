import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { Server } from "node:net";
import { describe, test } from "node:test";
import { constants, createInflate } from "node:zlib";
import fc from "fast-check";
import {
  decodeHeaderBlock,
  encodeControlFrame,
  encodeDataFrames,
  encodeHeaderBlock,
  FLAG_FIN,
  GOAWAY,
  HeaderDeflater,
  HeaderInflater,
  PING,
  RST_STREAM,
  SETTINGS,
  SpdySession,
  type SpdyStream,
  SYN_REPLY,
  splitFrame,
  u32,
  WINDOW_UPDATE,
} from "../../../src/local/spdy.ts";
import { SPDY3_DICTIONARY } from "../../../src/local/spdy-dictionary.ts";
import { HeaderCompressor, type SpdyTestClient, withSession } from "./spdy-client.ts";

describe("SPDY/3.1 framing", () => {
  test("the dictionary is SPDY/3's, byte for byte", () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(
      createHash("sha256").update(SPDY3_DICTIONARY).digest("hex"),
      "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    );
  });

  test("control and data frames round-trip; a partial frame waits for the rest", () => {
    const ping = encodeControlFrame(PING, 0, u32(7));
    assert.deepEqual(ping.subarray(0, 8), Buffer.from([0x80, 3, 0, 6, 0, 0, 0, 4]));
    assert.deepEqual(splitFrame(ping), {
      frame: { kind: "control", version: 3, type: PING, flags: 0, body: u32(7) },
      size: 12,
    });
    assert.equal(splitFrame(ping.subarray(0, 11)), undefined);
    assert.equal(splitFrame(ping.subarray(0, 5)), undefined);
    const data = randomBytes(150_000);
    let input = encodeDataFrames(5, data, true);
    const frames = [];
    for (let s = splitFrame(input); s; s = splitFrame(input)) {
      frames.push(s.frame);
      input = input.subarray(s.size);
    }
    assert.equal(input.length, 0);
    assert.deepEqual(
      frames.map((f) => (f.kind === "data" ? [f.streamId, f.flags, f.data.length] : [])),
      [
        [5, 0, 65536],
        [5, 0, 65536],
        [5, FLAG_FIN, 150_000 - 2 * 65536],
      ],
    );
    assert.deepEqual(Buffer.concat(frames.map((f) => (f.kind === "data" ? f.data : Buffer.alloc(0)))), data);
    const fin = splitFrame(encodeDataFrames(0x7fffffff, Buffer.alloc(0), true));
    assert.deepEqual(fin?.frame, {
      kind: "data",
      streamId: 0x7fffffff,
      flags: FLAG_FIN,
      data: Buffer.alloc(0),
    });
  });

  test("header blocks round-trip (names lower-cased, multi-valued kept), and a truncated block is refused", () => {
    const block = encodeHeaderBlock([
      ["StreamType", "data"],
      ["port", "8080"],
      ["multi", "a\u0000b"],
    ]);
    assert.deepEqual(
      decodeHeaderBlock(block),
      new Map([
        ["streamtype", "data"],
        ["port", "8080"],
        ["multi", "a\u0000b"],
      ]),
    );
    assert.deepEqual(decodeHeaderBlock(u32(0)), new Map());
    for (const cut of [0, 3, 7, block.length - 1])
      assert.throws(() => decodeHeaderBlock(block.subarray(0, cut)), /SPDY header block truncated/);
    assert.throws(() => decodeHeaderBlock(u32(2, 1, 0x61)), /truncated/);
  });

  test("our header blocks are one zlib stream a standard inflater primed with the dictionary reads block by block", async () => {
    const deflater = new HeaderDeflater();
    const inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
    const out: Buffer[] = [];
    inflate.on("data", (c: Buffer) => out.push(c));
    const big = "x".repeat(70_000);
    for (const headers of [[], [["a", "1"]], [["big", big]], []] as [string, string][][]) {
      out.length = 0;
      inflate.write(deflater.compress(encodeHeaderBlock(headers)));
      await new Promise<void>((resolve) => inflate.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      assert.deepEqual(decodeHeaderBlock(Buffer.concat(out)), new Map(headers));
    }
    inflate.close();
  });

  test("the peer's header blocks (one deflate context, sync-flushed) inflate in order on one inflater", async () => {
    const compressor = new HeaderCompressor();
    const inflater = new HeaderInflater();
    for (let i = 0; i < 50; i++) {
      const headers: [string, string][] = [
        ["streamtype", i % 2 ? "data" : "error"],
        ["port", "80"],
        ["requestid", String(i)],
      ];
      const block = await inflater.inflate(await compressor.compress(encodeHeaderBlock(headers)));
      assert.deepEqual(decodeHeaderBlock(block), new Map(headers));
    }
    await assert.rejects(inflater.inflate(Buffer.from("not zlib at all")), /SPDY header block/);
    compressor.close();
    inflater.close();
  });
});

/** A session that echoes every stream's data back and ends its side when the peer does. */
function echoSession(
  streams: SpdyStream[] = [],
  refuse?: (h: ReadonlyMap<string, string>) => string | undefined,
) {
  return (socket: import("node:stream").Duplex) => {
    new SpdySession(socket, {
      refuse,
      onStream: (stream) => {
        streams.push(stream);
        stream.on("error", () => {});
        stream.pipe(stream);
      },
    });
  };
}

async function closeAll(client: SpdyTestClient, server: Server): Promise<void> {
  client.close();
  server.close();
}

describe("SPDY/3.1 server session", () => {
  test("a stream is answered with an empty SYN_REPLY, its data echoed, FIN passed on both ways", async () => {
    const streams: SpdyStream[] = [];
    const { client, server } = await withSession(echoSession(streams));
    await client.open(1, { streamtype: "data", port: "80" });
    await client.open(3, { streamtype: "error", port: "80" });
    await client.waitFor("two replies", (seen) =>
      seen.filter((s) => s.frame.kind === "control" && s.frame.type === SYN_REPLY).length === 2
        ? true
        : undefined,
    );
    assert.deepEqual(
      client.seen.map((s) => s.replyHeaders),
      [0, 0],
    );
    assert.deepEqual(
      streams[0]?.headers,
      new Map([
        ["streamtype", "data"],
        ["port", "80"],
      ]),
    );
    const payload = randomBytes(200_000);
    client.send(1, payload.subarray(0, 1000));
    client.send(1, payload.subarray(1000), true);
    client.send(3, "on three", true);
    const one = await client.waitFor("stream 1 echoed and FIN'd", () => {
      const r = client.received(1);
      return r.fin ? r : undefined;
    });
    assert.ok(one.data.equals(payload));
    const three = await client.waitFor("stream 3 FIN'd", () =>
      client.received(3).fin ? client.received(3) : undefined,
    );
    assert.equal(three.data.toString(), "on three");
    await closeAll(client, server);
  });

  test("PING is echoed; SETTINGS and WINDOW_UPDATE are taken and ignored", async () => {
    const { client, server } = await withSession(echoSession());
    client.control(SETTINGS, u32(1, 0x07, 65536));
    client.control(WINDOW_UPDATE, u32(0, 1000));
    client.control(PING, u32(1));
    const pong = await client.waitFor("PING back", (seen) =>
      seen.find((s) => s.frame.kind === "control" && s.frame.type === PING),
    );
    assert.deepEqual(pong.frame.kind === "control" && pong.frame.body, u32(1));
    await closeAll(client, server);
  });

  test("RST_STREAM from the client destroys the stream; a refused stream is reset without a reply", async () => {
    const streams: SpdyStream[] = [];
    const { client, server } = await withSession(
      echoSession(streams, (h) => (h.get("port") === "0" ? "port must be > 0" : undefined)),
    );
    await client.open(1, { port: "0" });
    await client.open(3, { port: "80" });
    const reset = await client.waitFor("RST_STREAM for 1", (seen) =>
      seen.find((s) => s.frame.kind === "control" && s.frame.type === RST_STREAM),
    );
    assert.deepEqual(reset.frame.kind === "control" && reset.frame.body, u32(1, 3));
    await client.waitFor("stream 3 accepted", () => (streams.length === 1 ? true : undefined));
    const closed = new Promise((resolve) => streams[0]?.once("close", resolve));
    client.control(RST_STREAM, u32(3, 5));
    await closed;
    // A stream id that goes backwards is a protocol error for that stream only.
    await client.open(1, { port: "80" });
    await client.waitFor("RST_STREAM PROTOCOL_ERROR for the reused id", (seen) =>
      seen.some(
        (s) => s.frame.kind === "control" && s.frame.type === RST_STREAM && s.frame.body.equals(u32(1, 1)),
      )
        ? true
        : undefined,
    );
    await closeAll(client, server);
  });

  test("GOAWAY refuses new streams and ends the session once the open ones are done", async () => {
    const streams: SpdyStream[] = [];
    const { client, server } = await withSession(echoSession(streams));
    await client.open(1, { port: "80" });
    await client.waitFor("stream 1", () => (streams.length === 1 ? true : undefined));
    client.control(GOAWAY, u32(0, 0));
    await client.open(3, { port: "80" });
    await client.waitFor("stream 3 refused", (seen) =>
      seen.some(
        (s) => s.frame.kind === "control" && s.frame.type === RST_STREAM && s.frame.body.equals(u32(3, 3)),
      )
        ? true
        : undefined,
    );
    assert.equal(client.socket.destroyed, false);
    client.send(1, "last", true);
    await new Promise((resolve) => client.socket.once("close", resolve));
    assert.equal(client.received(1).data.toString(), "last");
    await closeAll(client, server);
  });

  test("a stream's reader that falls behind pauses reading the connection until it catches up", async () => {
    let server: import("node:stream").Duplex | undefined;
    const streams: SpdyStream[] = [];
    const { client, server: listener } = await withSession((socket) => {
      server = socket;
      new SpdySession(socket, { onStream: (stream) => streams.push(stream) });
    });
    try {
      await client.open(1, { port: "80" });
      const payload = randomBytes(4 << 20);
      // No FIN yet: a FIN ends the stream, and an ended stream no longer holds the connection paused.
      client.send(1, payload);
      const deadline = Date.now() + 5000;
      while (!server?.isPaused() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(server?.isPaused(), true, "the connection is paused while nobody reads the stream");
      const chunks: Buffer[] = [];
      const drained = (async () => {
        for await (const chunk of streams[0] ?? []) chunks.push(chunk as Buffer);
      })();
      client.send(1, "", true);
      await drained;
      assert.ok(Buffer.concat(chunks).equals(payload));
      assert.equal(server?.isPaused(), false);
    } finally {
      await closeAll(client, listener);
    }
  });

  test("garbage never throws: the session ends with GOAWAY or keeps waiting for a whole frame", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 400 }),
        fc.boolean(),
        async (bytes, prefix) => {
          const { client, server } = await withSession(echoSession());
          if (prefix) await client.open(1, { port: "80", streamtype: "data" });
          client.socket.write(Buffer.from(bytes));
          await new Promise((resolve) => setTimeout(resolve, 20));
          client.close();
          server.close();
        },
      ),
      { numRuns: 150 },
    );
  });

  test("a header block of the wrong version or too short ends the session with GOAWAY PROTOCOL_ERROR", async () => {
    for (const bad of [
      Buffer.concat([Buffer.from([0x80, 2, 0, 1, 0, 0, 0, 4]), u32(1)]),
      encodeControlFrame(1, 0, Buffer.from([0, 0, 0])),
    ]) {
      const { client, server } = await withSession(echoSession());
      client.socket.write(bad);
      const away = await client.waitFor("GOAWAY", (seen) =>
        seen.find((s) => s.frame.kind === "control" && s.frame.type === GOAWAY),
      );
      assert.deepEqual(away.frame.kind === "control" && away.frame.body, u32(0, 1));
      await closeAll(client, server);
    }
  });
});

/**
 * Both relays (relay.ts and the addon's splice relay) between real loopback sockets: half-close, resets,
 * idle timeout, byte counts. Needs the addon built (`npm run build`, done by scripts/setup).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { after, test } from "node:test";
import type { RelayResult } from "../../../src/sidecar/native/index.ts";
import { startNativeRelay } from "../../../src/sidecar/native/index.ts";
import { relay } from "../../../src/sidecar/relay.ts";

type RelayFn = typeof relay;

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
});

/** A connected pair through relay: the test's `client` ↔ [relay] ↔ `server` side, all on 127.0.0.1. */
async function relayPair(
  relayFn: RelayFn,
  idleTimeoutMs = 0,
): Promise<{ client: Socket; server: Socket; result: Promise<RelayResult> }> {
  const backend = createServer({ allowHalfOpen: true });
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  servers.push(backend, front);
  backend.listen(0, "127.0.0.1");
  front.listen(0, "127.0.0.1");
  await Promise.all([once(backend, "listening"), once(front, "listening")]);
  let resolveResult!: (result: RelayResult) => void;
  const result = new Promise<RelayResult>((resolve) => {
    resolveResult = resolve;
  });
  const relaying = new Promise<void>((resolve) => {
    front.on("connection", (accepted: Socket) => {
      const port = (backend.address() as AddressInfo).port;
      const upstream = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      upstream.pause(); // as the data plane does: no byte read in JS before the relay takes over
      sockets.push(accepted, upstream);
      upstream.once("connect", () => {
        relayFn(accepted, upstream, idleTimeoutMs, resolveResult);
        resolve();
      });
    });
  });
  const serverSide = once(backend, "connection") as Promise<[Socket]>;
  const client = connect({
    port: (front.address() as AddressInfo).port,
    host: "127.0.0.1",
    allowHalfOpen: true,
  });
  client.on("error", () => {});
  const [[server]] = await Promise.all([serverSide, relaying, once(client, "connect")]);
  server.on("error", () => {});
  sockets.push(client, server);
  return { client, server, result };
}

function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on("end", () => resolve(text));
  });
}

const relays: Array<[string, RelayFn]> = [
  ["the streams", relay],
  ["the splice", (...args) => startNativeRelay().relay(...args)],
];

for (const [name, relayFn] of relays) {
  test(`${name} relay carries a half-close: the server sees the client's FIN and can still answer`, async () => {
    const { client, server, result } = await relayPair(relayFn);
    const serverRead = readAll(server);
    client.end("question");
    assert.equal(await serverRead, "question");
    const clientRead = readAll(client);
    server.end("answer after your FIN");
    assert.equal(await clientRead, "answer after your FIN");
    const done = await result;
    assert.deepEqual(done, { bytesUp: 8, bytesDown: 21, error: undefined });
  });

  test(`${name} relay turns an RST from the server into an RST to the client, and reports it`, async () => {
    const { client, server, result } = await relayPair(relayFn);
    const clientError = new Promise<NodeJS.ErrnoException>((resolve) => client.once("error", resolve));
    server.resetAndDestroy();
    const error = await clientError;
    assert.equal(error.code, "ECONNRESET");
    assert.equal((await result).error, "ECONNRESET");
  });

  test(`${name} relay resets both sides of a connection idle past the idle timeout`, async () => {
    const { client, result } = await relayPair(relayFn, 150);
    const started = Date.now();
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => client.once("error", resolve));
    assert.equal(error.code, "ECONNRESET");
    assert.equal((await result).error, "idle-timeout");
    assert.ok(Date.now() - started >= 100);
  });
}

for (const [name, relayFn] of relays) {
  for (const side of ["client", "server"] as const) {
    test(`${name} relay frees a pair within a second when the ${side} half-closes, then resets`, async () => {
      const pair = await relayPair(relayFn);
      const [closing, peer] = side === "client" ? [pair.client, pair.server] : [pair.server, pair.client];
      const peerEnded = once(peer, "end");
      peer.resume();
      closing.end("bye");
      await peerEnded; // the FIN went through; the peer keeps its side open and sends nothing
      await new Promise((resolve) => setTimeout(resolve, 100));
      const reset = performance.now();
      closing.resetAndDestroy();
      const done = await pair.result;
      const ms = Math.round(performance.now() - reset);
      assert.ok(ms < 1000, `freed ${ms} ms after the reset`);
      assert.match(String(done.error), /^(ECONNRESET|EPIPE)$/);
      // The peer, past its own EOF, learns of the reset on its next write.
      const peerError = new Promise<NodeJS.ErrnoException>((resolve) => peer.once("error", resolve));
      peer.write("still there?");
      assert.match(String((await peerError).code), /^(ECONNRESET|EPIPE)$/);
    });
  }
}

test("the splice relay's pipe pool shrinks: after 100 pairs at once, the fd count is back at its baseline", async () => {
  const native = startNativeRelay();
  const backend = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on("error", () => {});
    socket.pipe(socket);
  });
  const pending: Promise<RelayResult>[] = [];
  const front = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (accepted) => {
    const upstream = connect({ port: (backend.address() as AddressInfo).port, host: "127.0.0.1" });
    upstream.pause();
    upstream.once("connect", () => {
      pending.push(new Promise((resolve) => native.relay(accepted, upstream, 0, resolve)));
    });
  });
  servers.push(backend, front);
  backend.listen(0, "127.0.0.1");
  front.listen(0, "127.0.0.1");
  await Promise.all([once(backend, "listening"), once(front, "listening")]);
  const fds = (): number => readdirSync("/proc/self/fd").length;
  const baseline = fds();
  const clients = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const client = connect({ port: (front.address() as AddressInfo).port, host: "127.0.0.1" });
      await once(client, "connect");
      return client;
    }),
  );
  while (native.active < 100) await new Promise((resolve) => setTimeout(resolve, 10));
  await Promise.all(
    clients.map(async (client) => {
      client.write("ping");
      await once(client, "data");
      client.end();
      await once(client, "close");
    }),
  );
  await Promise.all(pending);
  const peak = fds();
  const deadline = Date.now() + 3000;
  while (fds() > baseline && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(
    fds() <= baseline,
    `${fds()} fds 3 s after the burst (${peak} right after it), ${baseline} before`,
  );
});

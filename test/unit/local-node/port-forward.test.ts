import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import type { NodeConnector } from "../../../src/local/node-connector.ts";
import {
  createPortForwardTunnelServer,
  parsePortHeader,
  requestIdOf,
  servePortForward,
  spdyUpgradeRefusal,
  streamRefusal,
  upgradePortForward,
} from "../../../src/local/port-forward.ts";
import { RST_STREAM, u32 } from "../../../src/local/spdy.ts";
import { withSession } from "./spdy-client.ts";

describe("port-forward requests (pure)", () => {
  test("the port header: an integer 1-65535, else the kubelet's message naming the value", () => {
    assert.equal(parsePortHeader("8080"), 8080);
    assert.equal(parsePortHeader(undefined), `"port" header is required`);
    assert.equal(parsePortHeader("http"), `unable to parse "http" as a port`);
    assert.equal(parsePortHeader("70000"), `unable to parse "70000" as a port`);
    assert.equal(parsePortHeader("0"), `port "0" must be > 0`);
  });

  test("a stream needs a port and a stream type of error or data", () => {
    assert.equal(
      streamRefusal(
        new Map([
          ["port", "80"],
          ["streamtype", "data"],
        ]),
      ),
      undefined,
    );
    assert.equal(streamRefusal(new Map([["port", "80"]])), `"streamType" header is required`);
    assert.equal(
      streamRefusal(
        new Map([
          ["port", "80"],
          ["streamtype", "x"],
        ]),
      ),
      `invalid stream type "x"`,
    );
    assert.equal(streamRefusal(new Map([["streamtype", "data"]])), `"port" header is required`);
  });

  test("the request id is the requestid header, or for old clients the error stream's id", () => {
    assert.equal(requestIdOf({ id: 9, headers: new Map([["requestid", "4"]]) }), "4");
    assert.equal(requestIdOf({ id: 5, headers: new Map([["streamtype", "error"]]) }), "5");
    assert.equal(requestIdOf({ id: 7, headers: new Map([["streamtype", "data"]]) }), "5");
  });

  test("a direct upgrade must be SPDY/3.1 and offer portforward.k8s.io, if it offers anything", () => {
    const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
    assert.equal(
      spdyUpgradeRefusal(req({ upgrade: "SPDY/3.1", "x-stream-protocol-version": "portforward.k8s.io" })),
      undefined,
    );
    assert.equal(spdyUpgradeRefusal(req({ upgrade: "SPDY/3.1" })), undefined);
    assert.deepEqual(spdyUpgradeRefusal(req({ upgrade: "websocket" })), {
      status: 400,
      message: `unable to upgrade: Upgrade "websocket" is not SPDY/3.1`,
    });
    assert.equal(
      spdyUpgradeRefusal(req({ upgrade: "SPDY/3.1", "x-stream-protocol-version": "v4.channel.k8s.io" }))
        ?.status,
      403,
    );
  });
});

describe("port-forward upgrades", () => {
  /** Sends `head` (request line and headers) to a server that hands every upgrade to upgradePortForward. */
  async function upgrade(head: string): Promise<string> {
    const server = createHttpServer();
    const tunnel = createPortForwardTunnelServer();
    const connector = { connectPort: () => Promise.reject(new Error("unused")) } as unknown as NodeConnector;
    server.on("upgrade", (req, socket, rest) =>
      upgradePortForward(
        tunnel,
        req,
        socket,
        rest,
        { namespace: "ns", pod: "web" },
        connector,
        pino({ level: "silent" }),
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const socket = connect((server.address() as { port: number }).port, "127.0.0.1");
    socket.write(`${head}\r\nHost: x\r\n\r\n`);
    let answer = "";
    socket.on("data", (c: Buffer) => {
      answer += c.toString("latin1");
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    tunnel.close();
    server.close();
    return answer;
  }

  test("kubectl's tunnel: the WebSocket is accepted naming SPDY/3.1+portforward.k8s.io; without it, 400", async () => {
    const ws =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    const ok = await upgrade(
      `GET /pf HTTP/1.1\r\n${ws}\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io`,
    );
    assert.match(ok, /^HTTP\/1\.1 101 /);
    assert.match(ok, /\r\nSec-WebSocket-Protocol: SPDY\/3\.1\+portforward\.k8s\.io\r\n/);
    const refused = await upgrade(`GET /pf HTTP/1.1\r\n${ws}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io`);
    assert.match(
      refused,
      /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*unable to upgrade: no tunneling spdy protocols provided$/,
    );
  });

  test("a direct SPDY upgrade: 101 naming the protocol; another protocol offered: 403 naming both sides", async () => {
    const spdy = "Upgrade: SPDY/3.1\r\nConnection: Upgrade";
    const ok = await upgrade(`POST /pf HTTP/1.1\r\n${spdy}\r\nX-Stream-Protocol-Version: portforward.k8s.io`);
    assert.equal(
      ok,
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n",
    );
    const refused = await upgrade(
      `POST /pf HTTP/1.1\r\n${spdy}\r\nX-Stream-Protocol-Version: v4.channel.k8s.io`,
    );
    assert.match(
      refused,
      /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*client supports \[v4\.channel\.k8s\.io\], server accepts \[portforward\.k8s\.io\]$/,
    );
  });
});

describe("port-forward over a SPDY session", () => {
  let pod: Server;
  let podPort: number;
  const podSockets = new Set<Socket>();
  /** The "pod": echoes each connection's bytes upper-cased, and closes after its peer's FIN. */
  before(async () => {
    pod = createServer({ allowHalfOpen: true }, (s) => {
      podSockets.add(s);
      s.on("close", () => podSockets.delete(s));
      s.on("data", (c: Buffer) => s.write(c.toString().toUpperCase()));
      s.on("end", () => s.end());
    });
    await new Promise<void>((resolve) => pod.listen(0, "127.0.0.1", resolve));
    podPort = (pod.address() as { port: number }).port;
  });
  after(() => pod.close());

  const connector = {
    connectPort: ({ port }: { port: number }) =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect(
          { host: "127.0.0.1", port: port === 80 ? podPort : port, allowHalfOpen: true },
          () => resolve(s),
        );
        s.once("error", reject);
      }),
  } as unknown as NodeConnector;
  const serve = (socket: import("node:stream").Duplex) => {
    servePortForward(socket, { namespace: "ns", pod: "web" }, connector, pino({ level: "silent" }));
  };

  test("streams pair by request id even when two requests interleave; each pair is its own connection", async () => {
    const { client, server } = await withSession(serve);
    await client.open(1, { streamtype: "error", port: "80", requestid: "0" });
    await client.open(3, { streamtype: "error", port: "80", requestid: "1" });
    await client.open(5, { streamtype: "data", port: "80", requestid: "1" });
    await client.open(7, { streamtype: "data", port: "80", requestid: "0" });
    client.send(1, "", true);
    client.send(3, "", true);
    client.send(5, "second");
    client.send(7, "first");
    await client.waitFor("both echoes", () =>
      client.received(5).data.length === 6 && client.received(7).data.length === 5 ? true : undefined,
    );
    assert.equal(client.received(5).data.toString(), "SECOND");
    assert.equal(client.received(7).data.toString(), "FIRST");
    assert.equal(podSockets.size, 2);
    // The client's FIN half-closes the pod connection; the pod's FIN ends the data stream, then the error stream.
    client.send(7, "", true);
    await client.waitFor("request 0 done", () =>
      client.received(7).fin && client.received(1).fin ? true : undefined,
    );
    assert.equal(client.received(1).data.length, 0);
    assert.equal(client.received(5).fin, false);
    client.close();
    server.close();
    await until(() => podSockets.size === 0);
  });

  test("a port that refuses: the error stream carries the reason, then both streams end", async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const deadPort = (dead.address() as { port: number }).port;
    await new Promise((resolve) => dead.close(resolve));
    const { client, server } = await withSession(serve);
    await client.open(1, { streamtype: "error", port: String(deadPort), requestid: "0" });
    await client.open(3, { streamtype: "data", port: String(deadPort), requestid: "0" });
    await client.waitFor("both streams ended", () =>
      client.received(1).fin && client.received(3).fin ? true : undefined,
    );
    assert.equal(
      client.received(1).data.toString(),
      `error forwarding port ${deadPort} to pod ns/web: connect ECONNREFUSED 127.0.0.1:${deadPort}`,
    );
    client.close();
    server.close();
  });

  test("a reset data stream, or the session's end, closes the pod connection", async () => {
    const { client, server } = await withSession(serve);
    await client.open(1, { streamtype: "error", port: "80", requestid: "0" });
    await client.open(3, { streamtype: "data", port: "80", requestid: "0" });
    await client.open(5, { streamtype: "error", port: "80", requestid: "1" });
    await client.open(7, { streamtype: "data", port: "80", requestid: "1" });
    await until(() => podSockets.size === 2);
    client.control(RST_STREAM, u32(3, 5));
    await until(() => podSockets.size === 1);
    await client.waitFor("request 0's error stream ended", () => (client.received(1).fin ? true : undefined));
    client.close();
    await until(() => podSockets.size === 0);
    server.close();
  });

  test("a stream without a port is refused; a second error stream for a request is reset, with a message on the first", async () => {
    const { client, server } = await withSession(serve);
    await client.open(1, { streamtype: "data", requestid: "0" });
    await client.open(3, { streamtype: "error", port: "80", requestid: "1" });
    await client.open(5, { streamtype: "error", port: "80", requestid: "1" });
    await client.waitFor("two resets", (seen) =>
      seen.filter((s) => s.frame.kind === "control" && s.frame.type === RST_STREAM).length === 2
        ? true
        : undefined,
    );
    const resets = client.seen.flatMap((s) =>
      s.frame.kind === "control" && s.frame.type === RST_STREAM ? [s.frame.body.readUInt32BE(0)] : [],
    );
    assert.deepEqual(resets, [1, 5]);
    await client.waitFor("the message on request 1's error stream", () =>
      client.received(3).data.length > 0 ? true : undefined,
    );
    assert.equal(
      client.received(3).data.toString(),
      "error processing stream for request 1: error stream already assigned",
    );
    client.close();
    server.close();
  });
});

async function until(test: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

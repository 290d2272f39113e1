/**
 * `NetnsDialer`: connections to localhost inside a network namespace of its own (`osmt-pd0`, loopback only),
 * handed back to this process: a server bound to 127.0.0.1 there is reached, the first bytes it sends are not
 * lost, half-closes pass both ways, and a port nothing listens on is refused with both addresses' reasons.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { NetnsDialer } from "../../../src/local/node/netns-dial.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";
import { rootSkip } from "./harness.ts";

const NETNS = "osmt-pd0";
/** Greets, then answers each chunk upper-cased; after the peer's FIN it says "bye" and closes. */
const SERVER = `require("node:net").createServer({ allowHalfOpen: true }, (s) => {
  s.write("hello\\n");
  s.on("data", (c) => s.write(c.toString().toUpperCase()));
  s.on("end", () => s.end("bye\\n"));
}).listen(7070, "127.0.0.1", () => console.log("listening"));`;

describe("a connection to localhost inside a pod's network namespace", { skip: rootSkip }, () => {
  let server: ChildProcess;
  const dialer = new NetnsDialer();

  before(async () => {
    await run("ip", ["netns", "add", NETNS]);
    await run("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
    server = spawn("ip", ["netns", "exec", NETNS, process.execPath, "-e", SERVER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    server.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    await until("the server in the namespace", () => (out.includes("listening") ? true : undefined));
  });

  after(async () => {
    dialer.close();
    server?.kill();
    await run("ip", ["netns", "delete", NETNS]);
  });

  test("reaches a server bound to 127.0.0.1 there; its greeting, the echo and both half-closes arrive", async () => {
    const socket = await dialer.dial(`/run/netns/${NETNS}`, 7070);
    let got = "";
    socket.on("data", (c: Buffer) => {
      got += c.toString();
    });
    const ended = new Promise((resolve) => socket.once("end", resolve));
    await until("the greeting", () => (got === "hello\n" ? true : undefined));
    socket.write("ping");
    await until("the echo", () => (got === "hello\nPING" ? true : undefined));
    socket.end();
    await ended;
    assert.equal(got, "hello\nPINGbye\n");
  });

  test("a port nothing listens on is refused, naming both loopback addresses", async () => {
    await assert.rejects(
      dialer.dial(`/run/netns/${NETNS}`, 7071),
      /localhost:7071 in the pod: connect ECONNREFUSED 127\.0\.0\.1:7071; connect (ECONNREFUSED ::1:7071|EADDRNOTAVAIL ::1:7071)/,
    );
  });

  test("several dials at once share the namespace's dialer; each gets its own connection", async () => {
    const sockets = await Promise.all(
      Array.from({ length: 6 }, () => dialer.dial(`/run/netns/${NETNS}`, 7070)),
    );
    const greetings = await Promise.all(
      sockets.map((s, i) => {
        s.write(`n${i}`);
        let got = "";
        s.on("data", (c: Buffer) => {
          got += c.toString();
        });
        return until("greeting and echo", () => (got === `hello\nN${i}` ? got : undefined));
      }),
    );
    assert.equal(greetings.length, 6);
    for (const s of sockets) s.destroy();
  });

  test("a namespace that does not exist is a clear error", async () => {
    await assert.rejects(dialer.dial("/run/netns/osmt-pd-none", 7070), /osmt-pd-none/);
  });
});

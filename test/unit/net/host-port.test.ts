import assert from "node:assert/strict";
import { test } from "node:test";
import { formatHostPort, parseListenAddress, splitHostPort } from "../../../src/net/host-port.ts";

test("listen addresses parse as host:port, [v6]:port and :port", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9090"), { host: "127.0.0.1", port: 9090 });
  assert.deepEqual(parseListenAddress("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseListenAddress(":9090"), { host: "0.0.0.0", port: 9090 });
  assert.equal(parseListenAddress("9090"), undefined);
  assert.equal(parseListenAddress("x:70000"), undefined);
});

test("an unbracketed IPv6 address is not host:port", () => {
  assert.equal(splitHostPort("2001:db8::10:80"), undefined);
  assert.deepEqual(splitHostPort("[2001:db8::10]:80"), { host: "2001:db8::10", port: 80 });
});

test("an IPv6 host is printed in brackets, an IPv4 address or a name without", () => {
  assert.equal(formatHostPort("2001:db8::10", 443), "[2001:db8::10]:443");
  assert.equal(formatHostPort("203.0.113.10", 80), "203.0.113.10:80");
  assert.equal(formatHostPort("localhost", 8443), "localhost:8443");
});

test("printing then splitting gives the host and port back", () => {
  for (const [host, port] of [
    ["198.51.100.7", 1],
    ["2001:db8::1", 65535],
    ["node-1", 10250],
  ] as const) {
    assert.deepEqual(splitHostPort(formatHostPort(host, port)), { host, port });
  }
});

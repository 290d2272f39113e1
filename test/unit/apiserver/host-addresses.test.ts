import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { hostIPv4Addresses, parseRouteGateways } from "../../../src/local/apiserver/host-addresses.ts";

test("route gateways are read from /proc/net/route's little-endian hex", () => {
  const text =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
    "osm0\t00FD00CB\t046433C6\t0003\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n";
  assert.deepEqual(parseRouteGateways(text), ["192.0.2.1", "198.51.100.4"]);
});

test("the host's addresses include loopback and every gateway of its routing table", () => {
  const host = hostIPv4Addresses();
  assert.ok(host.has("127.0.0.1"));
  const routes = existsSync("/proc/net/route") ? readFileSync("/proc/net/route", "utf8") : "";
  for (const gateway of parseRouteGateways(routes)) assert.ok(host.has(gateway), gateway);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { SidecarConfigInput } from "../../../src/config/sidecar-api.ts";
import {
  type Destination,
  decideInbound,
  decideOutbound,
  outboundListenerWanted,
} from "../../../src/sidecar/decide.ts";
import { table } from "./routing-table.ts";

const LISTENER: Destination = { address: "198.51.100.1", port: 15001 };
const mesh = [
  { service: "demo/web", ip: "203.0.113.30", port: 8080 },
  { service: "demo/db", ip: "2001:db8::30", port: 5432 },
  {
    service: "demo/api",
    ip: "192.0.2.100",
    port: 80,
    backends: [
      { ip: "203.0.113.31", port: 8080 },
      { ip: "203.0.113.32", port: 8080 },
    ],
  },
];

const cases: Array<{
  name: string;
  config: Partial<SidecarConfigInput> | undefined;
  dst: Destination;
  expected: unknown;
}> = [
  {
    name: "a mesh address without backends is proxied to the address dialled",
    config: { meshEndpoints: mesh },
    dst: { address: "203.0.113.30", port: 8080 },
    expected: { kind: "mesh", service: "demo/web", upstream: { address: "203.0.113.30", port: 8080 } },
  },
  {
    name: "an IPv6 mesh address matches whatever spelling the config used",
    config: { meshEndpoints: [{ service: "demo/db", ip: "2001:DB8:0::30", port: 5432 }] },
    dst: { address: "2001:db8::30", port: 5432 },
    expected: { kind: "mesh", service: "demo/db", upstream: { address: "2001:db8::30", port: 5432 } },
  },
  {
    name: "a mesh address on another port is not a mesh destination (egress off: refused)",
    config: { meshEndpoints: mesh },
    dst: { address: "203.0.113.30", port: 9999 },
    expected: { kind: "refuse", reason: "egress-disabled" },
  },
  {
    name: "a non-mesh destination passes through to its original address when egress is on",
    config: { enableEgress: true, meshEndpoints: mesh },
    dst: { address: "203.0.113.10", port: 443 },
    expected: { kind: "passthrough", upstream: { address: "203.0.113.10", port: 443 } },
  },
  {
    name: "a non-mesh destination is refused when egress is off",
    config: { enableEgress: false, meshEndpoints: mesh },
    dst: { address: "203.0.113.10", port: 443 },
    expected: { kind: "refuse", reason: "egress-disabled" },
  },
  {
    name: "everything is refused before the first config (fail closed)",
    config: undefined,
    dst: { address: "203.0.113.30", port: 8080 },
    expected: { kind: "refuse", reason: "no-config" },
  },
  {
    name: "a connection that reached the listener without a redirect is refused (it would loop)",
    config: { enableEgress: true },
    dst: LISTENER,
    expected: { kind: "refuse", reason: "not-redirected" },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const t = c.config === undefined ? undefined : table(c.config);
    assert.deepEqual(decideOutbound(t, c.dst, LISTENER, 0), c.expected);
  });
}

test("a mesh address with backends is proxied to them in round robin", () => {
  const t = table({ meshEndpoints: mesh });
  const dst = { address: "192.0.2.100", port: 80 };
  const picks = [0, 1, 2, 3].map((i) => {
    const decision = decideOutbound(t, dst, LISTENER, i);
    assert.equal(decision.kind, "mesh");
    return decision.kind === "mesh" ? decision.upstream.address : "";
  });
  assert.deepEqual(picks, ["203.0.113.31", "203.0.113.32", "203.0.113.31", "203.0.113.32"]);
});

test("when the same address and port are listed twice, the first entry wins", () => {
  const t = table({
    meshEndpoints: [
      { service: "demo/first", ip: "203.0.113.30", port: 80 },
      { service: "demo/second", ip: "203.0.113.30", port: 80 },
    ],
  });
  const decision = decideOutbound(t, { address: "203.0.113.30", port: 80 }, LISTENER, 0);
  assert.equal(decision.kind === "mesh" && decision.service, "demo/first");
});

test("maxDataPlaneConnections refuses the connection that would exceed it, and 0 means unlimited", () => {
  const limited = table({ enableEgress: true, maxDataPlaneConnections: 2 });
  const dst = { address: "203.0.113.10", port: 80 };
  assert.equal(decideOutbound(limited, dst, LISTENER, 1).kind, "passthrough");
  assert.deepEqual(decideOutbound(limited, dst, LISTENER, 2), { kind: "refuse", reason: "connection-limit" });
  const unlimited = table({ enableEgress: true, maxDataPlaneConnections: 0 });
  assert.equal(decideOutbound(unlimited, dst, LISTENER, 1_000_000).kind, "passthrough");
});

test("the outbound listener is wanted only with a config that has egress on or a mesh upstream (docs/osm-behaviour.md §5.1)", () => {
  assert.equal(outboundListenerWanted(undefined), false);
  assert.equal(outboundListenerWanted(table({ enableEgress: false, meshEndpoints: [] })), false);
  assert.equal(outboundListenerWanted(table({ enableEgress: true, meshEndpoints: [] })), true);
  assert.equal(outboundListenerWanted(table({ enableEgress: false, meshEndpoints: mesh })), true);
});

test("inbound connections go to the app on loopback at the original port, per family", () => {
  const local = { address: "198.51.100.1", port: 15003 };
  const permissive = table({});
  assert.deepEqual(
    decideInbound(permissive, { address: "198.51.100.1", port: 8081 }, local, 4, "198.51.100.9"),
    {
      kind: "passthrough",
      upstream: { address: "127.0.0.1", port: 8081 },
    },
  );
  assert.deepEqual(
    decideInbound(
      permissive,
      { address: "2001:db8::1", port: 8081 },
      { address: "2001:db8::1", port: 15003 },
      6,
      "2001:db8::9",
    ),
    {
      kind: "passthrough",
      upstream: { address: "::1", port: 8081 },
    },
  );
  assert.deepEqual(decideInbound(permissive, local, local, 4, "198.51.100.9"), {
    kind: "refuse",
    reason: "not-redirected",
  });
  assert.deepEqual(
    decideInbound(undefined, { address: "198.51.100.1", port: 8081 }, local, 4, "198.51.100.9"),
    {
      kind: "refuse",
      reason: "no-config",
    },
  );
});

test("with inbound access rules, only a source and port a TrafficTarget allows gets in, named in the decision", () => {
  const local = { address: "198.51.100.1", port: 15003 };
  const t = table({
    inboundAccess: {
      rules: [
        {
          trafficTarget: "server/allow-client",
          ports: [8080],
          sources: [{ ip: "198.51.100.7", pod: "client/client-1" }],
        },
        { trafficTarget: "server/any-port", sources: [{ ip: "2001:db8::7", pod: "client/client-6" }] },
      ],
    },
  });
  const to = (port: number) => ({ address: "198.51.100.1", port });
  assert.deepEqual(decideInbound(t, to(8080), local, 4, "198.51.100.7"), {
    kind: "passthrough",
    upstream: { address: "127.0.0.1", port: 8080 },
    trafficTarget: "server/allow-client",
    sourcePod: "client/client-1",
  });
  // A v4 peer as a dual-stack socket spells it.
  assert.equal(decideInbound(t, to(8080), local, 4, "::ffff:198.51.100.7").kind, "passthrough");
  assert.deepEqual(decideInbound(t, to(9090), local, 4, "198.51.100.7"), {
    kind: "refuse",
    reason: "access-denied",
  });
  assert.deepEqual(decideInbound(t, to(8080), local, 4, "198.51.100.8"), {
    kind: "refuse",
    reason: "access-denied",
  });
  const v6 = decideInbound(t, { address: "2001:db8::1", port: 9090 }, local, 6, "2001:DB8:0::7");
  assert.equal(v6.kind === "passthrough" && v6.trafficTarget, "server/any-port");
  // No rules at all: permissive mode off with no TrafficTarget for this pod refuses everything.
  const none = table({ inboundAccess: { rules: [] } });
  assert.deepEqual(decideInbound(none, to(8080), local, 4, "198.51.100.7"), {
    kind: "refuse",
    reason: "access-denied",
  });
});

test("an HTTP port with HTTPRouteGroup routes is decided per request; without routes, or off the HTTP ports, per connection", () => {
  const local = { address: "198.51.100.1", port: 15003 };
  const to = (port: number) => ({ address: "198.51.100.1", port });
  const source = [{ ip: "198.51.100.7", pod: "client/client-1" }];
  const match = { routeGroup: "server/routes", name: "status", pathRegex: "/status" };
  const routed = table({
    inboundAccess: {
      rules: [{ trafficTarget: "server/http", sources: source, httpMatches: [match] }],
      httpPorts: [8080],
    },
  });
  assert.deepEqual(decideInbound(routed, to(8080), local, 4, "198.51.100.7"), {
    kind: "inbound-http",
    upstream: { address: "127.0.0.1", port: 8080 },
    peer: "198.51.100.7",
    trafficTarget: "server/http",
    sourcePod: "client/client-1",
  });
  assert.equal(decideInbound(routed, to(9090), local, 4, "198.51.100.7").kind, "passthrough");
  // The source check comes first: a source no TrafficTarget lists is refused before any request.
  assert.equal(decideInbound(routed, to(8080), local, 4, "198.51.100.8").kind, "refuse");
  const tcpOnly = table({
    inboundAccess: { rules: [{ trafficTarget: "server/tcp", sources: source }], httpPorts: [8080] },
  });
  assert.equal(decideInbound(tcpOnly, to(8080), local, 4, "198.51.100.7").kind, "passthrough");
});

test("a mesh upstream allowed by a TrafficTarget names it", () => {
  const t = table({
    meshEndpoints: [
      { service: "server/server", ip: "203.0.113.30", port: 80, allowedBy: "server/allow-client" },
    ],
  });
  assert.deepEqual(decideOutbound(t, { address: "203.0.113.30", port: 80 }, LISTENER, 0), {
    kind: "mesh",
    service: "server/server",
    upstream: { address: "203.0.113.30", port: 80 },
    trafficTarget: "server/allow-client",
  });
});

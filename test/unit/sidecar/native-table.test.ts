/**
 * The relay threads' table (native-table.ts → native/route-table.c) decides as decide.ts does: the same
 * cases through both, connection by connection (round robin included). What the table leaves to JS
 * (Egress policies, access control) must be exactly what a policy decides in decide.ts.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import type { SidecarConfigInput } from "../../../src/config/sidecar-api.ts";
import { hostPort } from "../../../src/sidecar/connection-record.ts";
import {
  atConnectionLimit,
  type Decision,
  type Destination,
  decideInbound,
  decideOutbound,
  type RoutingTable,
} from "../../../src/sidecar/decide.ts";
import { loadNativeAddon } from "../../../src/sidecar/native/index.ts";
import { encodeRoutingTable } from "../../../src/sidecar/native-table.ts";
import { table } from "./routing-table.ts";

const addon = loadNativeAddon();
after(() => addon.routeTableInstall(null));

interface Normal {
  kind: string;
  reason?: string;
  service?: string;
  trafficTarget?: string;
  upstream?: string;
}

const KINDS = ["mesh", "passthrough", "refuse", "js"];
const REASONS = [undefined, "egress-disabled", "connection-limit", "no-config", "not-redirected"];

function native(direction: 0 | 1, original: Destination, local: Destination, active: number): Normal {
  const [kind, reason, service, trafficTarget, address, port] = addon.routeTableDecide(
    direction,
    original.address,
    original.port,
    local.address,
    local.port,
    active,
  );
  return {
    kind: KINDS[kind]!,
    ...(REASONS[reason] === undefined ? {} : { reason: REASONS[reason] }),
    ...(service === undefined ? {} : { service }),
    ...(trafficTarget === undefined ? {} : { trafficTarget }),
    ...(address === undefined ? {} : { upstream: hostPort(address, port) }),
  };
}

/** decide.ts's decision as the table would state it; a policy's verdict (Egress, TrafficTarget) is "js". */
function javascript(
  t: RoutingTable | undefined,
  direction: 0 | 1,
  original: Destination,
  local: Destination,
  active: number,
): Normal {
  const family = original.address.includes(":") ? 6 : 4;
  let decision: Decision;
  if (direction === 0) decision = decideOutbound(t, original, local, active);
  else if (atConnectionLimit(t, active)) decision = { kind: "refuse", reason: "connection-limit" };
  else decision = decideInbound(t, original, local, family, "198.51.100.7");
  const byPolicy =
    decision.kind === "inspect" ||
    (decision.kind === "passthrough" && decision.egress !== undefined) ||
    (decision.kind === "refuse" && decision.detail !== undefined) ||
    (direction === 1 &&
      t?.inbound !== undefined &&
      (decision.kind !== "refuse" || decision.reason === "access-denied"));
  if (byPolicy) return { kind: "js" };
  if (decision.kind === "refuse") return { kind: "refuse", reason: decision.reason };
  if (decision.kind === "inspect") throw new Error("unreachable");
  return {
    kind: decision.kind,
    ...(decision.kind === "mesh" ? { service: decision.service } : {}),
    ...(decision.trafficTarget === undefined ? {} : { trafficTarget: decision.trafficTarget }),
    upstream: hostPort(decision.upstream.address, decision.upstream.port),
  };
}

const OUT4 = { address: "198.51.100.1", port: 15001 };
const OUT6 = { address: "2001:db8::1", port: 15001 };
const IN4 = { address: "198.51.100.1", port: 15003 };
const IN6 = { address: "2001:db8::1", port: 15003 };

const mesh = [
  { service: "demo/web", ip: "203.0.113.30", port: 8080 },
  { service: "demo/db", ip: "2001:DB8:0::30", port: 5432, allowedBy: "demo/allow-db" },
  {
    service: "demo/api",
    ip: "192.0.2.100",
    port: 80,
    backends: [
      { ip: "203.0.113.31", port: 8080 },
      { ip: "2001:db8::32", port: 8080 },
      { ip: "203.0.113.33", port: 9090 },
    ],
  },
  { service: "demo/shadowed", ip: "203.0.113.30", port: 8080 },
];

const egressPolicy = {
  serviceAccount: "curl/curl",
  rules: [
    {
      egress: "curl/tcp",
      hosts: [],
      ipAddresses: ["203.0.113.0/24"],
      ports: [{ number: 80, protocol: "tcp" as const }],
    },
    {
      egress: "curl/https",
      hosts: ["httpbin.org"],
      ipAddresses: [],
      ports: [{ number: 443, protocol: "https" as const }],
    },
  ],
};

const configs: Record<string, Partial<SidecarConfigInput> | undefined> = {
  "no config yet": undefined,
  "egress off, mesh upstreams": { meshEndpoints: mesh },
  "egress on, mesh upstreams": { enableEgress: true, meshEndpoints: mesh },
  "egress on, a connection limit of 2": {
    enableEgress: true,
    meshEndpoints: mesh,
    maxDataPlaneConnections: 2,
  },
  "egress off, Egress policies": { meshEndpoints: mesh, egress: egressPolicy },
  "egress on, Egress policies (egress on wins)": { enableEgress: true, egress: egressPolicy },
  "permissive mode off (inbound access rules)": {
    meshEndpoints: mesh,
    inboundAccess: {
      rules: [{ trafficTarget: "demo/allow", sources: [{ ip: "198.51.100.7", pod: "demo/client" }] }],
    },
    maxDataPlaneConnections: 3,
  },
};

const outbound: Array<[Destination, Destination]> = [
  [{ address: "203.0.113.30", port: 8080 }, OUT4],
  [{ address: "203.0.113.30", port: 9999 }, OUT4],
  [{ address: "2001:db8::30", port: 5432 }, OUT6],
  [{ address: "2001:db8::31", port: 5432 }, OUT6],
  [{ address: "203.0.113.10", port: 80 }, OUT4],
  [{ address: "203.0.113.10", port: 443 }, OUT4],
  [{ address: "198.51.100.9", port: 80 }, OUT4],
  [OUT4, OUT4],
  [OUT6, OUT6],
];
const inbound: Array<[Destination, Destination]> = [
  [{ address: "198.51.100.1", port: 8080 }, IN4],
  [{ address: "2001:db8::1", port: 8080 }, IN6],
  [IN4, IN4],
];

for (const [name, input] of Object.entries(configs)) {
  test(`the relay threads decide as decide.ts: ${name}`, () => {
    const t = input === undefined ? undefined : table(input);
    addon.routeTableInstall(encodeRoutingTable(t));
    for (const active of [0, 1, 2, 5]) {
      for (const [original, local] of outbound) {
        const expected = javascript(t, 0, original, local, active);
        assert.deepEqual(
          native(0, original, local, active),
          expected,
          `${hostPort(original.address, original.port)} active ${active}`,
        );
      }
      for (const [original, local] of inbound) {
        const expected = javascript(t, 1, original, local, active);
        assert.deepEqual(
          native(1, original, local, active),
          expected,
          `inbound ${original.port} active ${active}`,
        );
      }
    }
  });
}

test("round robin over backends: the relay threads pick the same sequence as decide.ts", () => {
  const t = table({ meshEndpoints: mesh });
  addon.routeTableInstall(encodeRoutingTable(t));
  const dst = { address: "192.0.2.100", port: 80 };
  const picks = Array.from({ length: 7 }, () => {
    const js = javascript(t, 0, dst, OUT4, 0);
    assert.deepEqual(native(0, dst, OUT4, 0), js);
    return js.upstream;
  });
  assert.deepEqual(picks, [
    "203.0.113.31:8080",
    "[2001:db8::32]:8080",
    "203.0.113.33:9090",
    "203.0.113.31:8080",
    "[2001:db8::32]:8080",
    "203.0.113.33:9090",
    "203.0.113.31:8080",
  ]);
});

test("bytes that are no encoded table are refused with the reason, and the table in force stays", () => {
  const t = table({ enableEgress: true });
  addon.routeTableInstall(encodeRoutingTable(t));
  const good = encodeRoutingTable(table({ meshEndpoints: mesh }))!;
  for (const bad of [
    Buffer.from("nope"),
    good.subarray(0, good.length - 3),
    Buffer.concat([good, Buffer.alloc(1)]),
  ]) {
    assert.throws(
      () => addon.routeTableInstall(bad),
      (error: NodeJS.ErrnoException) => error.code === "EINVAL",
    );
  }
  assert.equal(native(0, { address: "203.0.113.10", port: 80 }, OUT4, 0).kind, "passthrough");
});

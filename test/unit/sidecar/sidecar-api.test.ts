import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSidecarConfig, SIDECAR_API_VERSION } from "../../../src/config/sidecar-api.ts";

test("a minimal document is valid and gets the defaults: no mesh endpoints, no connection limit", () => {
  const parsed = parseSidecarConfig({ apiVersion: SIDECAR_API_VERSION, version: 0, enableEgress: false });
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.config, {
    apiVersion: "osm.sidecar/v1",
    version: 0,
    enableEgress: false,
    maxDataPlaneConnections: 0,
    meshEndpoints: [],
  });
});

test("mesh endpoint IPs are rewritten to canonical text and backends default to none", () => {
  const parsed = parseSidecarConfig({
    apiVersion: SIDECAR_API_VERSION,
    version: 3,
    enableEgress: true,
    meshEndpoints: [{ service: "demo/db", ip: " 2001:DB8:0:0::1 ", port: 5432 }],
  });
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.config.meshEndpoints, [
    { service: "demo/db", ip: "2001:db8::1", port: 5432, backends: [] },
  ]);
});

test("every problem is reported with its field path and the value as given", () => {
  const parsed = parseSidecarConfig({
    apiVersion: SIDECAR_API_VERSION,
    version: -1,
    enableEgress: "yes",
    meshEndpoints: [
      { service: "Demo", ip: "999.1.1.1", port: 70000, backends: [{ ip: "10.0.0.1", port: 0 }] },
    ],
  });
  assert.ok(!parsed.ok);
  const byPath = Object.fromEntries(parsed.problems.map((p) => [p.path, p.value]));
  assert.deepEqual(byPath, {
    version: -1,
    enableEgress: "yes",
    "meshEndpoints[0].service": "Demo",
    "meshEndpoints[0].ip": "999.1.1.1",
    "meshEndpoints[0].port": 70000,
    "meshEndpoints[0].backends[0].port": 0,
  });
});

test("another apiVersion and unknown fields are rejected, not guessed at", () => {
  const other = parseSidecarConfig({ apiVersion: "osm.sidecar/v2", version: 1, enableEgress: true });
  assert.ok(!other.ok);
  assert.equal(other.problems[0]?.path, "apiVersion");
  const unknown = parseSidecarConfig({
    apiVersion: SIDECAR_API_VERSION,
    version: 1,
    enableEgress: true,
    allowAll: true,
  });
  assert.ok(!unknown.ok);
  assert.deepEqual(unknown.problems, [
    { path: "allowAll", value: true, message: "is not a field of osm.sidecar/v1" },
  ]);
  const notObject = parseSidecarConfig([]);
  assert.ok(!notObject.ok);
  assert.equal(notObject.problems[0]?.path, "<document>");
});

test("the egress section is checked field by field: CIDRs canonical, protocols known, paths named", () => {
  const base = { apiVersion: "osm.sidecar/v1", version: 1, enableEgress: false };
  const good = parseSidecarConfig({
    ...base,
    egress: {
      serviceAccount: "curl/curl",
      rules: [
        {
          egress: "curl/a",
          hosts: ["HTTPBIN.org"],
          ipAddresses: ["203.0.113.11/24"],
          ports: [{ number: 80, protocol: "tcp" }],
        },
      ],
    },
  });
  assert.ok(good.ok);
  assert.deepEqual(good.config.egress?.rules[0]?.ipAddresses, ["203.0.113.0/24"]);
  assert.deepEqual(good.config.egress?.rules[0]?.hosts, ["httpbin.org"]);
  const bad = parseSidecarConfig({
    ...base,
    egress: {
      serviceAccount: "curl/curl",
      rules: [{ egress: "curl/a", ipAddresses: ["x"], ports: [{ number: 80, protocol: "udp" }] }],
    },
  });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.problems.map((p) => p.path),
    ["egress.rules[0].ipAddresses[0]", "egress.rules[0].ports[0].protocol"],
  );
});

test("inbound access carries each TrafficTarget's HTTP routes and the HTTP ports, checked with their paths", () => {
  const base = { apiVersion: "osm.sidecar/v1", version: 1, enableEgress: false };
  const match = { routeGroup: "server/routes", name: "status", pathRegex: "/status", methods: ["GET"] };
  const good = parseSidecarConfig({
    ...base,
    inboundAccess: {
      rules: [{ trafficTarget: "server/http", sources: [], httpMatches: [match] }],
      httpPorts: [8080],
    },
  });
  assert.ok(good.ok);
  assert.deepEqual(good.config.inboundAccess, {
    rules: [{ trafficTarget: "server/http", sources: [], httpMatches: [match] }],
    httpPorts: [8080],
  });
  const bad = parseSidecarConfig({
    ...base,
    inboundAccess: {
      rules: [{ trafficTarget: "server/http", sources: [], httpMatches: [{ ...match, name: 7 }] }],
      httpPorts: [0],
    },
  });
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.problems.map((p) => [p.path, p.value]),
    [
      ["inboundAccess.rules[0].httpMatches[0].name", 7],
      ["inboundAccess.httpPorts[0]", 0],
    ],
  );
});

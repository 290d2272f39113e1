import assert from "node:assert/strict";
import { test } from "node:test";
import type { SidecarInboundAccess } from "../../../src/config/sidecar-api.ts";
import { compileInboundRoutes, decideInboundRequest } from "../../../src/sidecar/inbound-routes.ts";

const CLIENT = { ip: "198.51.100.7", pod: "client/client" };
const OTHER = { ip: "2001:db8::8", pod: "client/other" };

const access: SidecarInboundAccess = {
  httpPorts: [8080],
  rules: [
    {
      trafficTarget: "server/a-client",
      sources: [CLIENT],
      httpMatches: [
        { routeGroup: "server/routes", name: "status", pathRegex: "/status/[0-9]+", methods: ["GET"] },
        { routeGroup: "server/routes", name: "admin", pathRegex: "/admin", headers: [{ "x-role": "admin" }] },
      ],
    },
    {
      trafficTarget: "server/b-other",
      sources: [OTHER],
      // The same match as a-client's status: one route, both sources.
      httpMatches: [
        { routeGroup: "server/more", name: "status-too", pathRegex: "/status/[0-9]+", methods: ["GET"] },
        { routeGroup: "server/more", name: "all", pathRegex: ".*" },
      ],
    },
    // TCPRoute only: its source gets in by connection but no route lists it.
    { trafficTarget: "server/c-tcp", ports: [8080], sources: [{ ip: "198.51.100.9", pod: "client/tcp" }] },
  ],
};

const routes = compileInboundRoutes(access);
const get = (path: string, headers: Record<string, string> = {}) => ({ method: "GET", path, headers });

test("one route per distinct match, in TrafficTarget order, merged routes allow every source of theirs", () => {
  assert.deepEqual(
    routes.map((r) => [r.name, [...r.sources.entries()]]),
    [
      [
        "server/routes#status",
        [
          ["198.51.100.7", "server/a-client"],
          ["2001:db8::8", "server/b-other"],
        ],
      ],
      ["server/routes#admin", [["198.51.100.7", "server/a-client"]]],
      ["server/more#all", [["2001:db8::8", "server/b-other"]]],
    ],
  );
});

test("the first route whose match holds decides: its source goes in, another gets 403", () => {
  assert.deepEqual(decideInboundRequest(routes, "198.51.100.7", get("/status/200?x=1")), {
    allowed: true,
    trafficTarget: "server/a-client",
    route: "server/routes#status",
  });
  assert.deepEqual(decideInboundRequest(routes, "2001:DB8::8", get("/status/200")), {
    allowed: true,
    trafficTarget: "server/b-other",
    route: "server/routes#status",
  });
  // A dual-stack socket's spelling of a v4 peer is the same source.
  assert.equal(decideInboundRequest(routes, "::ffff:198.51.100.7", get("/status/1")).allowed, true);
  // /admin with the header: the admin route holds first, and only a-client's source is on it (Envoy's RBAC).
  assert.deepEqual(decideInboundRequest(routes, "2001:db8::8", get("/admin", { "x-role": "admin" })), {
    allowed: false,
    status: 403,
    route: "server/routes#admin",
  });
  // Without the header the admin route does not hold; the catch-all does and allows b-other's source only.
  assert.equal(decideInboundRequest(routes, "2001:db8::8", get("/admin")).allowed, true);
  assert.deepEqual(decideInboundRequest(routes, "198.51.100.7", get("/admin")), {
    allowed: false,
    status: 403,
    route: "server/more#all",
  });
  // A source only a TCPRoute TrafficTarget lists is on no route.
  assert.equal(decideInboundRequest(routes, "198.51.100.9", get("/status/1")).allowed, false);
});

test("no route holds: 404, as Envoy answers a request no route matches", () => {
  const only = compileInboundRoutes({ rules: [access.rules[0]!] });
  assert.deepEqual(decideInboundRequest(only, "198.51.100.7", get("/other")), {
    allowed: false,
    status: 404,
  });
  assert.deepEqual(
    decideInboundRequest(only, "198.51.100.7", { method: "POST", path: "/status/1", headers: {} }),
    {
      allowed: false,
      status: 404,
    },
  );
  assert.deepEqual(decideInboundRequest(compileInboundRoutes({ rules: [] }), "198.51.100.7", get("/")), {
    allowed: false,
    status: 404,
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import { createAccessPolicy } from "../../../src/controller/access-policy.ts";
import { buildMeshEndpoints } from "../../../src/controller/mesh-endpoints.ts";
import type { HttpRouteGroup } from "../../../src/smi/http-route-group.ts";
import type { TCPRoute, TrafficTarget } from "../../../src/smi/schema.ts";

const namespaces: V1Namespace[] = ["server", "client"].map((name) => ({
  metadata: { name, labels: { "openservicemesh.io/monitored-by": "osm" } },
}));

function pod(namespace: string, name: string, serviceAccountName: string, ip: string): V1Pod {
  return {
    metadata: { namespace, name, labels: { app: name } },
    spec: { serviceAccountName, containers: [{ name: "app", ports: [{ containerPort: 8080 }] }] },
    status: { phase: "Running", podIP: ip },
  };
}

function service(namespace: string, name: string, clusterIP: string, portName?: string): V1Service {
  const port = { port: 80, targetPort: 8080, ...(portName === undefined ? {} : { name: portName }) };
  return { metadata: { namespace, name }, spec: { clusterIP, selector: { app: name }, ports: [port] } };
}

function trafficTarget(
  name: string,
  sources: string[],
  rules: TrafficTarget["spec"]["rules"],
): TrafficTarget {
  return {
    apiVersion: "access.smi-spec.io/v1alpha3",
    kind: "TrafficTarget",
    metadata: { name, namespace: "server" },
    spec: {
      destination: { kind: "ServiceAccount", name: "server", namespace: "server" },
      rules,
      sources: sources.map((s) => ({ kind: "ServiceAccount", name: s, namespace: "client" })),
    },
  };
}

const tcpRoute: TCPRoute = {
  apiVersion: "specs.smi-spec.io/v1alpha4",
  kind: "TCPRoute",
  metadata: { name: "tcp-8080", namespace: "server" },
  spec: { matches: { ports: [8080] } },
};

const pods = [
  pod("server", "server", "server", "198.51.100.10"),
  pod("client", "client", "client", "198.51.100.20"),
  pod("client", "other", "other", "198.51.100.30"),
];
const services = [
  service("server", "server", "192.0.2.10"),
  service("client", "client", "192.0.2.20"),
  service("client", "other", "192.0.2.30"),
];
const meshEndpoints = buildMeshEndpoints({ namespaces, services, endpoints: [], pods }, "osm");

const routeGroup: HttpRouteGroup = {
  apiVersion: "specs.smi-spec.io/v1alpha4",
  kind: "HTTPRouteGroup",
  metadata: { name: "routes", namespace: "server" },
  spec: {
    matches: [
      { name: "status", pathRegex: "/status.*", methods: ["GET"] },
      { name: "admin", pathRegex: "/admin" },
    ],
  },
};

function policy(trafficTargets: TrafficTarget[], tcpRoutes: TCPRoute[] = [tcpRoute], servicesIn = services) {
  return createAccessPolicy({
    trafficTargets,
    tcpRoutes,
    httpRouteGroups: [routeGroup],
    services: servicesIn,
    meshEndpoints,
    pods,
    sourcePods: pods,
  });
}

test("without TrafficTargets a pod has no mesh upstream (not even its own Service) and lets nothing in", () => {
  const access = policy([])("client/client");
  assert.deepEqual(access.meshEndpoints, []);
  // The unnamed Service port is http to OSM (its default), so the pod's port 8080 is an HTTP port.
  assert.deepEqual(access.inboundAccess, { rules: [], httpPorts: [8080] });
});

test("a source gets exactly the services of the service accounts it may reach, named by the TrafficTarget", () => {
  const access = policy([
    trafficTarget("allow-client", ["client"], [{ kind: "TCPRoute", name: "tcp-8080" }]),
  ]);
  const client = access("client/client");
  assert.deepEqual(
    client.meshEndpoints.map((e) => [e.service, e.ip, e.port, e.allowedBy]),
    [
      ["server/server", "192.0.2.10", 80, "server/allow-client"],
      ["server/server", "198.51.100.10", 8080, "server/allow-client"],
    ],
  );
  assert.deepEqual(access("client/other").meshEndpoints, []);
  assert.deepEqual(access("server/server").inboundAccess.rules, [
    {
      trafficTarget: "server/allow-client",
      ports: [8080],
      sources: [{ ip: "198.51.100.20", pod: "client/client" }],
    },
  ]);
});

test("a TrafficTarget naming a TCPRoute that does not exist lets nothing in (OSM skips it)", () => {
  const access = policy([trafficTarget("allow-client", ["client"], [{ kind: "TCPRoute", name: "missing" }])]);
  assert.deepEqual(access("server/server").inboundAccess.rules, []);
});

test("HTTPRouteGroup rules only: every port of the destination, as OSM's network RBAC", () => {
  const access = policy([
    trafficTarget("http", ["client", "other"], [{ kind: "HTTPRouteGroup", name: "routes" }]),
  ]);
  const [rule] = access("server/server").inboundAccess.rules;
  assert.equal(rule?.ports, undefined);
  assert.deepEqual(
    rule?.sources.map((s) => s.pod),
    ["client/client", "client/other"],
  );
});

test("HTTPRouteGroup rules carry the matches they name (none named: all of the group); a missing group adds none", () => {
  const access = policy([
    trafficTarget("a-status", ["client"], [{ kind: "HTTPRouteGroup", name: "routes", matches: ["status"] }]),
    trafficTarget("b-all", ["other"], [{ kind: "HTTPRouteGroup", name: "routes" }]),
    trafficTarget("c-missing", ["other"], [{ kind: "HTTPRouteGroup", name: "absent" }]),
  ])("server/server").inboundAccess;
  assert.deepEqual(
    access.rules.map((r) => [r.trafficTarget, r.httpMatches?.map((m) => `${m.routeGroup}#${m.name}`)]),
    [
      ["server/a-status", ["server/routes#status"]],
      ["server/b-all", ["server/routes#status", "server/routes#admin"]],
      ["server/c-missing", []],
    ],
  );
  assert.deepEqual(access.rules[0]?.httpMatches?.[0], {
    name: "status",
    pathRegex: "/status.*",
    methods: ["GET"],
    routeGroup: "server/routes",
  });
  assert.deepEqual(access.httpPorts, [8080]);
});

test("HTTP ports follow OSM's protocol of the Service port: appProtocol, else the name's prefix, else http", () => {
  const named = (portName: string) =>
    policy(
      [],
      [tcpRoute],
      [service("server", "server", "192.0.2.10", portName), ...services.slice(1)],
    )("server/server").inboundAccess.httpPorts;
  assert.deepEqual(named("http-web"), [8080]);
  assert.equal(named("tcp-db"), undefined);
  assert.equal(named("tcp-server-first-x"), undefined);
  assert.equal(named("grpc-api"), undefined);
  const appProtocol = (value: string) =>
    policy(
      [],
      [tcpRoute],
      [
        {
          metadata: { namespace: "server", name: "server" },
          spec: {
            clusterIP: "192.0.2.10",
            selector: { app: "server" },
            ports: [{ name: "http-x", appProtocol: value, port: 80, targetPort: 8080 }],
          },
        },
        ...services.slice(1),
      ],
    )("server/server").inboundAccess.httpPorts;
  assert.equal(appProtocol("tcp"), undefined);
  assert.deepEqual(appProtocol("http"), [8080]);
});

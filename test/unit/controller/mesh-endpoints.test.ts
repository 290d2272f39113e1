import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Endpoints, V1Namespace, V1Pod, V1Service } from "@kubernetes/client-node";
import {
  buildMeshEndpoints,
  isMonitoredNamespace,
  type MeshInventory,
} from "../../../src/controller/mesh-endpoints.ts";

const ns = (
  name: string,
  labels: Record<string, string> = { "openservicemesh.io/monitored-by": "osm" },
): V1Namespace => ({
  metadata: { name, labels },
});
const pod = (
  name: string,
  namespace: string,
  ip: string,
  labels: Record<string, string>,
  phase = "Running",
): V1Pod => ({
  metadata: { name, namespace, labels },
  spec: { containers: [{ name: "app", ports: [{ name: "http", containerPort: 8080 }] }] },
  status: { phase, podIP: ip },
});
const svc = (name: string, namespace: string, spec: V1Service["spec"]): V1Service => ({
  metadata: { name, namespace },
  spec,
});
const inventory = (parts: Partial<MeshInventory>): MeshInventory => ({
  namespaces: [],
  services: [],
  endpoints: [],
  pods: [],
  ...parts,
});

test("a namespace is monitored only when labelled for this mesh and not ignored", () => {
  assert.equal(isMonitoredNamespace(ns("a"), "osm"), true);
  assert.equal(isMonitoredNamespace(ns("a"), "other"), false);
  assert.equal(isMonitoredNamespace(ns("a", {}), "osm"), false);
  assert.equal(
    isMonitoredNamespace(
      ns("a", { "openservicemesh.io/monitored-by": "osm", "openservicemesh.io/ignore": "true" }),
      "osm",
    ),
    false,
  );
});

test("a service without an Endpoints object gets its backends from the running pods its selector matches", () => {
  const result = buildMeshEndpoints(
    inventory({
      namespaces: [ns("bookstore")],
      pods: [
        pod("b1", "bookstore", "198.51.100.11", { app: "bookstore" }),
        pod("b2", "bookstore", "198.51.100.12", { app: "bookstore" }, "Pending"),
        pod("x", "bookstore", "198.51.100.13", { app: "other" }),
      ],
      services: [
        svc("bookstore", "bookstore", {
          clusterIP: "192.0.2.10",
          selector: { app: "bookstore" },
          ports: [{ name: "web", port: 80, targetPort: "http" as unknown as never }],
        }),
      ],
    }),
    "osm",
  );
  assert.deepEqual(result, [
    {
      service: "bookstore/bookstore",
      ip: "192.0.2.10",
      port: 80,
      backends: [{ ip: "198.51.100.11", port: 8080 }],
    },
    { service: "bookstore/bookstore", ip: "198.51.100.11", port: 8080, backends: [] },
  ]);
});

test("an Endpoints object, when present, gives the backends, matched by port name", () => {
  const endpoints: V1Endpoints = {
    metadata: { name: "api", namespace: "app" },
    subsets: [
      {
        addresses: [{ ip: "198.51.100.21" }, { ip: "198.51.100.22" }],
        ports: [
          { name: "grpc", port: 9000 },
          { name: "http", port: 8000 },
        ],
      },
    ],
  };
  const result = buildMeshEndpoints(
    inventory({
      namespaces: [ns("app")],
      endpoints: [endpoints],
      services: [
        svc("api", "app", {
          clusterIP: "192.0.2.20",
          selector: { app: "api" },
          ports: [{ name: "http", port: 80 }],
        }),
      ],
    }),
    "osm",
  );
  assert.deepEqual(result[0], {
    service: "app/api",
    ip: "192.0.2.20",
    port: 80,
    backends: [
      { ip: "198.51.100.21", port: 8000 },
      { ip: "198.51.100.22", port: 8000 },
    ],
  });
  assert.equal(result.length, 3);
});

test("a headless service is dialled at its pod IPs, and UDP ports and ExternalName services are left out", () => {
  const result = buildMeshEndpoints(
    inventory({
      namespaces: [ns("db")],
      pods: [pod("db-0", "db", "2001:DB8::0:5", { app: "db" })],
      services: [
        svc("db", "db", {
          clusterIP: "None",
          selector: { app: "db" },
          ports: [
            { name: "pg", port: 5432 },
            { name: "dns", port: 53, protocol: "UDP" },
          ],
        }),
        svc("ext", "db", { type: "ExternalName", externalName: "example.com", ports: [{ port: 80 }] }),
      ],
    }),
    "osm",
  );
  assert.deepEqual(result, [{ service: "db/db", ip: "2001:db8::5", port: 5432, backends: [] }]);
});

test("services and pods of namespaces outside the mesh are not mesh endpoints", () => {
  const result = buildMeshEndpoints(
    inventory({
      namespaces: [ns("outside", {})],
      pods: [pod("p", "outside", "198.51.100.30", { app: "p" })],
      services: [
        svc("p", "outside", { clusterIP: "192.0.2.30", selector: { app: "p" }, ports: [{ port: 80 }] }),
      ],
    }),
    "osm",
  );
  assert.deepEqual(result, []);
});

test("the result is the same whatever the order of the inputs", () => {
  const services = [
    svc("b", "m", { clusterIP: "192.0.2.2", ports: [{ port: 80 }] }),
    svc("a", "m", { clusterIP: "192.0.2.1", ports: [{ port: 81 }, { port: 80 }] }),
  ];
  const one = buildMeshEndpoints(inventory({ namespaces: [ns("m")], services }), "osm");
  const two = buildMeshEndpoints(
    inventory({ namespaces: [ns("m")], services: [...services].reverse() }),
    "osm",
  );
  assert.deepEqual(one, two);
  assert.deepEqual(
    one.map((e) => `${e.ip}:${e.port}`),
    ["192.0.2.1:80", "192.0.2.1:81", "192.0.2.2:80"],
  );
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { V1Endpoints, V1Service } from "@kubernetes/client-node";
import * as dns from "dns-packet";
import { answerQuery, buildDnsIndex, externalHostRecords } from "../../../src/local/node/cluster-dns.ts";
import { planServiceRoutes } from "../../../src/local/node/service-plan.ts";
import { renderServicesTable, servicesTableName } from "../../../src/local/node/services-nft.ts";

const svc = (
  name: string,
  clusterIP: string,
  ports: { name?: string; port: number; protocol?: string }[],
  namespace = "ns",
): V1Service => ({ metadata: { name, namespace }, spec: { clusterIP, ports } });
const eps = (
  name: string,
  ready: string[],
  ports: { name?: string; port: number; protocol?: string }[],
  notReady: string[] = [],
): V1Endpoints => ({
  metadata: { name, namespace: "ns" },
  subsets: [
    {
      addresses: ready.map((ip) => ({ ip })),
      notReadyAddresses: notReady.map((ip) => ({ ip })),
      ports,
    },
  ],
});

describe("the Service plan (kube-proxy's view)", () => {
  test("each ClusterIP port goes to the ready endpoints' target ports, matched by port name; not-ready ones left out", () => {
    const routes = planServiceRoutes(
      [
        svc("web", "192.0.2.10", [
          { name: "http", port: 80 },
          { name: "metrics", port: 9090 },
        ]),
      ],
      [
        eps(
          "web",
          ["198.51.100.6", "198.51.100.5"],
          [
            { name: "http", port: 8080 },
            { name: "metrics", port: 15090 },
          ],
          ["198.51.100.7"],
        ),
      ],
    );
    assert.deepEqual(routes, [
      {
        name: "ns/web:http",
        clusterIP: "192.0.2.10",
        protocol: "tcp",
        port: 80,
        backends: [
          { ip: "198.51.100.5", port: 8080 },
          { ip: "198.51.100.6", port: 8080 },
        ],
      },
      {
        name: "ns/web:metrics",
        clusterIP: "192.0.2.10",
        protocol: "tcp",
        port: 9090,
        backends: [
          { ip: "198.51.100.5", port: 15090 },
          { ip: "198.51.100.6", port: 15090 },
        ],
      },
    ]);
  });
  test("a Service without ready endpoints keeps its port with no backend; headless and ExternalName have none", () => {
    const routes = planServiceRoutes(
      [
        svc("empty", "192.0.2.11", [{ port: 53, protocol: "UDP" }]),
        svc("headless", "None", [{ port: 80 }]),
        {
          metadata: { name: "ext", namespace: "ns" },
          spec: { type: "ExternalName", externalName: "x.test" },
        },
      ],
      [eps("empty", [], [{ port: 53, protocol: "UDP" }]), eps("headless", ["198.51.100.5"], [{ port: 80 }])],
    );
    assert.deepEqual(routes, [
      { name: "ns/empty:53", clusterIP: "192.0.2.11", protocol: "udp", port: 53, backends: [] },
    ]);
  });
});

describe("the services nftables table", () => {
  test("replaces its own table only: ClusterIP . proto . port vmap → numgen random over the endpoints' DNAT chains", () => {
    const script = renderServicesTable("osm0", [
      {
        name: "ns/web:http",
        clusterIP: "192.0.2.10",
        protocol: "tcp",
        port: 80,
        backends: [
          { ip: "198.51.100.5", port: 8080 },
          { ip: "198.51.100.6", port: 8080 },
          { ip: "198.51.100.7", port: 8080 },
        ],
      },
      { name: "ns/empty:53", clusterIP: "192.0.2.11", protocol: "udp", port: 53, backends: [] },
    ]);
    assert.equal(servicesTableName("osmt-ne0"), "osm_services_osmt_ne0");
    const lines = script.split("\n").map((l) => l.trim());
    // Every table statement names our table; nothing else is flushed or deleted.
    assert.deepEqual(
      lines.filter((l) => /^(table|delete|flush)\b/.test(l)),
      ["table ip osm_services_osm0", "delete table ip osm_services_osm0", "table ip osm_services_osm0 {"],
    );
    assert.ok(
      lines.includes("numgen random mod 3 vmap { 0 : goto ep_0_0, 1 : goto ep_0_1, 2 : goto ep_0_2 }"),
    );
    assert.ok(lines.includes("meta l4proto tcp dnat to 198.51.100.6:8080"));
    assert.ok(lines.includes("elements = { 192.0.2.10 . tcp . 80 : goto svc_0 }"));
    assert.ok(lines.includes('iifname "osm0" ip daddr . meta l4proto . th dport vmap @service_ports'));
    assert.ok(lines.includes("ct status dnat ip saddr . ip daddr @hairpin masquerade"));
    // A port with no ready endpoint is rejected at once (kube-proxy's no-endpoint-services), not left to time out.
    assert.ok(lines.includes("elements = { 192.0.2.11 . udp . 53 : goto reject_chain }"));
    assert.ok(lines.includes("meta l4proto tcp reject with tcp reset"));
    assert.ok(
      lines.includes(
        'iifname "osm0" ct state new ip daddr . meta l4proto . th dport vmap @no_endpoint_services',
      ),
    );
    // ...and is not translated: it is in no service_ports element.
    assert.ok(!script.includes("192.0.2.11 . udp . 53 : goto svc_"));
  });
});

/** dns-packet decodes these; its type definitions leave them out. */
const rcode = (p: dns.DecodedPacket) => (p as { rcode?: string }).rcode;
const data = (a: dns.Answer) => ("data" in a ? String(a.data) : "");

describe("the cluster DNS", () => {
  const index = buildDnsIndex(
    [
      svc("web", "192.0.2.10", [{ port: 80 }], "demo"),
      svc("db", "None", [{ port: 5432 }]),
      {
        metadata: { name: "v6", namespace: "demo" },
        spec: { clusterIP: "2001:db8:5::a", clusterIPs: ["2001:db8:5::a"] },
      },
    ],
    [
      {
        metadata: { name: "db", namespace: "ns" },
        subsets: [{ addresses: [{ ip: "198.51.100.8" }, { ip: "198.51.100.9" }] }],
      },
    ],
  );
  const ask = (name: string, type: "A" | "AAAA" = "A", limit?: number) => {
    const out = answerQuery(
      dns.encode({
        type: "query",
        id: 7,
        flags: dns.RECURSION_DESIRED,
        questions: [{ type, name, class: "IN" }],
      }),
      index,
      limit,
    );
    assert.ok(out);
    return dns.decode(out);
  };
  test("answers A for <svc>.<ns>.svc.cluster.local (any case), authoritatively, with the query's id", () => {
    const r = ask("WEB.demo.svc.cluster.local");
    assert.equal(r.id, 7);
    assert.equal(rcode(r), "NOERROR");
    assert.equal(r.flag_aa, true);
    assert.deepEqual(
      r.answers?.map((a) => [a.type, data(a)]),
      [["A", "192.0.2.10"]],
    );
  });
  test("an existing name without records of the type is NODATA; AAAA for an IPv6 ClusterIP", () => {
    const none = ask("web.demo.svc.cluster.local", "AAAA");
    assert.equal(rcode(none), "NOERROR");
    assert.deepEqual(none.answers, []);
    assert.deepEqual(
      ask("v6.demo.svc.cluster.local", "AAAA").answers?.map((a) => data(a)),
      ["2001:db8:5::a"],
    );
  });
  test("a headless Service answers its ready endpoints", () => {
    assert.deepEqual(
      ask("db.ns.svc.cluster.local").answers?.map((a) => data(a)),
      ["198.51.100.8", "198.51.100.9"],
    );
  });
  test("everything else is NXDOMAIN (nothing is forwarded), incl. names the search path tries first", () => {
    for (const name of [
      "web.demo.svc.cluster.local.demo.svc.cluster.local",
      "web",
      "web.demo",
      "example.com",
      "nope.demo.svc.cluster.local",
    ]) {
      assert.equal(rcode(ask(name)), "NXDOMAIN", name);
    }
  });
  test("an answer too long for the limit is truncated (TC) with no records, so the resolver asks over TCP", () => {
    const r = ask("db.ns.svc.cluster.local", "A", 40);
    assert.equal(r.flag_tc, true);
    assert.deepEqual(r.answers, []);
  });
  test("garbage gets no answer; a non-query opcode gets NOTIMP", () => {
    assert.equal(answerQuery(Buffer.from([1, 2, 3]), index), undefined);
    const update = dns.encode({ type: "query", id: 9, questions: [{ type: "A", name: "x" }] });
    update.writeUInt16BE(update.readUInt16BE(2) | (5 << 11), 2);
    const out = answerQuery(update, index);
    assert.ok(out);
    assert.equal(rcode(dns.decode(out)), "NOTIMP");
  });
});

test("external hosts' names resolve to their single addresses (osm mesh external-host add … --hostname)", () => {
  const index = externalHostRecords([
    {
      hostnames: ["httpbin.org", "HTTPBIN.example"],
      addresses: ["203.0.113.10/32", "2001:db8::10/128", "192.0.2.0/24"],
    },
    { addresses: ["203.0.113.11/32"] },
  ]);
  assert.deepEqual(index.get("httpbin.org"), { a: ["203.0.113.10"], aaaa: ["2001:db8::10"] });
  assert.deepEqual([...index.keys()], ["httpbin.org", "httpbin.example"]);
  const out = answerQuery(
    dns.encode({ type: "query", id: 3, questions: [{ type: "A", name: "httpbin.org", class: "IN" }] }),
    index,
  );
  assert.ok(out);
  assert.deepEqual(
    dns.decode(out).answers?.map((a) => (a as { data: string }).data),
    ["203.0.113.10"],
  );
});

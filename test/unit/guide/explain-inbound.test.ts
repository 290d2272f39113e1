import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  explainInbound,
  formatInboundExplanation,
  type InboundExplainInput,
} from "../../../src/guide/explain-inbound.ts";
import { parseInboundDestination } from "../../../src/guide/explain-inbound-run.ts";

const source = {
  pod: "clients/allowed",
  serviceAccount: "clients/allowed",
  ip: "198.51.100.7",
  meshed: true,
};
const destination = {
  pod: "server/web",
  serviceAccount: "server/web",
  ip: "198.51.100.10",
  port: 8080,
  family: 4 as const,
};
const status = { routeGroup: "server/web-routes", name: "status", pathRegex: "/status/.*", methods: ["GET"] };
const everything = { routeGroup: "server/web-routes", name: "everything", pathRegex: ".*" };
const access = {
  rules: [
    {
      trafficTarget: "server/web-allowed-status",
      sources: [{ ip: "198.51.100.7", pod: "clients/allowed" }],
      httpMatches: [status],
    },
    {
      trafficTarget: "server/web-denied-everything",
      sources: [{ ip: "198.51.100.8", pod: "clients/denied" }],
      httpMatches: [everything],
    },
  ],
  httpPorts: [8080],
};
const base: InboundExplainInput = { source, destination, access };
const get = (path: string) => ({ method: "GET", path, headers: {} });

test("an HTTP port: the TrafficTarget that lets the source in, its routes, and what one request gets", () => {
  assert.deepEqual(explainInbound(base), {
    verdict: "allowed",
    trafficTarget: "server/web-allowed-status",
    http: { routes: ["server/web-routes#status"] },
  });
  const allowed = explainInbound({ ...base, request: get("/status/200") });
  assert.equal(
    allowed.verdict === "allowed" && allowed.http?.request?.answer,
    "forwarded to the app: route server/web-routes#status, allowed by TrafficTarget server/web-allowed-status",
  );
  const input = { ...base, request: get("/admin") };
  const text = formatInboundExplanation(input, explainInbound(input));
  assert.equal(
    text,
    [
      "pod clients/allowed (198.51.100.7, service account clients/allowed) → pod server/web 198.51.100.10:8080 (tcp, inbound)",
      "→ allowed: TrafficTarget server/web-allowed-status lets service account clients/allowed in on port 8080",
      "  port 8080 serves HTTP: each request is decided by the HTTPRouteGroup routes of the TrafficTargets to server/web",
      "  routes this source may use: server/web-routes#status",
      "  GET /admin → 403 RBAC: access denied: the first route that matches, server/web-routes#everything, does not allow this source",
      "",
    ].join("\n"),
  );
  const onlyStatus = { ...access, rules: [access.rules[0]!] };
  const notFound = explainInbound({ ...base, access: onlyStatus, request: get("/admin") });
  assert.match(
    notFound.verdict === "allowed" ? (notFound.http?.request?.answer ?? "") : "",
    /^404: no route/,
  );
});

test("a TCP port is decided per connection; a source nothing lets in is refused with how to allow it", () => {
  const tcp = { ...access, httpPorts: [] };
  assert.deepEqual(explainInbound({ ...base, access: tcp }), {
    verdict: "allowed",
    trafficTarget: "server/web-allowed-status",
  });
  const stranger = { ...source, pod: "clients/x", serviceAccount: "clients/x", ip: "198.51.100.99" };
  const input = { ...base, source: stranger };
  const text = formatInboundExplanation(input, explainInbound(input));
  assert.match(
    text,
    /→ refused: no TrafficTarget lets service account clients\/x \(pod clients\/x, 198\.51\.100\.99\) in on port 8080/,
  );
  assert.match(
    text,
    /to allow it, create a TrafficTarget in namespace server with destination server\/web, source clients\/x/,
  );
  const unmeshed = explainInbound({ ...base, source: { ...source, meshed: false } });
  assert.equal(unmeshed.verdict, "refused");
  assert.deepEqual(explainInbound({ ...base, access: undefined }), { verdict: "permissive" });
});

test("the destination is the pod's own IP:PORT, or PORT alone", () => {
  const pod: V1Pod = {
    metadata: { namespace: "server", name: "web" },
    status: { podIP: "198.51.100.10", podIPs: [{ ip: "198.51.100.10" }, { ip: "2001:db8::a" }] },
  };
  assert.deepEqual(parseInboundDestination("8080", pod), { ip: "198.51.100.10", port: 8080, family: 4 });
  assert.deepEqual(parseInboundDestination("[2001:DB8::A]:80", pod), {
    ip: "2001:db8::a",
    port: 80,
    family: 6,
  });
  assert.throws(
    () => parseInboundDestination("203.0.113.1:80", pod),
    /203\.0\.113\.1 is not an address of pod server\/web/,
  );
  assert.throws(() => parseInboundDestination("80000", pod), /is not IP:PORT or PORT/);
});

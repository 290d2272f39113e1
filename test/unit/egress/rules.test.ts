import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  buildEgressTable,
  decideEgress,
  decideTls,
  hostMatches,
  rulesForHost,
} from "../../../src/egress/decide.ts";
import { egressPolicyFor } from "../../../src/egress/rules.ts";
import type { Egress } from "../../../src/egress/schema.ts";
import type { HttpRouteGroup } from "../../../src/smi/http-route-group.ts";

const egress = (name: string, spec: Partial<Egress["spec"]>, namespace = "curl"): Egress => ({
  apiVersion: "policy.openservicemesh.io/v1alpha1",
  kind: "Egress",
  metadata: { name, namespace },
  spec: { sources: [{ kind: "ServiceAccount", name: "curl", namespace: "curl" }], ports: [], ...spec },
});
const group: HttpRouteGroup = {
  apiVersion: "specs.smi-spec.io/v1alpha4",
  kind: "HTTPRouteGroup",
  metadata: { name: "httpbin-status", namespace: "curl" },
  spec: { matches: [{ name: "status", pathRegex: "/status.*" }] },
};
const curl = { namespace: "curl", name: "curl" };

describe("Egress rules per service account (the controller's half)", () => {
  test("only Egresses naming the pod's service account apply; none while egress is enabled", () => {
    const egresses = [
      egress("a", { ports: [{ number: 80, protocol: "tcp" }], ipAddresses: ["203.0.113.11/24"] }),
      {
        ...egress("b", { ports: [{ number: 80, protocol: "tcp" }] }),
        spec: {
          sources: [{ kind: "ServiceAccount" as const, name: "other", namespace: "curl" }],
          ports: [{ number: 80, protocol: "tcp" as const }],
        },
      },
    ];
    const policy = egressPolicyFor(curl, { enableEgress: false, egresses, httpRouteGroups: [] });
    assert.equal(policy?.serviceAccount, "curl/curl");
    assert.deepEqual(
      policy?.rules.map((r) => [r.egress, r.ipAddresses]),
      [["curl/a", ["203.0.113.0/24"]]],
    );
    assert.equal(egressPolicyFor(curl, { enableEgress: true, egresses, httpRouteGroups: [] }), undefined);
  });

  test("HTTPRouteGroup matches are resolved in the Egress's namespace; a missing group allows nothing and is named", () => {
    const refs = [
      { apiGroup: "specs.smi-spec.io/v1alpha4", kind: "HTTPRouteGroup", name: "httpbin-status" },
      { apiGroup: "specs.smi-spec.io/v1alpha4", kind: "HTTPRouteGroup", name: "gone" },
    ];
    const [rule] = egressPolicyFor(curl, {
      enableEgress: false,
      egresses: [
        egress("h", { hosts: ["HTTPbin.org"], ports: [{ number: 80, protocol: "http" }], matches: refs }),
      ],
      httpRouteGroups: [group],
    })!.rules;
    assert.deepEqual(rule?.hosts, ["httpbin.org"]);
    assert.deepEqual(rule?.httpMatches, [
      { name: "status", pathRegex: "/status.*", routeGroup: "curl/httpbin-status" },
    ]);
    assert.deepEqual(rule?.missingRouteGroups, ["curl/gone"]);
  });
});

describe("the sidecar's Egress decision", () => {
  const table = buildEgressTable({
    serviceAccount: "curl/curl",
    rules: [
      {
        egress: "curl/tcp",
        hosts: [],
        ipAddresses: ["203.0.113.10/32", "2001:db8::/32"],
        ports: [{ number: 80, protocol: "tcp" }],
      },
      {
        egress: "curl/tls",
        hosts: ["httpbin.org", "*.example.com"],
        ipAddresses: [],
        ports: [{ number: 443, protocol: "https" }],
      },
      {
        egress: "curl/web",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 8080, protocol: "http" }],
      },
    ],
  });

  test("tcp by range and port, IPv4 and IPv6, decided at accept", () => {
    assert.deepEqual(decideEgress(table, "203.0.113.10", 80), {
      kind: "allow",
      egress: "curl/tcp",
      protocol: "tcp",
    });
    assert.equal(decideEgress(table, "2001:db8::5", 80).kind, "allow");
    assert.deepEqual(decideEgress(table, "203.0.113.11", 80), {
      kind: "refuse",
      reason: "no Egress for service account curl allows 203.0.113.11:80",
    });
    assert.equal(decideEgress(table, "203.0.113.10", 81).kind, "refuse");
    assert.match(
      (decideEgress(table, "2001:db9::1", 80) as { reason: string }).reason,
      /\[2001:db9::1\]:80$/,
    );
  });

  test("https and http ports need the first bytes; SNI and Host decide", () => {
    const tls = decideEgress(table, "198.51.100.7", 443);
    assert.equal(tls.kind, "inspect");
    const rules = tls.kind === "inspect" ? tls.tls : [];
    const dst = { address: "198.51.100.7", port: 443 };
    assert.deepEqual(decideTls(table, rules, "httpbin.org", dst), { kind: "allow", egress: "curl/tls" });
    assert.equal(decideTls(table, rules, "a.b.example.com", dst).kind, "allow");
    assert.equal(decideTls(table, rules, "example.com", dst).kind, "refuse");
    assert.deepEqual(decideTls(table, rules, undefined, dst), {
      kind: "refuse",
      reason: "no Egress for service account curl allows TLS without a server name (SNI) to 198.51.100.7:443",
    });
    const http = decideEgress(table, "198.51.100.7", 8080);
    const httpRules = http.kind === "inspect" ? http.http : [];
    assert.equal(rulesForHost(httpRules, "httpbin.org", 8080).length, 1);
    assert.equal(rulesForHost(httpRules, "HTTPBIN.org:8080", 8080).length, 1);
    assert.equal(rulesForHost(httpRules, "httpbin.org:80", 8080).length, 0, "host:port must be this port");
    assert.equal(rulesForHost(httpRules, "evil.org", 8080).length, 0);
    assert.equal(rulesForHost(httpRules, undefined, 8080).length, 0);
  });

  test("host names: exact or *. wildcard over subdomains, case-insensitive", () => {
    assert.ok(hostMatches(["*.example.com"], "A.example.com"));
    assert.ok(!hostMatches(["*.example.com"], "example.com"));
    assert.ok(!hostMatches(["httpbin.org"], "xhttpbin.org"));
  });
});

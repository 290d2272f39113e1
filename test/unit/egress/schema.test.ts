import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, type ConfigIssue } from "../../../src/errors.ts";
import { createSmiValidationHandler } from "../../../src/kube/smi-webhook.ts";
import { smiCrds } from "../../../src/smi/crd.ts";
import { smiWarnings, validateSmiObject } from "../../../src/smi/validate.ts";

function egress(spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "policy.openservicemesh.io/v1alpha1",
    kind: "Egress",
    metadata: { name: "httpbin-80", namespace: "curl" },
    spec: {
      sources: [{ kind: "ServiceAccount", name: "curl", namespace: "curl" }],
      hosts: ["httpbin.org"],
      ports: [{ number: 80, protocol: "http" }],
      ...spec,
    },
  };
}

function issuesOf(input: unknown): ConfigIssue[] {
  try {
    validateSmiObject(input);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.issues];
  }
  assert.fail("expected a ConfigError");
}

const brief = (issues: ConfigIssue[]) =>
  issues.map((i) => `${i.path}: ${JSON.stringify(i.value)} ${i.reason}`);

describe("Egress validation (policy.openservicemesh.io/v1alpha1)", () => {
  test("OSM's egress e2e policies are valid: http by host, https by SNI, tcp by port, IPv4 and IPv6 ranges", () => {
    validateSmiObject(egress({}));
    validateSmiObject(egress({ ports: [{ number: 443, protocol: "https" }] }));
    validateSmiObject(egress({ hosts: undefined, ports: [{ number: 443, protocol: "tcp" }] }));
    validateSmiObject(
      egress({
        hosts: undefined,
        ipAddresses: ["203.0.113.0/24", "2001:db8::/32"],
        ports: [{ number: 80, protocol: "http" }],
      }),
    );
    validateSmiObject(
      egress({ hosts: ["*.example.com"], ports: [{ number: 5432, protocol: "tcp-server-first" }] }),
    );
  });

  test("the issue's bad objects: scheme, port 0, unknown protocol, bad CIDR, source kind, each named with its value", () => {
    const issues = issuesOf(
      egress({
        sources: [{ kind: "Group", name: "curl", namespace: "curl" }],
        hosts: ["https://httpbin.org/get"],
        ipAddresses: ["203.0.113.0/33"],
        ports: [
          { number: 0, protocol: "http" },
          { number: 443, protocol: "quic" },
        ],
      }),
    );
    assert.deepEqual(brief(issues), [
      'spec.sources[0].kind: "Group" must be "ServiceAccount"',
      'spec.hosts[0]: "https://httpbin.org/get" is not a host name: it has a scheme (https://)',
      "spec.ports[0].number: 0 is not a valid port: must be an integer from 1 to 65535",
      'spec.ports[1].protocol: "quic" is not one of "http", "https", "tcp", "tcp-server-first"',
      'spec.ipAddresses[0]: "203.0.113.0/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4',
    ]);
    assert.match(issues[1]?.hint ?? "", /write the host alone, e\.g\. "httpbin\.org"/);
  });

  test("hosts that are addresses or carry a port, and a bare address as a range, say what to write instead", () => {
    const issues = issuesOf(
      egress({ hosts: ["203.0.113.11", "httpbin.org:80"], ipAddresses: ["2001:db8::1"] }),
    );
    assert.deepEqual(
      issues.map((i) => [i.path, i.hint]),
      [
        ["spec.hosts[0]", "list addresses in ipAddresses as CIDRs, e.g. 203.0.113.11/32"],
        ["spec.hosts[1]", "write the host alone; ports go in ports[] (a Host header host:port matches too)"],
        ["spec.ipAddresses[0]", "a single address is 2001:db8::1/128"],
      ],
    );
  });

  test("matches follow OSM's webhook: HTTPRouteGroup of specs.smi-spec.io/v1alpha4, at most one UpstreamTrafficSetting", () => {
    const issues = issuesOf(
      egress({
        matches: [
          { apiGroup: "specs.smi-spec.io/v1alpha4", kind: "TCPRoute", name: "a" },
          { apiGroup: "specs.smi-spec.io", kind: "HTTPRouteGroup", name: "b" },
          { apiGroup: "policy.openservicemesh.io/v1alpha1", kind: "UpstreamTrafficSetting", name: "c" },
          { apiGroup: "policy.openservicemesh.io/v1alpha1", kind: "UpstreamTrafficSetting", name: "d" },
        ],
      }),
    );
    assert.deepEqual(
      issues.map((i) => i.path),
      ["spec.matches[0].kind", "spec.matches[1].apiGroup", "spec.matches[3]"],
    );
  });

  test("an http port with neither hosts nor ipAddresses, or route matches without an http port, are refused", () => {
    assert.deepEqual(
      issuesOf(egress({ hosts: [] })).map((i) => i.path),
      ["spec.ports[0].protocol"],
    );
    assert.deepEqual(
      issuesOf(
        egress({
          ports: [{ number: 443, protocol: "https" }],
          matches: [{ apiGroup: "specs.smi-spec.io/v1alpha4", kind: "HTTPRouteGroup", name: "s" }],
        }),
      ).map((i) => i.path),
      ["spec.matches[0]"],
    );
  });

  test("an UpstreamTrafficSetting reference is accepted and reported as not enforced (webhook warning)", async () => {
    const object = egress({
      matches: [
        { apiGroup: "policy.openservicemesh.io/v1alpha1", kind: "UpstreamTrafficSetting", name: "uts" },
      ],
    });
    assert.match(smiWarnings(validateSmiObject(object))[0] ?? "", /^upstream-traffic-setting-not-enforced: /);
    const decision = await createSmiValidationHandler()(
      {
        uid: "1",
        kind: { group: "policy.openservicemesh.io", version: "v1alpha1", kind: "Egress" },
        operation: "CREATE",
        namespace: "curl",
        object,
      },
      new AbortController().signal,
    );
    assert.equal(decision.allowed, true);
    assert.match(decision.allowed ? (decision.warnings?.[0] ?? "") : "", /not enforced by osm-ts/);
  });

  test("the webhook denies a bad Egress naming field and value", async () => {
    const decision = await createSmiValidationHandler()(
      {
        uid: "1",
        kind: { group: "policy.openservicemesh.io", version: "v1alpha1", kind: "Egress" },
        operation: "CREATE",
        namespace: "curl",
        object: egress({ hosts: ["http://httpbin.org"] }),
      },
      new AbortController().signal,
    );
    assert.equal(decision.allowed, false);
    assert.match(
      JSON.stringify(decision),
      /spec\.hosts\[0\]: Invalid value: \\"http:\/\/httpbin\.org\\": is not a host name/,
    );
  });

  test("the CRD is OSM's names with our schema: port bounds, protocol and source kind enums", () => {
    const crd = smiCrds().find(
      (c) => (c["metadata"] as { name: string }).name === "egresses.policy.openservicemesh.io",
    );
    const text = JSON.stringify(crd);
    assert.match(text, /"minimum":1,"maximum":65535/);
    assert.match(text, /"enum":\["http","https","tcp","tcp-server-first"\]/);
    assert.match(text, /"enum":\["ServiceAccount"\]/);
  });
});

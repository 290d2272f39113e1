import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ConfigError, type ConfigIssue } from "../../../src/errors.ts";
import { createSmiValidationHandler } from "../../../src/kube/smi-webhook.ts";
import { smiCrds, smiCrdsYaml } from "../../../src/smi/crd.ts";
import { validateSmiObject } from "../../../src/smi/validate.ts";

function trafficTarget(spec: Record<string, unknown>, namespace = "server"): Record<string, unknown> {
  return {
    apiVersion: "access.smi-spec.io/v1alpha3",
    kind: "TrafficTarget",
    metadata: { name: "allow", namespace },
    spec: {
      destination: { kind: "ServiceAccount", name: "server", namespace: "server" },
      rules: [{ kind: "TCPRoute", name: "tcp" }],
      sources: [{ kind: "ServiceAccount", name: "client", namespace: "client" }],
      ...spec,
    },
  };
}

function issuesOf(input: unknown, namespace?: string): ConfigIssue[] {
  try {
    validateSmiObject(input, namespace);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.issues];
  }
  assert.fail("expected a ConfigError");
}

describe("validateSmiObject", () => {
  test("accepts OSM's TrafficTarget and TCPRoute and returns them unchanged", () => {
    const tt = trafficTarget({});
    assert.deepEqual(validateSmiObject(tt), { kind: "TrafficTarget", object: tt });
    const route = {
      apiVersion: "specs.smi-spec.io/v1alpha4",
      kind: "TCPRoute",
      metadata: { name: "tcp", namespace: "server" },
      spec: { matches: { ports: [8080, 9090] } },
    };
    assert.deepEqual(validateSmiObject(route).object, route);
  });

  test("names every bad field with its value, at once", () => {
    const issues = issuesOf(
      trafficTarget({
        rules: [{ kind: "UDPRoute", name: "x" }],
        sources: [{ kind: "Group", name: "Client_1" }],
      }),
    );
    assert.deepEqual(
      issues.map((i) => [i.path, i.value]),
      [
        ["spec.rules[0].kind", "UDPRoute"],
        ["spec.sources[0].kind", "Group"],
        ["spec.sources[0].name", "Client_1"],
        ["spec.sources[0].namespace", undefined],
      ],
    );
    assert.match(issues[0]!.reason, /is not one of "HTTPRouteGroup", "TCPRoute"/);
    assert.match(issues[1]!.reason, /must be "ServiceAccount"/);
    assert.equal(issues[3]!.reason, "is required");
  });

  test("a TrafficTarget outside its destination's namespace is refused, as OSM's validator does", () => {
    const issues = issuesOf(trafficTarget({}, "client"));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, "spec.destination.namespace");
    assert.equal(issues[0]!.value, "server");
    assert.match(issues[0]!.reason, /must be the TrafficTarget's own namespace "client"/);
    // Without a namespace in metadata, the namespace it is created in decides (kubectl apply -n).
    const unplaced = trafficTarget({});
    delete (unplaced["metadata"] as Record<string, unknown>)["namespace"];
    assert.equal(issuesOf(unplaced, "default")[0]!.path, "spec.destination.namespace");
    assert.equal(validateSmiObject(unplaced, "server").kind, "TrafficTarget");
  });

  test("empty rules and sources are refused (OSM would ignore the object)", () => {
    const issues = issuesOf(trafficTarget({ rules: [], sources: [] }));
    assert.deepEqual(
      issues.map((i) => i.path),
      ["spec.rules", "spec.sources"],
    );
  });

  test("TCPRoute ports must be integers from 1 to 65535", () => {
    const issues = issuesOf({
      apiVersion: "specs.smi-spec.io/v1alpha4",
      kind: "TCPRoute",
      metadata: { name: "tcp" },
      spec: { matches: { ports: [0, 70000, "90", 1.5] } },
    });
    assert.deepEqual(
      issues.map((i) => [i.path, i.value]),
      [
        ["spec.matches.ports[0]", 0],
        ["spec.matches.ports[1]", 70000],
        ["spec.matches.ports[2]", "90"],
        ["spec.matches.ports[3]", 1.5],
      ],
    );
    assert.equal(issues[2]!.hint, "write 90 without quotes");
  });

  test("wrong apiVersion, unknown kind and unknown fields", () => {
    const wrongVersion = { ...trafficTarget({}), apiVersion: "access.smi-spec.io/v1alpha2" };
    assert.deepEqual(
      issuesOf(wrongVersion).map((i) => [i.path, i.hint]),
      [["apiVersion", "use apiVersion: access.smi-spec.io/v1alpha3"]],
    );
    assert.equal(issuesOf({ kind: "UDPRoute" })[0]!.path, "kind");
    const typo = trafficTarget({ source: [] });
    const issue = issuesOf(typo)[0]!;
    assert.equal(issue.path, "spec.source");
    assert.equal(issue.hint, "did you mean sources?");
  });
});

describe("the /validate-smi webhook", () => {
  const handler = createSmiValidationHandler();
  const request = (object: unknown, namespace: string) => ({
    uid: "u1",
    kind: { group: "access.smi-spec.io", version: "v1alpha3", kind: "TrafficTarget" },
    operation: "CREATE" as const,
    namespace,
    object,
  });

  test("denies with a 422 naming field and value, allows a valid object", async () => {
    const denied = await handler(
      request(trafficTarget({}, "client"), "client"),
      new AbortController().signal,
    );
    assert.equal(denied.allowed, false);
    assert.equal(denied.status?.code, 422);
    assert.match(
      denied.status?.message ?? "",
      /^TrafficTarget "allow" is invalid: spec.destination.namespace: Invalid value: "server": must be the TrafficTarget's own namespace "client"/,
    );
    const allowed = await handler(request(trafficTarget({}), "server"), new AbortController().signal);
    assert.equal(allowed.allowed, true);
  });
});

describe("deploy/crds/smi.yaml", () => {
  test("is up to date with the zod schemas (run: node scripts/generate-crds.ts)", () => {
    const file = new URL("../../../deploy/crds/smi.yaml", import.meta.url);
    assert.equal(readFileSync(file, "utf8"), smiCrdsYaml(), "deploy/crds/smi.yaml is stale");
  });

  test("OSM's names, groups, versions and short names", () => {
    const names = smiCrds().map((crd) => {
      const spec = crd["spec"] as {
        group: string;
        names: { shortNames: string[] };
        versions: { name: string }[];
      };
      return [(crd["metadata"] as { name: string }).name, spec.versions[0]!.name, spec.names.shortNames];
    });
    assert.deepEqual(names, [
      ["traffictargets.access.smi-spec.io", "v1alpha3", ["tt"]],
      ["tcproutes.specs.smi-spec.io", "v1alpha4", ["tr"]],
      ["httproutegroups.specs.smi-spec.io", "v1alpha4", ["htr"]],
      ["egresses.policy.openservicemesh.io", "v1alpha1", ["egress"]],
    ]);
  });
});

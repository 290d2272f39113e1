import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { parse } from "yaml";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const guide = new URL("../../../examples/guide/meshconfig.yaml", import.meta.url).pathname;

function run(args: string[]) {
  const r = spawnSync(osm, args, { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("osm policy show", () => {
  test("prints the guide's policy: egress disabled, 203.0.113.10/32 excluded, with provenance and the warning", () => {
    const r = run(["policy", "show", "-f", guide]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^egress +disabled +live/m);
    assert.match(
      r.stdout,
      /^ {2}IPv4 +203\.0\.113\.10\/32 +203\.0\.113\.10\/32 +MeshConfig spec\.traffic\.outboundIPRangeExclusionList$/m,
    );
    assert.match(
      r.stdout,
      /^None set: outbound IP range inclusions, outbound port exclusions, inbound port exclusions, network interface exclusions\.$/m,
    );
    assert.match(r.stdout, /Outbound TCP to 203\.0\.113\.10\/32 goes direct, bypassing the sidecar\./);
    assert.match(
      r.stdout,
      /All other outbound TCP goes through the sidecar, which refuses non-mesh destinations \(egress disabled\)\./,
    );
    assert.match(
      r.stdout,
      /\[egress-disabled-bypassed\] enableEgress is false, but traffic to 203\.0\.113\.10\/32/,
    );
  });

  test("-o json: the EffectiveTrafficPolicy plus its hash; pod annotations merged in OSM's order", () => {
    const r = run([
      "policy",
      "show",
      "-f",
      guide,
      "--annotation",
      "openservicemesh.io/outbound-ip-range-exclusion-list=203.0.113.11/32, 2001:db8::/32",
      "--annotation",
      "openservicemesh.io/outbound-port-exclusion-list=6379",
      "-o",
      "json",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.asGiven.outboundIPRangeExclusionList, [
      "203.0.113.11/32",
      "2001:db8::/32",
      "203.0.113.10/32",
    ]);
    assert.deepEqual(doc.asGiven.outboundPortExclusionList, [6379]);
    assert.equal(doc.enableEgress, false);
    assert.deepEqual(
      doc.canonical.outboundIPRangeExclusions.v4.map((e: { cidr: string }) => e.cidr),
      ["203.0.113.10/31"],
    );
    assert.deepEqual(doc.canonical.outboundIPRangeExclusions.v6[0].provenance, {
      source: "annotation",
      key: "openservicemesh.io/outbound-ip-range-exclusion-list",
    });
    assert.match(doc.policyHash, /^[0-9a-f]{64}$/);
  });

  test("-o yaml prints the same document as -o json", () => {
    const json = JSON.parse(run(["policy", "show", "-f", guide, "-o", "json"]).stdout);
    const yaml = parse(run(["policy", "show", "-f", guide, "-o", "yaml"]).stdout);
    assert.deepEqual(yaml, json);
  });

  test("an invalid annotation prints OSM's message on stderr and exits 1", () => {
    const r = run([
      "policy",
      "show",
      "-f",
      guide,
      "--annotation",
      "openservicemesh.io/outbound-ip-range-exclusion-list=10.0.0.0/33",
    ]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      "Error: Invalid IP range '10.0.0.0/33' specified for annotation 'openservicemesh.io/outbound-ip-range-exclusion-list'\n" +
        'hint: "10.0.0.0/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4; IPv4 prefix lengths go from 0 to 32; /32 is a single address\n',
    );
  });

  test("a malformed --annotation and an unknown -o are usage errors", () => {
    const bad = run(["policy", "show", "-f", guide, "--annotation", "novalue"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^Error: --annotation "novalue" is not of the form KEY=VALUE\n/);
    const output = run(["policy", "show", "-f", guide, "-o", "xml"]);
    assert.equal(output.status, 1);
    assert.match(output.stderr, /argument 'xml' is invalid\. Allowed choices are table, json, yaml/);
  });
});

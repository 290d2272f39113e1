import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const goldenDir = new URL("../../golden/interception/", import.meta.url);
const dir = mkdtempSync(join(tmpdir(), "osmt-ic-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function meshConfig(name: string, spec: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `apiVersion: config.openservicemesh.io/v1alpha2\nkind: MeshConfig\nmetadata:\n  name: osm-mesh-config\n  namespace: osm-system\nspec:\n${spec}`,
  );
  return file;
}

function run(args: string[]) {
  return spawnSync(osm, args, { encoding: "utf8" });
}

const OSM_CASES: Record<string, string> = {
  "osm-no-exclusions-or-inclusions": "  traffic: {}\n",
  "osm-with-exclusions-and-inclusions": `  traffic:
    outboundIPRangeExclusionList: ["1.1.1.1/32", "2.2.2.2/24"]
    outboundIPRangeInclusionList: ["3.3.3.3/32", "4.4.4.4/24"]
    outboundPortExclusionList: [10, 20]
    inboundPortExclusionList: [30, 40]
    networkInterfaceExclusionList: ["eth0", "eth1"]
`,
  "osm-proxy-mode-pod-ip": "  sidecar:\n    localProxyMode: PodIP\n",
};

describe("osm interception render", () => {
  for (const [name, spec] of Object.entries(OSM_CASES)) {
    it(`prints OSM's script for ${name} and nothing else`, () => {
      const r = run(["interception", "render", "-f", meshConfig(name, spec), "--backend", "iptables"]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, readFileSync(new URL(`${name}.restore`, goldenDir), "utf8"));
      assert.equal(r.stderr, "");
    });
  }

  it("merges pod annotations in OSM's order (pod IPs first) and renders IPv6 into ip6tables", () => {
    const file = meshConfig("merge", '  traffic:\n    outboundIPRangeExclusionList: ["203.0.113.10/32"]\n');
    const r = run([
      "interception",
      "render",
      "-f",
      file,
      "--annotation",
      "openservicemesh.io/outbound-ip-range-exclusion-list=203.0.113.11/32, 2001:db8::/64",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const v4 = r.stdout.split("ip6tables-restore")[0]!;
    assert.ok(v4.indexOf("-d 203.0.113.11/32") < v4.indexOf("-d 203.0.113.10/32"));
    assert.match(
      r.stdout,
      /ip6tables-restore --noflush <<EOF\n[\s\S]*-A OSM_PROXY_OUTBOUND -d 2001:db8::\/64 -j RETURN/,
    );
  });

  it("prints the nft ruleset with --backend nftables", () => {
    const r = run([
      "interception",
      "render",
      "-f",
      meshConfig("nft", "  traffic: {}\n"),
      "--backend",
      "nftables",
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(new URL("osm-no-exclusions-or-inclusions.nft", goldenDir), "utf8"));
  });

  it("rejects a bad annotation naming the key and the value, printing nothing on stdout", () => {
    const r = run([
      "interception",
      "render",
      "-f",
      meshConfig("bad", "  traffic: {}\n"),
      "--annotation",
      "openservicemesh.io/outbound-port-exclusion-list=6060,foobar",
    ]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /foobar/);
    assert.match(r.stderr, /openservicemesh\.io\/outbound-port-exclusion-list/);
  });
});

describe("osm explain", () => {
  const file = meshConfig(
    "explain",
    '  traffic:\n    enableEgress: false\n    outboundIPRangeExclusionList: ["203.0.113.10/32"]\n',
  );

  it("says an excluded address goes direct, with the deciding rule and the MeshConfig field", () => {
    const r = run(["explain", "-f", file, "203.0.113.10:80"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      "203.0.113.10:80 outbound (iptables): direct (not intercepted)\n" +
        "  deciding rule: -A OSM_PROXY_OUTBOUND -d 203.0.113.10/32 -j RETURN\n" +
        "  from: MeshConfig spec.traffic.outboundIPRangeExclusionList (entry 203.0.113.10/32)\n",
    );
  });

  it("says another address goes to the sidecar, which refuses it with egress disabled", () => {
    const r = run(["explain", "-f", file, "--backend", "nftables", "203.0.113.11:80"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /outbound sidecar \(redirected to 15001\)/);
    assert.match(r.stdout, /refuses non-mesh destinations \(egress disabled\)/);
  });

  it("names the pod annotation that excluded an IPv6 destination", () => {
    const r = run([
      "explain",
      "-f",
      file,
      "--annotation",
      "openservicemesh.io/outbound-ip-range-exclusion-list=2001:db8::/64",
      "-o",
      "json",
      "[2001:db8::5]:443",
    ]);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout) as { verdict: string; provenance: unknown[] };
    assert.equal(e.verdict, "direct");
    assert.deepEqual(e.provenance, [
      { source: "annotation", key: "openservicemesh.io/outbound-ip-range-exclusion-list" },
    ]);
  });

  it("rejects a destination without a port", () => {
    const r = run(["explain", "-f", file, "203.0.113.10"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /destination "203\.0\.113\.10" is not IP:PORT/);
  });
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const guide = new URL("../../../examples/guide/meshconfig.yaml", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "osmt-cfg-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], input?: string) {
  const r = spawnSync(osm, args, { encoding: "utf8", input, env: { PATH: "/usr/bin:/bin" } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("osm meshconfig validate", () => {
  test("the guide's MeshConfig is valid (exit 0), with the egress warning", () => {
    const r = run(["meshconfig", "validate", "-f", guide]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /meshconfig\.yaml: MeshConfig osm-system\/osm-mesh-config is valid \(config\.openservicemesh\.io\/v1alpha2\)\n/,
    );
    assert.match(
      r.stdout,
      /warning \[egress-disabled-bypassed\]: enableEgress is false, but traffic to 203\.0\.113\.10\/32/,
    );
  });

  test("reports exactly the three bad values of the issue's acceptance file and exits 1", () => {
    const path = file(
      "bad.yaml",
      [
        "apiVersion: config.openservicemesh.io/v1alpha2",
        "kind: MeshConfig",
        "metadata: {name: osm-mesh-config, namespace: osm-system}",
        "spec:",
        "  traffic:",
        "    outboundIPRangeExclusionList: [54.91.118.50/33, fd00::/8, 999.1.1.1/99]",
        "    outboundPortExclusionList: [70000]",
        "",
      ].join("\n"),
    );
    const r = run(["meshconfig", "validate", "-f", path]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      [
        `Error: ${path} is invalid (3 problems):`,
        '  spec.traffic.outboundIPRangeExclusionList[0]: "54.91.118.50/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4 (hint: IPv4 prefix lengths go from 0 to 32; /32 is a single address)',
        '  spec.traffic.outboundIPRangeExclusionList[2]: "999.1.1.1/99" is not a valid CIDR: IPv4 octet 999 exceeds 255 (hint: each IPv4 octet is 0 to 255)',
        "  spec.traffic.outboundPortExclusionList[0]: 70000 is not a valid port: must be an integer from 1 to 65535 (hint: TCP ports go up to 65535)",
        "",
      ].join("\n"),
    );
    assert.doesNotMatch(r.stderr, /fd00/);
  });

  test("reads JSON from stdin with -f -", () => {
    const r = run(
      ["meshconfig", "validate", "-f", "-"],
      JSON.stringify({ apiVersion: "config.openservicemesh.io/v1alpha2", kind: "MeshConfig", spec: {} }),
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "<stdin>: MeshConfig is valid (config.openservicemesh.io/v1alpha2)\n");
  });

  test("checks every document of a multi-document file and names the failing ones", () => {
    const path = file(
      "multi.yaml",
      [
        "apiVersion: config.openservicemesh.io/v1alpha2",
        "kind: MeshConfig",
        "metadata: {name: good}",
        "---",
        "apiVersion: config.openservicemesh.io/v1alpha2",
        "kind: MeshConfig",
        "metadata: {name: bad}",
        "spec: {sidecar: {localProxyMode: podip}}",
        "",
      ].join("\n"),
    );
    const r = run(["meshconfig", "validate", "-f", path]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `Error: ${path} is invalid (1 problem):\n  document 2, MeshConfig bad:\n    spec.sidecar.localProxyMode: "podip" is not one of "Localhost", "PodIP" (hint: did you mean "PodIP"?)\n`,
    );
  });

  test("a List as printed by kubectl get -o yaml is checked item by item", () => {
    const path = file(
      "list.yaml",
      [
        "apiVersion: v1",
        "kind: List",
        "items:",
        "- {apiVersion: config.openservicemesh.io/v1alpha2, kind: MeshConfig, metadata: {name: a}}",
        "- {apiVersion: config.openservicemesh.io/v1alpha2, kind: MeshConfig, metadata: {name: b}}",
        "",
      ].join("\n"),
    );
    const r = run(["meshconfig", "validate", "-f", path]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      `${path}: document 1, MeshConfig a is valid (config.openservicemesh.io/v1alpha2)\n${path}: document 2, MeshConfig b is valid (config.openservicemesh.io/v1alpha2)\n`,
    );
  });

  test("v1alpha1 is accepted with kubectl's deprecation warning", () => {
    const path = file("v1.yaml", "apiVersion: config.openservicemesh.io/v1alpha1\nkind: MeshConfig\n");
    const r = run(["meshconfig", "validate", "-f", path]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stderr,
      "Warning: config.openservicemesh.io/v1alpha1 MeshConfig is deprecated; use config.openservicemesh.io/v1alpha2 MeshConfig\n",
    );
    assert.match(r.stdout, /is valid \(config\.openservicemesh\.io\/v1alpha2\)/);
  });

  test("malformed YAML names the file, line and column", () => {
    const path = file("broken.yaml", "kind: MeshConfig\nkind: MeshConfig\n");
    const r = run(["meshconfig", "validate", "-f", path]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `Error: ${path} is invalid (1 problem):\n  ${path}:2:1: "kind: MeshConfig" is not valid YAML: Map keys must be unique (hint: each key may appear once per mapping)\n`,
    );
  });

  test("a missing file and a missing -f are clear errors", () => {
    const missing = run(["meshconfig", "validate", "-f", join(dir, "nope.yaml")]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `Error: cannot read ${join(dir, "nope.yaml")}: no such file\n`);
    const noFlag = run(["meshconfig", "validate"]);
    assert.equal(noFlag.status, 1);
    assert.match(noFlag.stderr, /required option '-f, --filename <file>' not specified/);
  });
});

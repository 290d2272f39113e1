import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { test } from "node:test";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;

test("osm version prints the version and runs on Node.js 24 whatever node is on PATH", () => {
  const out = execFileSync(osm, ["version", "-o", "json"], {
    env: { PATH: "/usr/bin:/bin" },
    encoding: "utf8",
  });
  const info = JSON.parse(out) as { version: string; node: string };
  assert.match(info.version, /^\d+\.\d+\.\d+/);
  assert.match(info.node, /^v24\./);
});

test("osm with an unknown command fails with a suggestion-style error and exit 1", () => {
  const result = spawnSync(osm, ["nope"], { encoding: "utf8" });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /unknown command 'nope'/);
});

test("osm demo with a mistyped demo name fails naming it and the demos, before it touches anything", () => {
  const result = spawnSync(osm, ["demo", "egres-policy"], { encoding: "utf8" });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /unknown demo "egres-policy"/);
  assert.match(result.stderr, /osm demo egress-policy/);
});

test("osm --help lists the version command", () => {
  const out = execFileSync(osm, ["--help"], { encoding: "utf8" });
  assert.match(out, /version/);
});

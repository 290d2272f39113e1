import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { parseListen, parseLogLevel } from "../../../src/cli/commands/controller.ts";
import { isMeshError } from "../../../src/errors.ts";

test("--listen accepts host:port, [v6]:port and :port (all interfaces)", () => {
  assert.deepEqual(parseListen("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListen("[::1]:15128"), { host: "::1", port: 15128 });
  assert.deepEqual(parseListen(":15128"), { host: "0.0.0.0", port: 15128 });
});

test("--listen without a port or with a port above 65535 is an invalid argument naming the flag", () => {
  for (const bad of ["127.0.0.1", "127.0.0.1:70000", "a:b", "::1:80"]) {
    assert.throws(
      () => parseListen(bad),
      (error: unknown) =>
        isMeshError(error) && error.message.includes("--listen") && error.message.includes(bad),
      bad,
    );
  }
});

test("osm controller run --help lists its flags", () => {
  const osm = new URL("../../../bin/osm", import.meta.url).pathname;
  const out = execFileSync(osm, ["controller", "run", "--help"], { encoding: "utf8" });
  for (const flag of ["--kubeconfig", "--osm-namespace", "--mesh-name", "--listen"])
    assert.match(out, new RegExp(flag));
});

test("--log-level takes pino's levels and OSM's osmLogLevel names, and rejects others naming the flag", () => {
  assert.equal(parseLogLevel("info"), "info");
  assert.equal(parseLogLevel("Warning"), "warn");
  assert.equal(parseLogLevel("panic"), "fatal");
  assert.equal(parseLogLevel("disabled"), "silent");
  assert.throws(
    () => parseLogLevel("loud"),
    (error: unknown) =>
      isMeshError(error) && error.message.includes("--log-level") && error.message.includes("loud"),
  );
});

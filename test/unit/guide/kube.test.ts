import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;

test("without any kubeconfig the commands say so instead of failing on localhost:8080", async () => {
  const home = mkdtempSync(join(tmpdir(), "osmt-gd-home-"));
  try {
    const error = await promisify(execFile)(osm, ["namespace", "list"], {
      env: { PATH: "/usr/bin:/bin", HOME: home },
    }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(error?.code, 1);
    assert.equal(
      error?.stderr,
      "Error: no kubeconfig found: $KUBECONFIG is not set, ~/.kube/config does not exist and this is not a pod\n" +
        "hint: run `osm mesh up` (it writes a kubeconfig context), or pass --kubeconfig\n",
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("a kubeconfig file that does not exist is named in the error", async () => {
  const error = await promisify(execFile)(osm, ["proxy", "status", "--kubeconfig", "/nonexistent/osmt-gd"], {
    env: { PATH: "/usr/bin:/bin" },
  }).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(error?.code, 1);
  assert.match(error?.stderr ?? "", /^Error: Error fetching kubeconfig: ENOENT: .*'\/nonexistent\/osmt-gd'/);
});

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { claimBridge, otherOwner, releaseBridge } from "../../../src/local/daemon/bridge-claim.ts";

describe("one daemon per bridge", () => {
  test("a live daemon's claim refuses another state directory; a dead one's or its own does not", () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-claim-"));
    try {
      claimBridge("osm0", "/var/lib/a", process.pid, dir);
      assert.throws(() => claimBridge("osm0", "/var/lib/b", 1, dir), {
        code: "OSM_ERR_CONFLICT",
        message: `bridge osm0 is in use by the osm-local daemon of /var/lib/a (pid ${process.pid})`,
      });
      assert.doesNotThrow(() => claimBridge("osm0", "/var/lib/a/", process.pid, dir));
      assert.doesNotThrow(() => claimBridge("other0", "/var/lib/b", process.pid, dir));
      releaseBridge("osm0", "/var/lib/b", dir);
      assert.equal(otherOwner("osm0", "/var/lib/b", dir)?.stateDir, "/var/lib/a");
      releaseBridge("osm0", "/var/lib/a", dir);
      assert.equal(otherOwner("osm0", "/var/lib/b", dir), undefined);
      // A claim by a pid that no longer runs is stale.
      claimBridge("osm1", "/var/lib/a", 2 ** 22 + 1, dir);
      assert.doesNotThrow(() => claimBridge("osm1", "/var/lib/b", process.pid, dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

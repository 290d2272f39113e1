import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { HISTORY_FRESH_MS, WatchHub } from "../../../src/local/apiserver/watch.ts";
import { type KubeObject, Store } from "../../../src/local/store/store.ts";

const all = { groupResource: "/configmaps", namespace: undefined, matches: () => true };

describe("the watch history", () => {
  it("keeps no event older than the freshness window, and answers a watch from before it with 410", () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-api-watch-"));
    const store = Store.open({ dir, logger: pino({ level: "silent" }) });
    let now = 1_000_000;
    const hub = new WatchHub(store, 5000, () => now);
    try {
      const put = (name: string) =>
        store.put("/configmaps", "default", { metadata: { name } } as unknown as KubeObject);
      const first = put("a").metadata.resourceVersion;
      put("b");
      now += HISTORY_FRESH_MS + 1;
      const third = put("c").metadata.resourceVersion;
      // a and b left the history with c's arrival: a watch after a misses b → 410; after b sees c only.
      assert.throws(() => hub.watch(all, Number(first), () => undefined), /too old resource version/);
      const seen: string[] = [];
      const stop = hub.watch(all, Number(third) - 1, (e) => seen.push(`${e.type} ${e.object.metadata.name}`));
      stop();
      assert.deepEqual(seen, ["ADDED c"]);
    } finally {
      hub.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

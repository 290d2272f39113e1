import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import pino from "pino";
import { Api } from "../../../src/local/apiserver/api.ts";
import { ResourceRegistry } from "../../../src/local/apiserver/resources.ts";
import { startEventTtl } from "../../../src/local/controllers/event-ttl.ts";
import { type KubeObject, Store } from "../../../src/local/store/store.ts";

it("removes events older than the TTL and keeps recent ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), "osmt-api-ttl-"));
  const logger = pino({ level: "silent" });
  const store = Store.open({ dir, logger });
  try {
    const api = new Api(store, new ResourceRegistry(), logger, () => new Set());
    const event = (name: string, at: number): KubeObject => ({
      metadata: { name, namespace: "default" },
      lastTimestamp: new Date(at).toISOString(),
    });
    store.put("/events", "default", event("old", Date.now() - 2 * 3600_000));
    store.put("/events", "default", event("new", Date.now()));
    const stop = startEventTtl(api, logger, () => Date.now(), 3600_000, 20);
    await new Promise((r) => setTimeout(r, 100));
    stop();
    assert.deepEqual(
      store.list("/events").map((e) => e.metadata.name),
      ["new"],
    );
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSidecarConfig } from "../../../src/config/sidecar-api.ts";
import { ConfigStore } from "../../../src/sidecar/config-store.ts";

function config(version: number, enableEgress: boolean) {
  const parsed = parseSidecarConfig({ apiVersion: "osm.sidecar/v1", version, enableEgress });
  assert.ok(parsed.ok);
  return parsed.config;
}

test("the store starts empty, applies a first config and tells its subscribers", () => {
  const store = new ConfigStore();
  const seen: number[] = [];
  store.subscribe((table) => seen.push(table.config.version));
  assert.equal(store.table, undefined);
  assert.deepEqual(store.apply(config(4, true), "test"), { applied: true, previousVersion: undefined });
  assert.equal(store.version, 4);
  assert.deepEqual(seen, [4]);
});

test("a config whose version is not newer is ignored, so the store never rolls back", () => {
  const store = new ConfigStore();
  store.apply(config(5, true), "test");
  const stale = store.apply(config(5, false), "test");
  assert.equal(stale.applied, false);
  assert.equal(store.apply(config(2, false), "test").applied, false);
  assert.equal(store.table?.config.enableEgress, true);
  assert.deepEqual(store.apply(config(6, false), "test"), { applied: true, previousVersion: 5 });
  assert.equal(store.table?.config.enableEgress, false);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { SIDECAR_API_VERSION } from "../../../src/config/sidecar-api.ts";
import { ConfigHub, type SidecarConfigContent } from "../../../src/controller/config-hub.ts";

const content = (enableEgress: boolean): SidecarConfigContent => ({
  enableEgress,
  maxDataPlaneConnections: 0,
  meshEndpoints: [],
});

test("setting new content issues a newer version and equal content issues none", () => {
  let now = 1000;
  const hub = new ConfigHub({ now: () => now });
  assert.equal(hub.set("ns/a", content(true)), true);
  const first = hub.get("ns/a");
  assert.equal(first?.apiVersion, SIDECAR_API_VERSION);
  assert.equal(first?.version, 1000);
  assert.equal(hub.set("ns/a", content(true)), false);
  assert.equal(hub.get("ns/a")?.version, 1000);
  now = 1000; // the clock did not move: the version still increases
  hub.set("ns/a", content(false));
  assert.equal(hub.get("ns/a")?.version, 1001);
});

test("a new hub started later issues versions above an earlier hub's (restart keeps versions monotonic)", () => {
  let now = 5000;
  const before = new ConfigHub({ now: () => now });
  for (let i = 0; i < 50; i++) before.set("ns/a", content(i % 2 === 0));
  const lastBefore = before.get("ns/a")?.version ?? 0;
  now += 100;
  const after = new ConfigHub({ now: () => now });
  after.set("ns/a", content(true));
  assert.ok((after.get("ns/a")?.version ?? 0) > lastBefore);
});

test("a wait returns at once when the version is already newer than sinceVersion", async () => {
  const hub = new ConfigHub({ now: () => 10 });
  hub.set("ns/a", content(true));
  const config = await hub.wait("ns/a", 9, 10_000);
  assert.equal(config?.version, 10);
  assert.equal(hub.waiting, 0);
});

test("a waiting long-poll is woken by a change and another times out with nothing", async () => {
  const hub = new ConfigHub({ now: () => 10 });
  hub.set("ns/a", content(true));
  const woken = hub.wait("ns/a", 10, 10_000);
  const timedOut = hub.wait("ns/b", 0, 20);
  assert.equal(hub.waiting, 2);
  hub.set("ns/a", content(false));
  assert.equal((await woken)?.enableEgress, false);
  assert.equal(await timedOut, undefined);
  assert.equal(hub.waiting, 0);
});

test("deleting a pod, aborting, or closing the hub ends its long-polls with nothing", async () => {
  const hub = new ConfigHub();
  hub.set("ns/a", content(true));
  const version = hub.get("ns/a")?.version ?? 0;
  const deleted = hub.wait("ns/a", version, 10_000);
  hub.delete("ns/a");
  assert.equal(await deleted, undefined);
  assert.equal(hub.get("ns/a"), undefined);

  const abort = new AbortController();
  const aborted = hub.wait("ns/b", 0, 10_000, abort.signal);
  abort.abort();
  assert.equal(await aborted, undefined);

  const closed = hub.wait("ns/c", 0, 10_000);
  hub.close();
  assert.equal(await closed, undefined);
  assert.equal(hub.waiting, 0);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { createClusterIpAllocator } from "../../../src/local/apiserver/cluster-ip.ts";

test("a ClusterIP is never one in use nor one of the host's own addresses or gateways", () => {
  const allocator = createClusterIpAllocator(() => new Set(["192.0.2.1", "192.0.2.2"]));
  assert.equal(allocator.allocate(new Set(["192.0.2.3"])), "192.0.2.4");
});

test("a full range is a 500 that says so", () => {
  const allocator = createClusterIpAllocator(() => new Set());
  const used = new Set(Array.from({ length: 254 }, (_, i) => `192.0.2.${i + 1}`));
  assert.throws(() => allocator.allocate(used), /failed to allocate a serviceIP: range is full/);
});

test("on the re-check an allocated IP taken meanwhile is re-allocated, a requested one is refused", () => {
  const allocator = createClusterIpAllocator(() => new Set());
  const used = new Set(["192.0.2.1"]);
  const allocated = { metadata: { name: "a" }, spec: { clusterIP: "192.0.2.1" } };
  allocator.recheck(allocated, undefined, used);
  assert.deepEqual(allocated.spec, { clusterIP: "192.0.2.2", clusterIPs: ["192.0.2.2"] });
  const requested = { metadata: { name: "b" }, spec: { clusterIP: "192.0.2.1" } };
  assert.throws(
    () => allocator.recheck(requested, "192.0.2.1", used),
    /failed to allocate IP 192\.0\.2\.1: provided IP is already allocated/,
  );
});

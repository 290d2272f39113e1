import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openIpam } from "../../../src/local/node/ipam.ts";
import { buildNetworkPlan, DEFAULT_NETWORK } from "../../../src/local/node/network-config.ts";

describe("the network plan", () => {
  test("the daemon's plan: host .1 and ::1 on osm0, slot N is .N and ::n, named osm-pod-N", () => {
    const plan = buildNetworkPlan(DEFAULT_NETWORK);
    assert.equal(plan.gateway4, "198.51.100.1");
    assert.equal(plan.gateway6, "2001:db8:1::1");
    assert.equal(plan.address4(17), "198.51.100.17");
    assert.equal(plan.address6(17), "2001:db8:1::11");
    assert.equal(plan.sandboxName(17), "osm-pod-17");
    assert.equal(plan.slotOfName("osm-pod-17"), 17);
    assert.equal(plan.slotOfName("osm-pod-200"), undefined);
    assert.equal(plan.slotOfName("other-17"), undefined);
  });

  test("invalid plans are rejected naming the field and value", () => {
    assert.throws(
      () => buildNetworkPlan({ ...DEFAULT_NETWORK, subnet4: "2001:db8::/64" }),
      /subnet4: "2001:db8::\/64" is not an IPv4 CIDR/,
    );
    assert.throws(
      () => buildNetworkPlan({ ...DEFAULT_NETWORK, lastSlot: 300 }),
      /slots: \[2,300\] do not fit inside 198\.51\.100\.0\/24/,
    );
    assert.throws(
      () => buildNetworkPlan({ ...DEFAULT_NETWORK, namePrefix: "a-very-long-prefix-" }),
      /namePrefix: .* too long/,
    );
    assert.throws(
      () => buildNetworkPlan({ ...DEFAULT_NETWORK, gatewayOffset: 5 }),
      /gatewayOffset: 5 lies inside the pod slots/,
    );
    assert.throws(
      () => buildNetworkPlan({ ...DEFAULT_NETWORK, bridge: "bad name" }),
      /bridge: "bad name" is not a valid interface name/,
    );
  });
});

describe("the IPAM table", () => {
  test("allocates per owner, is idempotent, persists, does not reuse a freed slot at once, and reports exhaustion", () => {
    const dir = mkdtempSync(join(tmpdir(), "osmt-ipam-"));
    try {
      const file = join(dir, "ipam.json");
      const ipam = openIpam(file, 2, 4);
      assert.equal(ipam.allocate({ owner: "a", label: "ns/a" }), 2);
      assert.equal(ipam.allocate({ owner: "a", label: "ns/a" }), 2);
      assert.equal(ipam.allocate({ owner: "b", label: "ns/b" }), 3);
      ipam.release("a");
      assert.equal(ipam.allocate({ owner: "c", label: "ns/c" }), 4);
      assert.equal(ipam.allocate({ owner: "d", label: "ns/d" }), 2);
      assert.throws(
        () => ipam.allocate({ owner: "e", label: "ns/e" }),
        /no free pod address: all 3 slots are in use/,
      );
      const reopened = openIpam(file, 2, 4);
      assert.equal(reopened.slotOf("b"), 3);
      assert.equal(reopened.slotOf("d"), 2);
      assert.equal(reopened.slotOf("a"), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

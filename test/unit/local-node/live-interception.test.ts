import assert from "node:assert/strict";
import { test } from "node:test";
import {
  liveRetryDelayMs,
  liveUpdatesOn,
  policyInputsKey,
} from "../../../src/local/node/live-interception.ts";

test('the opt-in is the exact annotation value "true" on the MeshConfig', () => {
  const mc = (annotations?: Record<string, string>) => ({
    metadata: { name: "osm-mesh-config", annotations },
  });
  assert.equal(liveUpdatesOn(mc({ "osm-ts.io/live-interception-updates": "true" })), true);
  assert.equal(liveUpdatesOn(mc({ "osm-ts.io/live-interception-updates": "True" })), false);
  assert.equal(liveUpdatesOn(mc()), false);
});

test("retries back off from 1 s, doubling, capped at 30 s", () => {
  assert.deepEqual([1, 2, 3, 5, 6, 20].map(liveRetryDelayMs), [1000, 2000, 4000, 16_000, 30_000, 30_000]);
});

test("pods share a policy unless their OSM annotations differ", () => {
  const exclusion = { "openservicemesh.io/outbound-ip-range-exclusion-list": "203.0.113.10/32" };
  const a = policyInputsKey(
    { "kubectl.kubernetes.io/restartedAt": "1", "osm-ts.io/interception-policy-hash": "x" },
    {},
  );
  const b = policyInputsKey({ "kubectl.kubernetes.io/restartedAt": "2" }, {});
  assert.equal(a, b);
  assert.notEqual(policyInputsKey(exclusion, {}), a);
  assert.notEqual(policyInputsKey({}, exclusion), a);
});

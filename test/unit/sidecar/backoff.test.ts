import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { backoffDelay, DEFAULT_BACKOFF } from "../../../src/sidecar/backoff.ts";

test("backoff delays stay between half the base and the cap, for any attempt and any random draw", () => {
  fc.assert(
    fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
      const delay = backoffDelay(attempt, DEFAULT_BACKOFF, () => r);
      assert.ok(delay >= DEFAULT_BACKOFF.baseMs / 2, `${delay}`);
      assert.ok(delay <= DEFAULT_BACKOFF.maxMs, `${delay}`);
    }),
  );
});

test("the backoff cap doubles per attempt until the maximum", () => {
  const top = (attempt: number) => backoffDelay(attempt, { baseMs: 100, maxMs: 1000 }, () => 0.999999);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map(top), [100, 200, 400, 800, 1000, 1000]);
});

test("backoff is jittered: different random draws give different delays for the same attempt", () => {
  const policy = { baseMs: 100, maxMs: 10_000 };
  assert.notEqual(
    backoffDelay(5, policy, () => 0.1),
    backoffDelay(5, policy, () => 0.9),
  );
});

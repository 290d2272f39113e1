import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  applyJsonPatch,
  applyMergePatch,
  mergePatch,
  validateMeshConfig,
} from "../../../src/config/index.ts";
import { traffic } from "./bad-input-cases.ts";

describe("mergePatch follows RFC 7386 (Appendix A examples)", () => {
  const cases: [target: unknown, patch: unknown, result: unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [
      ["a", "b"],
      ["c", "d"],
      ["c", "d"],
    ],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    test(`${JSON.stringify(target)} + ${JSON.stringify(patch)} = ${JSON.stringify(result)}`, () => {
      const before = structuredClone(target);
      assert.deepEqual(mergePatch(target, patch), result);
      assert.deepEqual(target, before);
    });
  }
});

describe("applyMergePatch and applyJsonPatch return a new validated MeshConfig", () => {
  const stored = validateMeshConfig(traffic({ enableEgress: false }));
  test("the guide's patch (kubectl patch --type=merge) adds the exclusion, keeping other fields", () => {
    const before = structuredClone(stored);
    const patched = applyMergePatch(stored, {
      spec: { traffic: { outboundIPRangeExclusionList: ["203.0.113.10/32"] } },
    });
    assert.deepEqual(patched.spec.traffic.outboundIPRangeExclusionList, ["203.0.113.10/32"]);
    assert.equal(patched.spec.traffic.enableEgress, false);
    assert.deepEqual(stored, before);
  });
  test("null in a merge patch resets a field to its default", () => {
    assert.equal(
      applyMergePatch(stored, { spec: { traffic: { enableEgress: null } } }).spec.traffic.enableEgress,
      true,
    );
  });
  test("JSON patch: add, replace, remove, copy, move and a passing test", () => {
    const patched = applyJsonPatch(stored, [
      { op: "test", path: "/spec/traffic/enableEgress", value: false },
      { op: "add", path: "/spec/traffic/outboundIPRangeExclusionList/-", value: "203.0.113.10/32" },
      { op: "add", path: "/spec/traffic/outboundIPRangeExclusionList/0", value: "2001:db8::/32" },
      { op: "replace", path: "/spec/traffic/enableEgress", value: true },
      {
        op: "copy",
        from: "/spec/traffic/outboundIPRangeExclusionList",
        path: "/spec/traffic/outboundIPRangeInclusionList",
      },
      { op: "remove", path: "/spec/traffic/outboundIPRangeInclusionList/1" },
      {
        op: "move",
        from: "/spec/traffic/inboundPortExclusionList",
        path: "/spec/traffic/outboundPortExclusionList",
      },
    ]);
    assert.deepEqual(patched.spec.traffic.outboundIPRangeExclusionList, ["2001:db8::/32", "203.0.113.10/32"]);
    assert.deepEqual(patched.spec.traffic.outboundIPRangeInclusionList, ["2001:db8::/32"]);
    assert.equal(patched.spec.traffic.enableEgress, true);
    assert.deepEqual(patched.spec.traffic.inboundPortExclusionList, []); // moved away, then defaulted
    assert.equal(stored.spec.traffic.enableEgress, false);
    assert.deepEqual(stored.spec.traffic.outboundIPRangeExclusionList, []);
  });
});

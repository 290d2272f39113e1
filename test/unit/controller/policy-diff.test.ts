import assert from "node:assert/strict";
import { test } from "node:test";
import {
  diffPolicyText,
  formatPolicyDiff,
  isEmptyDiff,
  policyEntries,
} from "../../../src/controller/policy-diff.ts";

test("identical texts have an empty diff", () => {
  const text = "exclude 10.0.0.0/8\nexclude 203.0.113.10/32\n";
  const diff = diffPolicyText(text, text);
  assert.ok(isEmptyDiff(diff));
  assert.deepEqual(formatPolicyDiff(diff), []);
});

test("an entry only in the current text is an addition and one only in the recorded text a removal", () => {
  const diff = diffPolicyText("10.0.0.0/8\n", "203.0.113.10/32\n");
  assert.deepEqual(diff, { added: ["203.0.113.10/32"], removed: ["10.0.0.0/8"] });
  assert.deepEqual(formatPolicyDiff(diff), ["-10.0.0.0/8", "+203.0.113.10/32"]);
});

test("blank lines, surrounding spaces, CRLF and repeated lines do not count as differences", () => {
  const diff = diffPolicyText("a\r\n\n  b  \nb\n", "b\na\n");
  assert.ok(isEmptyDiff(diff));
  assert.deepEqual(policyEntries(" x \n\nx\ny"), ["x", "y"]);
});

test("the order of entries does not matter, and each side keeps its own order in the diff", () => {
  const diff = diffPolicyText("c\nb\na\n", "a\nd\nc\ne\n");
  assert.deepEqual(diff, { added: ["d", "e"], removed: ["b"] });
});

test("a display function rewrites entries in the formatted diff", () => {
  const diff = diffPolicyText("", "outbound-ip-range-exclusion 203.0.113.10/32");
  assert.deepEqual(
    formatPolicyDiff(diff, (e) => e.split(" ").at(-1) ?? e),
    ["+203.0.113.10/32"],
  );
});

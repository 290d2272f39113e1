import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { effectiveCapabilities } from "../../../src/injector/capabilities.ts";

describe("capabilities", () => {
  test("the default set, plus add, minus drop", () => {
    const caps = effectiveCapabilities({
      name: "c",
      securityContext: { capabilities: { add: ["NET_ADMIN"], drop: ["NET_RAW"] } },
    });
    assert.ok(Array.isArray(caps));
    assert.ok(caps.includes("NET_ADMIN"));
    assert.ok(!caps.includes("NET_RAW"));
    assert.ok(caps.includes("CHOWN"));
  });
  test("drop ALL keeps only what is added; privileged keeps everything", () => {
    assert.deepEqual(
      effectiveCapabilities({
        name: "c",
        securityContext: { capabilities: { drop: ["ALL"], add: ["CAP_NET_ADMIN"] } },
      }),
      ["NET_ADMIN"],
    );
    assert.equal(effectiveCapabilities({ name: "c", securityContext: { privileged: true } }), "all");
  });
});

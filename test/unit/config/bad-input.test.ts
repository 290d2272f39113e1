import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  parseAnnotationFlags,
  parseMeshConfigDocuments,
  parsePodAnnotations,
  validateMeshConfig,
} from "../../../src/config/index.ts";
import { ConfigError, ErrorCode, MeshError } from "../../../src/errors.ts";
import { annotationCases, objectCases, yamlCases } from "./bad-input-cases.ts";

/** Runs `fn`, expecting it to throw; returns the error. Also checks that `input` did not change. */
function rejects(fn: () => unknown, input: unknown): unknown {
  const before = structuredClone(input);
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, "expected an error");
  assert.deepEqual(input, before, "the input was changed");
  return caught;
}

function assertConfigError(error: unknown, lines: readonly string[]): void {
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  assert.equal(error.code, ErrorCode.InvalidConfig);
  assert.equal(error.message, lines.join("\n"));
  assert.equal(error.issues.length, lines.length);
}

describe("validateMeshConfig rejects bad MeshConfigs with the exact message, leaving the input unchanged", () => {
  for (const c of objectCases) {
    test(c.name, () => {
      assertConfigError(
        rejects(() => validateMeshConfig(c.input), c.input),
        c.lines,
      );
    });
  }
});

describe("parseMeshConfigDocuments rejects malformed YAML naming line and column", () => {
  for (const c of yamlCases) {
    test(c.name, () => {
      assertConfigError(
        rejects(() => parseMeshConfigDocuments(c.text), c.text),
        c.lines,
      );
    });
  }
});

describe("annotations are rejected with OSM's text, then our hint", () => {
  for (const c of annotationCases) {
    test(c.name, () => {
      const error = rejects(() => parsePodAnnotations(c.annotations), c.annotations);
      assert.ok(error instanceof MeshError);
      assert.equal(error.code, ErrorCode.InvalidAnnotation);
      assert.equal(error.message, c.message);
      assert.equal(error.hint, c.hint);
    });
  }
  test("an --annotation flag without '=' is a clear usage error", () => {
    const flags = ["openservicemesh.io/outbound-port-exclusion-list"];
    const error = rejects(() => parseAnnotationFlags(flags), flags);
    assert.ok(error instanceof MeshError);
    assert.equal(error.code, ErrorCode.InvalidArgument);
    assert.equal(
      error.message,
      '--annotation "openservicemesh.io/outbound-port-exclusion-list" is not of the form KEY=VALUE',
    );
  });
  test("an --annotation flag with an invalid key is a clear usage error", () => {
    const flags = ["bad key=1"];
    const error = rejects(() => parseAnnotationFlags(flags), flags);
    assert.ok(error instanceof MeshError);
    assert.equal(error.message, '--annotation key "bad key" is not a valid annotation key');
  });
});

test("the bad-input table has at least 50 cases", () => {
  assert.ok(objectCases.length + yamlCases.length + annotationCases.length >= 50);
});

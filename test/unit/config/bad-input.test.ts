import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  applyJsonPatch,
  applyMergePatch,
  parseAnnotationFlags,
  parseMeshConfigDocuments,
  parsePodAnnotations,
  validateMeshConfig,
} from "../../../src/config/index.ts";
import { ConfigError, ErrorCode, MeshError } from "../../../src/errors.ts";
import { annotationCases, meshConfig, objectCases, yamlCases } from "./bad-input-cases.ts";

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

describe("patches: an invalid patch or an invalid result changes nothing", () => {
  const stored = validateMeshConfig(
    meshConfig({ traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] } }),
  );
  const patchCases: { name: string; run: () => unknown; input: unknown; error: (e: unknown) => void }[] = [
    {
      name: "a merge patch that is a list",
      input: stored,
      run: () => applyMergePatch(stored, [{ spec: {} }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(e.message, "a merge patch must be a JSON object, got a list");
      },
    },
    {
      name: "a merge patch that adds an invalid CIDR",
      input: stored,
      run: () =>
        applyMergePatch(stored, { spec: { traffic: { outboundIPRangeExclusionList: ["203.0.113.10/33"] } } }),
      error: (e) =>
        assertConfigError(e, [
          'spec.traffic.outboundIPRangeExclusionList[0]: "203.0.113.10/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4 (hint: IPv4 prefix lengths go from 0 to 32; /32 is a single address)',
        ]),
    },
    {
      name: "a merge patch that sets a boolean to a string",
      input: stored,
      run: () => applyMergePatch(stored, { spec: { traffic: { enableEgress: "no" } } }),
      error: (e) =>
        assertConfigError(e, [
          'spec.traffic.enableEgress: "no" is not a boolean (hint: write true or false, without quotes)',
        ]),
    },
    {
      name: "a merge patch that deletes kind",
      input: stored,
      run: () => applyMergePatch(stored, { kind: null }),
      error: (e) => assertConfigError(e, ["kind: <missing> is required (hint: write kind: MeshConfig)"]),
    },
    {
      name: "a JSON patch that is an object",
      input: stored,
      run: () => applyJsonPatch(stored, { op: "add" }),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(e.message, "a JSON patch must be a list of operations, got an object");
      },
    },
    {
      name: "a JSON patch with an unknown op",
      input: stored,
      run: () => applyJsonPatch(stored, [{ op: "frobnicate", path: "/spec" }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          'JSON patch operation 0: "op" must be one of add, remove, replace, move, copy, test, got "frobnicate"',
        );
      },
    },
    {
      name: "a JSON patch path without a leading slash",
      input: stored,
      run: () => applyJsonPatch(stored, [{ op: "remove", path: "spec/traffic" }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          'JSON patch operation 0 (remove): "path" must be a JSON pointer such as /spec/traffic, got "spec/traffic"',
        );
      },
    },
    {
      name: "a JSON patch add without a value",
      input: stored,
      run: () => applyJsonPatch(stored, [{ op: "add", path: "/spec/traffic/enableEgress" }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          'JSON patch operation 0 (add /spec/traffic/enableEgress): "value" is missing',
        );
      },
    },
    {
      name: "a JSON patch move without from",
      input: stored,
      run: () => applyJsonPatch(stored, [{ op: "move", path: "/spec/traffic/enableEgress" }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          'JSON patch operation 0 (move /spec/traffic/enableEgress): "from" is missing',
        );
      },
    },
    {
      name: "a JSON patch removing a path that does not exist",
      input: stored,
      run: () => applyJsonPatch(stored, [{ op: "remove", path: "/spec/traffic/nope" }]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          "JSON patch operation 0 (remove /spec/traffic/nope) failed: the path does not exist",
        );
      },
    },
    {
      name: "a JSON patch whose test fails, after an operation that would have succeeded",
      input: stored,
      run: () =>
        applyJsonPatch(stored, [
          { op: "replace", path: "/spec/traffic/enableEgress", value: true },
          { op: "test", path: "/spec/traffic/outboundIPRangeExclusionList/0", value: "1.1.1.1/32" },
        ]),
      error: (e) => {
        assert.ok(e instanceof MeshError && e.code === ErrorCode.InvalidPatch);
        assert.equal(
          e.message,
          "JSON patch operation 1 (test /spec/traffic/outboundIPRangeExclusionList/0) failed: the test did not match",
        );
      },
    },
    {
      name: "a JSON patch that adds a port above 65535",
      input: stored,
      run: () =>
        applyJsonPatch(stored, [
          { op: "add", path: "/spec/traffic/outboundPortExclusionList/-", value: 70000 },
        ]),
      error: (e) =>
        assertConfigError(e, [
          "spec.traffic.outboundPortExclusionList[0]: 70000 is not a valid port: must be an integer from 1 to 65535 (hint: TCP ports go up to 65535)",
        ]),
    },
  ];
  for (const c of patchCases) {
    test(c.name, () => c.error(rejects(c.run, c.input)));
  }
});

test("the bad-input table has at least 50 cases", () => {
  assert.ok(objectCases.length + yamlCases.length + annotationCases.length + 14 >= 50);
});

/**
 * Patching a MeshConfig: JSON merge patch (RFC 7386, what `kubectl patch --type=merge` sends) and JSON patch
 * (RFC 6902, `--type=json`). Patch, then validate: the input is never mutated, and an invalid result throws
 * (ConfigError for an invalid MeshConfig, MeshError InvalidPatch for a malformed patch), so callers that
 * store the result store nothing on error.
 */
import fastJsonPatch from "fast-json-patch";
import { ErrorCode, MeshError } from "../errors.ts";
import type { MeshConfig } from "./schema.ts";
import { validateMeshConfig } from "./validate.ts";

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** RFC 7386 MergePatch(target, patch), on copies: objects merge recursively, `null` deletes, the rest replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Applies a JSON merge patch to a MeshConfig and validates the result (defaults applied). Throws MeshError
 * InvalidPatch when the patch is not a JSON object, ConfigError when the result is invalid.
 */
export function applyMergePatch(obj: unknown, patch: unknown): MeshConfig {
  if (!isObject(patch)) {
    throw new MeshError(
      ErrorCode.InvalidPatch,
      `a merge patch must be a JSON object, got ${describe(patch)}`,
      {
        hint: `e.g. {"spec":{"traffic":{"outboundIPRangeExclusionList":["203.0.113.10/32"]}}}`,
      },
    );
  }
  return validateMeshConfig(mergePatch(obj, patch));
}

export type JsonPatchOperation = fastJsonPatch.Operation;

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

/**
 * Applies a JSON patch (RFC 6902) to a copy of a MeshConfig and validates the result. Throws MeshError
 * InvalidPatch naming the failing operation (malformed operation, missing path, failed `test`), ConfigError
 * when the result is invalid.
 */
export function applyJsonPatch(obj: unknown, ops: unknown): MeshConfig {
  if (!Array.isArray(ops)) {
    throw new MeshError(
      ErrorCode.InvalidPatch,
      `a JSON patch must be a list of operations, got ${describe(ops)}`,
      {
        hint: `e.g. [{"op":"add","path":"/spec/traffic/outboundIPRangeExclusionList/-","value":"203.0.113.10/32"}]`,
      },
    );
  }
  ops.forEach((op, index) => {
    if (!isObject(op) || typeof op["op"] !== "string" || !OPS.has(op["op"])) {
      throw new MeshError(
        ErrorCode.InvalidPatch,
        `JSON patch operation ${index}: "op" must be one of ${[...OPS].join(", ")}, got ${JSON.stringify(isObject(op) ? op["op"] : op)}`,
      );
    }
    if (typeof op["path"] !== "string" || (op["path"] !== "" && !op["path"].startsWith("/"))) {
      throw new MeshError(
        ErrorCode.InvalidPatch,
        `JSON patch operation ${index} (${op["op"]}): "path" must be a JSON pointer such as /spec/traffic, got ${JSON.stringify(op["path"])}`,
      );
    }
    if (["add", "replace", "test"].includes(op["op"]) && !("value" in op)) {
      throw new MeshError(
        ErrorCode.InvalidPatch,
        `JSON patch operation ${index} (${op["op"]} ${op["path"]}): "value" is missing`,
      );
    }
    if (["move", "copy"].includes(op["op"]) && typeof op["from"] !== "string") {
      throw new MeshError(
        ErrorCode.InvalidPatch,
        `JSON patch operation ${index} (${op["op"]} ${op["path"]}): "from" is missing`,
      );
    }
  });
  const document = structuredClone(obj);
  let patched: unknown;
  try {
    patched = fastJsonPatch.applyPatch(document, ops as JsonPatchOperation[], true, true, true).newDocument;
  } catch (error) {
    const e = error as {
      name?: string;
      index?: number;
      message?: string;
      operation?: { op?: string; path?: string };
    };
    const index = e.index ?? 0;
    const op = (ops[index] ?? {}) as { op?: string; path?: string };
    throw new MeshError(
      ErrorCode.InvalidPatch,
      `JSON patch operation ${index} (${op.op} ${op.path}) failed: ${jsonPatchReason(e)}`,
      { cause: error },
    );
  }
  return validateMeshConfig(patched);
}

function jsonPatchReason(e: { name?: string; message?: string }): string {
  switch (e.name) {
    case "OPERATION_PATH_UNRESOLVABLE":
      return "the path does not exist";
    case "OPERATION_FROM_UNRESOLVABLE":
      return '"from" does not exist';
    case "TEST_OPERATION_FAILED":
      return "the test did not match";
    case "OPERATION_PATH_ILLEGAL_ARRAY_INDEX":
      return "the array index is not a number";
    case "OPERATION_VALUE_OUT_OF_BOUNDS":
      return "the array index is out of bounds";
    case "OPERATION_PATH_CANNOT_ADD":
      return "cannot add at this path";
    default:
      return (e.message ?? "invalid operation").split("\n")[0]!;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

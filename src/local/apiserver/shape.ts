/**
 * What a typed Go decoder refuses before anything else looks at an object: a field of the wrong JSON type in
 * the structs every kind shares (ObjectMeta and the top-level `spec`/`status` structs), answered as
 * kube-apiserver does: 400 `Service in version "v1" cannot be handled as a Service: json: cannot unmarshal
 * string into Go struct field Service.spec of type v1.ServiceSpec`. Deeper fields are checked where they are
 * read (validation, defaults); `asBadRequest` turns a type slip there into the same 400.
 */
import type { Obj } from "./json.ts";
import { type ApiError, badRequest } from "./status.ts";

type JsonKind = "object" | "array" | "string" | "number" | "boolean" | "null";

function jsonKind(v: unknown): JsonKind {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v as JsonKind;
}

const META_STRINGS = ["name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp"];
const META_MAPS = ["labels", "annotations"];
const META_LISTS = ["finalizers", "ownerReferences", "managedFields"];

function cannotHandle(kind: string, version: string, detail: string): ApiError {
  return badRequest(`${kind} in version "${version}" cannot be handled as a ${kind}: ${detail}`);
}

function unmarshal(kind: string, version: string, got: JsonKind, field: string, goType: string): ApiError {
  return cannotHandle(
    kind,
    version,
    `json: cannot unmarshal ${got} into Go struct field ${kind}.${field} of type ${goType}`,
  );
}

/** Throws the typed decoder's 400 when a shared struct field has the wrong JSON type. */
export function checkShape(kind: string, version: string, o: Obj, custom: boolean): void {
  const meta = o.metadata;
  if (meta !== undefined && meta !== null && jsonKind(meta) !== "object")
    throw unmarshal(kind, version, jsonKind(meta), "metadata", "v1.ObjectMeta");
  for (const f of META_STRINGS) {
    const v = meta?.[f];
    if (v !== undefined && v !== null && typeof v !== "string")
      throw unmarshal(kind, version, jsonKind(v), `metadata.${f}`, "string");
  }
  for (const f of META_MAPS) {
    const v = meta?.[f];
    if (v === undefined || v === null) continue;
    if (jsonKind(v) !== "object")
      throw unmarshal(kind, version, jsonKind(v), `metadata.${f}`, "map[string]string");
    for (const [k, value] of Object.entries(v as Obj))
      if (typeof value !== "string" && value !== null)
        throw unmarshal(kind, version, jsonKind(value), `metadata.${f}.${k}`, "string");
  }
  for (const f of META_LISTS) {
    const v = meta?.[f];
    if (v !== undefined && v !== null && !Array.isArray(v))
      throw unmarshal(kind, version, jsonKind(v), `metadata.${f}`, "[]");
  }
  if (custom) return;
  for (const f of ["spec", "status"]) {
    const v = o[f];
    if (v !== undefined && v !== null && jsonKind(v) !== "object")
      throw unmarshal(kind, version, jsonKind(v), f, `v1.${kind}${f === "spec" ? "Spec" : "Status"}`);
  }
}

/**
 * Runs a verb over a client's body; a TypeError there is the body's shape (a string where the code reads an
 * object), so it is the client's 400, never a 500. Nothing has been stored when it is thrown: writes come last.
 */
export async function asBadRequest<T>(kind: string, version: string, verb: () => Promise<T>): Promise<T> {
  try {
    return await verb();
  } catch (error) {
    if (error instanceof TypeError) throw cannotHandle(kind, version, error.message);
    throw error;
  }
}

/**
 * The three patch types kubectl sends: JSON merge patch (RFC 7386), JSON patch (RFC 6902, via
 * fast-json-patch) and strategic merge patch (Kubernetes: lists with a merge key merge element-wise, and
 * the `$patch`, `$setElementOrder/<list>`, `$retainKeys` and `$deleteFromPrimitiveList/<list>` directives).
 * Strategic merge needs each list's merge key, which the real server reads from Go struct tags; here it is
 * a table for the built-in kinds this server serves.
 */
import jsonPatch from "fast-json-patch";
import { badRequest } from "./status.ts";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 7386: objects merge recursively, `null` deletes, everything else (arrays included) replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value) as Json;
  }
  return out;
}

/** RFC 6902; a failed `test` or a bad path is a 422-worthy client error, reported as BadRequest here. */
export function applyJsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest("json patch must be an array of operations");
  try {
    return jsonPatch.applyPatch(structuredClone(target), patch as jsonPatch.Operation[], true, false)
      .newDocument;
  } catch (error) {
    throw badRequest(
      `the server rejected our request due to an error in our request: ${(error as Error).message}`,
    );
  }
}

/** Merge keys by list field name; `ports` depends on the owner (containers: containerPort, Service: port). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  imagePullSecrets: "name",
  conditions: "type",
  ownerReferences: "uid",
  hostAliases: "ip",
  topologySpreadConstraints: "topologyKey",
  resourceClaims: "name",
  secrets: "name",
};

/** Lists of scalars that merge as sets (patchStrategy=merge), e.g. finalizers. */
const MERGE_PRIMITIVE_LISTS = new Set(["finalizers"]);

function mergeKeyFor(path: string[], field: string, kind: string): string | undefined {
  if (field === "ports") {
    // Service.spec.ports merges by port; container ports by containerPort.
    return kind === "Service" && path.length === 1 && path[0] === "spec" ? "port" : "containerPort";
  }
  return MERGE_KEYS[field];
}

/** Applies a strategic merge patch to an object of `kind` (a built-in kind; CRDs reject SMP with 415). */
export function applyStrategicMergePatch(target: unknown, patch: unknown, kind: string): unknown {
  if (!isObject(patch)) throw badRequest("strategic merge patch must be a JSON object");
  return mergeObject(isObject(target) ? target : {}, patch, [], kind);
}

function mergeObject(original: JsonObject, patch: JsonObject, path: string[], kind: string): Json {
  const directive = patch.$patch;
  if (directive === "delete") return null;
  if (directive === "replace") {
    const copy = structuredClone(patch);
    delete copy.$patch;
    return stripDirectives(copy);
  }
  let out: JsonObject = structuredClone(original);
  const retainKeys = patch.$retainKeys;
  if (Array.isArray(retainKeys)) {
    const keep = new Set(retainKeys.map(String));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch" || key === "$retainKeys" || key.startsWith("$setElementOrder/")) continue;
    if (key.startsWith("$deleteFromPrimitiveList/")) {
      const field = key.slice("$deleteFromPrimitiveList/".length);
      const current = out[field];
      if (Array.isArray(current) && Array.isArray(value)) {
        out[field] = current.filter((v) => !value.some((d) => d === v));
      }
      continue;
    }
    if (value === null) {
      delete out[key];
      continue;
    }
    const cur = out[key];
    if (isObject(value)) {
      out[key] = mergeObject(isObject(cur) ? cur : {}, value, [...path, key], kind);
      if (out[key] === null) delete out[key];
    } else if (Array.isArray(value)) {
      const order = patch[`$setElementOrder/${key}`];
      out[key] = mergeList(
        Array.isArray(cur) ? cur : [],
        value,
        path,
        key,
        kind,
        Array.isArray(order) ? order : undefined,
      );
    } else {
      out[key] = value;
    }
  }
  return out;
}

function mergeList(
  original: Json[],
  patch: Json[],
  path: string[],
  field: string,
  kind: string,
  order: Json[] | undefined,
): Json[] {
  const replaceDirective = patch.find((p) => isObject(p) && p.$patch === "replace");
  if (replaceDirective) return patch.filter((p) => p !== replaceDirective).map((p) => stripDirectives(p));
  if (MERGE_PRIMITIVE_LISTS.has(field)) {
    const out = [...original];
    for (const v of patch) if (!out.some((o) => o === v)) out.push(v);
    return out;
  }
  const mergeKey = mergeKeyFor(path, field, kind);
  if (!mergeKey || !patch.every(isObject)) return patch.map((p) => stripDirectives(p));
  const out: Json[] = structuredClone(original);
  const indexOf = (key: Json | undefined) => out.findIndex((o) => isObject(o) && o[mergeKey] === key);
  for (const item of patch as JsonObject[]) {
    const key = item[mergeKey];
    const i = indexOf(key);
    if (item.$patch === "delete") {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) {
      const existing = out[i];
      out[i] = mergeObject(isObject(existing) ? existing : {}, item, [...path, field], kind);
    } else {
      out.push(stripDirectives(item));
    }
  }
  if (!order) return out;
  // $setElementOrder lists the final order by merge key; elements it does not name keep their place after.
  const keyed = (o: Json) => (isObject(o) ? o[mergeKey] : undefined);
  const ordered: Json[] = [];
  for (const entry of order) {
    const k = isObject(entry) ? entry[mergeKey] : entry;
    const found = out.find((o) => keyed(o) === k);
    if (found !== undefined && !ordered.includes(found)) ordered.push(found);
  }
  for (const o of out) if (!ordered.includes(o)) ordered.push(o);
  return ordered;
}

function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith("$")) continue;
    out[k] = stripDirectives(v);
  }
  return out;
}

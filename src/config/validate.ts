/**
 * Parsing and validation of MeshConfig documents: text → unknown[] → MeshConfig (v1alpha2, defaults applied),
 * collecting every problem into one ConfigError of ConfigIssues (path as kubectl prints it, the value as
 * written, reason, hint).
 */
import { LineCounter, parseAllDocuments } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "../errors.ts";
import {
  API_GROUP,
  API_VERSION_V1ALPHA1,
  API_VERSION_V1ALPHA2,
  HINT_SEPARATOR,
  KIND,
  type MeshConfig,
  meshConfigSchema,
  meshConfigSchemaV1alpha1,
  V1_2_DEFAULTS,
} from "./schema.ts";

/**
 * Parses YAML or JSON text holding one or more documents (`---`-separated; JSON is YAML), with YAML 1.1
 * scalars as kubectl does (`enableEgress: yes` is true). Empty documents are skipped. Malformed text → ConfigError whose issue names the line and column.
 */
export function parseMeshConfigDocuments(text: string, source = "<input>"): unknown[] {
  const lineCounter = new LineCounter();
  // YAML 1.1, as kubectl reads manifests (sigs.k8s.io/yaml → go-yaml v2): unquoted yes/no/on/off are booleans.
  const docs = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    version: "1.1",
  });
  const issues: ConfigIssue[] = [];
  const out: unknown[] = [];
  for (const doc of docs) {
    for (const error of doc.errors) {
      const pos = lineCounter.linePos(error.pos[0]);
      const line = text.split(/\r?\n/)[pos.line - 1] ?? "";
      issues.push({
        path: `${source}:${pos.line}:${pos.col}`,
        value: line.trim(),
        reason: `is not valid YAML: ${firstLine(error.message)}`,
        hint: yamlHint(error.code),
      });
    }
    if (doc.errors.length > 0) continue;
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue; // empty document, e.g. around a stray `---`
    out.push(value);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

function firstLine(message: string): string {
  // The yaml package appends "at line L, column C" and a source excerpt; our path already names them.
  return (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "");
}

function yamlHint(code: string): string {
  switch (code) {
    case "DUPLICATE_KEY":
      return "each key may appear once per mapping";
    case "BAD_INDENT":
    case "MISSING_CHAR":
    case "UNEXPECTED_TOKEN":
      return "check the indentation (spaces, not tabs) and the quotes around this point";
    case "TAB_AS_INDENT":
      return "indent with spaces; YAML does not allow tabs";
    default:
      return "check the YAML syntax around this point";
  }
}

/** Renders a zod path the way kubectl prints field paths: `spec.traffic.list[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out === "" ? "<root>" : out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const part of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function splitMessage(message: string): { reason: string; hint?: string } {
  const at = message.indexOf(HINT_SEPARATOR);
  if (at < 0) return { reason: message };
  const hint = message.slice(at + HINT_SEPARATOR.length);
  return hint ? { reason: message.slice(0, at), hint } : { reason: message.slice(0, at) };
}

/** Edit distance, for "did you mean" hints on misspelt field names and enum values. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const exact = candidates.find((c) => c.toLowerCase() === lower);
  if (exact) return exact;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Walks the schema along a data path, unwrapping defaults/optionals, to list the fields known there. */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema;
  const unwrap = (s: unknown): unknown => {
    let x = s as { def?: { type: string; innerType?: unknown; element?: unknown } };
    while (x?.def && ["default", "prefault", "optional", "nullable", "pipe"].includes(x.def.type)) {
      x = (x.def.innerType ?? (x.def as { in?: unknown }).in) as typeof x;
    }
    return x;
  };
  for (const part of path) {
    const s = unwrap(current) as {
      def?: { type: string; element?: unknown };
      shape?: Record<string, unknown>;
    };
    if (typeof part === "number") current = s?.def?.element;
    else current = s?.shape?.[String(part)];
  }
  const s = unwrap(current) as { shape?: Record<string, unknown> };
  return s?.shape ? Object.keys(s.shape) : [];
}

/** zod's issues as ConfigIssues (path as kubectl prints it, value as written, our reason and hint), in document order. */
export function issuesFromZod(error: z.ZodError, input: unknown, schema: z.ZodType): ConfigIssue[] {
  const issues: (ConfigIssue & { order: number[] })[] = [];
  for (const issue of error.issues) {
    const path = issue.path as PropertyKey[];
    const value = valueAt(input, path);
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(schema, path);
      for (const key of issue.keys) {
        const guess = closest(key, known);
        issues.push({
          order: documentOrder(input, [...path, key]),
          path: formatPath([...path, key]),
          value: valueAt(input, [...path, key]),
          reason: "is not a known field",
          hint: guess ? `did you mean ${guess}?` : `known fields here: ${known.join(", ")}`,
        });
      }
      continue;
    }
    const custom = issue.message.includes(HINT_SEPARATOR);
    if (custom) {
      issues.push({
        order: documentOrder(input, path),
        path: formatPath(path),
        value,
        ...splitMessage(issue.message),
      });
      continue;
    }
    issues.push({
      order: documentOrder(input, path),
      path: formatPath(path),
      value,
      ...describeIssue(issue, value),
    });
  }
  issues.sort((a, b) => compareOrder(a.order, b.order));
  return issues.map(({ order: _order, ...issue }) => issue);
}

/** Position of a path in the input as written (key order, then index), so issues print top to bottom. */
function documentOrder(root: unknown, path: readonly PropertyKey[]): number[] {
  const order: number[] = [];
  let current: unknown = root;
  for (const part of path) {
    if (current === null || typeof current !== "object") {
      order.push(Number.MAX_SAFE_INTEGER);
      continue;
    }
    if (Array.isArray(current)) order.push(typeof part === "number" ? part : Number.MAX_SAFE_INTEGER);
    else {
      const index = Object.keys(current).indexOf(String(part));
      order.push(index < 0 ? Number.MAX_SAFE_INTEGER : index);
    }
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return order;
}

function compareOrder(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function describeIssue(issue: z.core.$ZodIssue, value: unknown): { reason: string; hint?: string } {
  if (value === undefined && issue.code === "invalid_type") return { reason: "is required" };
  switch (issue.code) {
    case "invalid_type": {
      const expected = issue.expected === "int" || issue.expected === "number" ? "integer" : issue.expected;
      const article = /^[aeiou]/.test(expected) ? "an" : "a";
      const name =
        expected === "array"
          ? "a list"
          : expected === "object" || expected === "record"
            ? "an object"
            : `${article} ${expected}`;
      let hint: string | undefined;
      if (expected === "integer" && typeof value === "string" && /^\d+$/.test(value))
        hint = `write ${value} without quotes`;
      else if (expected === "integer" && typeof value === "number") hint = "write a whole number";
      else if (expected === "array") hint = "write a YAML list (- item) or [item, ...]";
      return { reason: `is not ${name} (got ${describeType(value)})`, ...(hint ? { hint } : {}) };
    }
    case "invalid_value": {
      const options = issue.values.map((v) => JSON.stringify(v));
      if (options.length === 1) return { reason: `must be ${options[0]}` };
      const guess = typeof value === "string" ? closest(value, issue.values.map(String)) : undefined;
      const yaml11 =
        typeof value === "boolean"
          ? 'YAML (as kubectl reads it) turns unquoted on/off/yes/no into booleans; quote the value, e.g. "off"'
          : undefined;
      const hint = guess ? `did you mean ${JSON.stringify(guess)}?` : yaml11;
      return { reason: `is not one of ${options.join(", ")}`, ...(hint ? { hint } : {}) };
    }
    case "too_small":
      if (issue.origin === "array") return { reason: `must have at least ${String(issue.minimum)} item(s)` };
      return { reason: `must be at least ${String(issue.minimum)}` };
    case "too_big":
      if (issue.origin === "array") return { reason: `must have at most ${String(issue.maximum)} item(s)` };
      return { reason: `must be at most ${String(issue.maximum)}` };
    default:
      return { reason: issue.message };
  }
}

/** Drops `null` values, as the Kubernetes API server prunes nulls of non-nullable fields before defaulting. */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = dropNulls(v);
    return out;
  }
  return value;
}

const VERSION_HINT = `use apiVersion: ${API_VERSION_V1ALPHA2}`;

/**
 * Validates one MeshConfig object (as parsed from YAML/JSON) and returns it as v1alpha2 with OSM v1.2 chart
 * defaults for every missing field. `v1alpha1` is accepted (fields v1alpha1 lacks are rejected as unknown)
 * and converted. Never mutates `input`. Throws ConfigError with every problem found.
 */
export function validateMeshConfig(input: unknown): MeshConfig {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new ConfigError([
      {
        path: "<root>",
        value: input,
        reason: `is not a MeshConfig object (got ${describeType(input)})`,
        hint: `a MeshConfig starts with apiVersion: ${API_VERSION_V1ALPHA2} and kind: ${KIND}`,
      },
    ]);
  }
  const object = input as Record<string, unknown>;
  const apiVersion = object["apiVersion"];
  const issues: ConfigIssue[] = [];
  let schema: z.ZodType = meshConfigSchema;
  if (apiVersion === API_VERSION_V1ALPHA1) {
    schema = meshConfigSchemaV1alpha1;
  } else if (apiVersion !== API_VERSION_V1ALPHA2) {
    issues.push({
      path: "apiVersion",
      value: apiVersion,
      reason:
        apiVersion === undefined
          ? "is required"
          : typeof apiVersion === "string" && apiVersion.startsWith(`${API_GROUP}/`)
            ? "is not a served version (v1alpha2, v1alpha1)"
            : `is not ${API_GROUP}`,
      hint: apiVersion === `${API_GROUP}/v1alpha3` ? `v1alpha3 never shipped; ${VERSION_HINT}` : VERSION_HINT,
    });
  }
  if (object["kind"] !== KIND) {
    issues.push({
      path: "kind",
      value: object["kind"],
      reason: object["kind"] === undefined ? "is required" : `must be ${JSON.stringify(KIND)}`,
      hint: `write kind: ${KIND}`,
    });
  }
  const candidate = { ...(dropNulls(object) as Record<string, unknown>) };
  // Version and kind were checked above with better messages; validate the rest against the chosen version.
  candidate["apiVersion"] = apiVersion === API_VERSION_V1ALPHA1 ? API_VERSION_V1ALPHA1 : API_VERSION_V1ALPHA2;
  candidate["kind"] = KIND;
  const result = schema.safeParse(candidate);
  if (!result.success) {
    const zodIssues = issuesFromZod(result.error, object, schema);
    if (apiVersion === API_VERSION_V1ALPHA1) {
      for (const issue of zodIssues) {
        if (issue.reason === "is not a known field" && V1ALPHA2_ONLY.has(issue.path)) {
          issue.reason = "is not a field of v1alpha1";
          issue.hint = `it was added in v1alpha2; ${VERSION_HINT}`;
        }
      }
    }
    issues.push(...zodIssues);
  }
  if (result.success) issues.push(...crossFieldIssues(result.data as MeshConfig));
  if (issues.length > 0) throw new ConfigError(issues);
  const data = structuredClone(result.data) as MeshConfig;
  if (apiVersion === API_VERSION_V1ALPHA1) return convertV1alpha1(data);
  return data;
}

const V1ALPHA2_ONLY = new Set([
  "spec.traffic.outboundIPRangeInclusionList",
  "spec.traffic.networkInterfaceExclusionList",
  "spec.sidecar.localProxyMode",
  "spec.sidecar.tlsMinProtocolVersion",
  "spec.sidecar.tlsMaxProtocolVersion",
  "spec.sidecar.cipherSuites",
  "spec.sidecar.ecdhCurves",
]);

/** v1alpha1 → v1alpha2: same fields; the v1alpha2-only ones take their defaults (conversion strategy None). */
function convertV1alpha1(v1: MeshConfig): MeshConfig {
  const spec = v1.spec;
  return {
    ...v1,
    apiVersion: API_VERSION_V1ALPHA2 as MeshConfig["apiVersion"],
    spec: {
      ...spec,
      sidecar: {
        ...spec.sidecar,
        tlsMinProtocolVersion: V1_2_DEFAULTS.sidecar.tlsMinProtocolVersion,
        tlsMaxProtocolVersion: V1_2_DEFAULTS.sidecar.tlsMaxProtocolVersion,
        localProxyMode: V1_2_DEFAULTS.sidecar.localProxyMode,
      },
      traffic: { ...spec.traffic, outboundIPRangeInclusionList: [], networkInterfaceExclusionList: [] },
    },
  };
}

const TLS_ORDER = ["TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"];

/** Rules that involve more than one field. */
function crossFieldIssues(config: MeshConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { tlsMinProtocolVersion: min, tlsMaxProtocolVersion: max } = config.spec.sidecar;
  if (min && max && TLS_ORDER.includes(min) && TLS_ORDER.includes(max)) {
    if (TLS_ORDER.indexOf(min) > TLS_ORDER.indexOf(max)) {
      issues.push({
        path: "spec.sidecar.tlsMinProtocolVersion",
        value: min,
        reason: `is above tlsMaxProtocolVersion ${JSON.stringify(max)}`,
        hint: "the minimum TLS version must not exceed the maximum",
      });
    }
  }
  const auth = config.spec.traffic.inboundExternalAuthorization;
  if (auth?.enable) {
    for (const field of ["address", "port"] as const) {
      if (auth[field] === undefined || auth[field] === "") {
        issues.push({
          path: `spec.traffic.inboundExternalAuthorization.${field}`,
          value: auth[field],
          reason: "is required when inboundExternalAuthorization.enable is true",
          hint: "set the address and port of the external authorization service, or enable: false",
        });
      }
    }
  }
  return issues;
}

/** The OSM v1.2 preset MeshConfig (`osm-mesh-config` in `osm-system`), as osm-bootstrap creates it. */
export function defaultMeshConfig(): MeshConfig {
  return validateMeshConfig({
    apiVersion: API_VERSION_V1ALPHA2,
    kind: KIND,
    metadata: { name: "osm-mesh-config", namespace: "osm-system" },
    spec: {},
  });
}

/**
 * CRD structural schema checks for custom resources: types, required, enum, pattern, bounds, lengths, items,
 * additionalProperties, nullable; unknown fields pruned (as the real server does) unless
 * `x-kubernetes-preserve-unknown-fields`, and reported under `fieldValidation=Strict`; `default`s applied.
 * Problems come back as Status causes with the field path kubectl prints (`spec.traffic.enableEgress`).
 */
import type { Obj } from "./json.ts";
import type { StatusCause } from "./status.ts";

type Schema = Obj;

export interface SchemaResult {
  readonly value: unknown;
  readonly causes: StatusCause[];
  readonly unknownFields: string[];
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (Number.isInteger(v)) return "integer";
  return typeof v;
}

function show(v: unknown): string {
  return typeof v === "string" ? `"${v}"` : JSON.stringify(v);
}

/** Validates, prunes and defaults `value` against an OpenAPI v3 structural schema. */
export function applySchema(value: unknown, schema: Schema | undefined, path: string): SchemaResult {
  const causes: StatusCause[] = [];
  const unknownFields: string[] = [];
  const walk = (v: unknown, s: Schema | undefined, p: string): unknown => {
    if (!s) return v;
    if (v === null) {
      if (s.nullable) return v;
      causes.push({
        reason: "FieldValueTypeInvalid",
        field: p,
        message: `Invalid value: "null": ${p} in body must be of type ${s.type ?? "object"}: "null"`,
      });
      return v;
    }
    const t = typeOf(v);
    const want = s.type as string | undefined;
    if (s["x-kubernetes-int-or-string"]) {
      if (t !== "integer" && t !== "string")
        causes.push({
          reason: "FieldValueTypeInvalid",
          field: p,
          message: `Invalid value: ${show(v)}: ${p} in body must be of type integer-or-string: "${t}"`,
        });
      return v;
    }
    if (want && !(want === t || (want === "number" && t === "integer"))) {
      causes.push({
        reason: "FieldValueTypeInvalid",
        field: p,
        message: `Invalid value: "${t}": ${p} in body must be of type ${want}: "${t}"`,
      });
      return v;
    }
    if (Array.isArray(s.enum) && !s.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(v))) {
      causes.push({
        reason: "FieldValueNotSupported",
        field: p,
        message: `Unsupported value: ${show(v)}: supported values: ${s.enum.map(show).join(", ")}`,
      });
    }
    if (typeof v === "string") {
      if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(v)) {
        causes.push({
          reason: "FieldValueInvalid",
          field: p,
          message: `Invalid value: ${show(v)}: ${p} in body should match '${s.pattern}'`,
        });
      }
      if (typeof s.maxLength === "number" && v.length > s.maxLength)
        causes.push({
          reason: "FieldValueTooLong",
          field: p,
          message: `Too long: may not be more than ${s.maxLength} bytes`,
        });
      if (typeof s.minLength === "number" && v.length < s.minLength)
        causes.push({
          reason: "FieldValueInvalid",
          field: p,
          message: `Invalid value: ${show(v)}: ${p} in body should be at least ${s.minLength} chars long`,
        });
    }
    if (typeof v === "number") {
      if (typeof s.minimum === "number" && v < s.minimum)
        causes.push({
          reason: "FieldValueInvalid",
          field: p,
          message: `Invalid value: ${v}: ${p} in body should be greater than or equal to ${s.minimum}`,
        });
      if (typeof s.maximum === "number" && v > s.maximum)
        causes.push({
          reason: "FieldValueInvalid",
          field: p,
          message: `Invalid value: ${v}: ${p} in body should be less than or equal to ${s.maximum}`,
        });
    }
    if (Array.isArray(v)) {
      if (typeof s.maxItems === "number" && v.length > s.maxItems)
        causes.push({
          reason: "FieldValueTooMany",
          field: p,
          message: `Too many: ${v.length}: must have at most ${s.maxItems} items`,
        });
      if (typeof s.minItems === "number" && v.length < s.minItems)
        causes.push({
          reason: "FieldValueInvalid",
          field: p,
          message: `Invalid value: ${v.length}: ${p} in body should have at least ${s.minItems} items`,
        });
      return v.map((item, i) => walk(item, s.items, `${p}[${i}]`));
    }
    if (t === "object") {
      const obj = v as Record<string, unknown>;
      const props = s.properties as Record<string, Schema> | undefined;
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(props ?? {})) {
        if (obj[key] === undefined && child.default !== undefined) obj[key] = structuredClone(child.default);
      }
      for (const key of (s.required as string[] | undefined) ?? []) {
        if (obj[key] === undefined)
          causes.push({
            reason: "FieldValueRequired",
            field: p ? `${p}.${key}` : key,
            message: "Required value",
          });
      }
      for (const [key, child] of Object.entries(obj)) {
        const childPath = p ? `${p}.${key}` : key;
        if (props && key in props) out[key] = walk(child, props[key], childPath);
        else if (s.additionalProperties && typeof s.additionalProperties === "object")
          out[key] = walk(child, s.additionalProperties, childPath);
        else if (
          s.additionalProperties === true ||
          s["x-kubernetes-preserve-unknown-fields"] ||
          (!props && !s.additionalProperties)
        )
          out[key] = child;
        else unknownFields.push(childPath);
      }
      return out;
    }
    return v;
  };
  const result = walk(structuredClone(value), schema, path);
  return { value: result, causes, unknownFields };
}

/**
 * Checks a CR: `metadata` is the server's business, `apiVersion`/`kind` are set by the server; the rest of
 * the top level is checked against the version's schema.
 */
export function validateCustomResource(
  object: Record<string, unknown>,
  schema: Schema | undefined,
): SchemaResult {
  if (!schema) return { value: object, causes: [], unknownFields: [] };
  const props = { ...(schema.properties ?? {}) };
  delete props.metadata;
  delete props.apiVersion;
  delete props.kind;
  const body: Record<string, unknown> = { ...object };
  const { apiVersion, kind, metadata } = body;
  delete body.apiVersion;
  delete body.kind;
  delete body.metadata;
  const checked = applySchema(
    body,
    {
      ...schema,
      properties: props,
      required: (schema.required ?? []).filter(
        (r: string) => !["metadata", "apiVersion", "kind"].includes(r),
      ),
    },
    "",
  );
  const causes = checked.causes.map((c) => ({ ...c, field: c.field?.replace(/^\./, "") }));
  const unknownFields = checked.unknownFields.map((f) => f.replace(/^\./, ""));
  return {
    value: { apiVersion, kind, metadata, ...(checked.value as Record<string, unknown>) },
    causes,
    unknownFields,
  };
}

/**
 * A minimal decoder for the protobuf bodies kubectl 1.32's typed clients send (`kubectl create namespace`,
 * `create configmap`, `create secret`, `create serviceaccount`, `create token`, `auth can-i`, `auth whoami`):
 * the `k8s\0` magic, a runtime.Unknown envelope, and the few message fields those kinds carry
 * (docs/kubectl-api.md §3). Field numbers are from
 * k8s.io/api/core/v1/generated.proto and apimachinery's meta/v1 generated.proto. Anything else → 415.
 * Hand-written because a full protobuf library would still need the Kubernetes .proto files.
 */
import { ApiError } from "./status.ts";

export const PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf";
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  num: number;
  wire: number;
  value: bigint | Buffer;
}

function readFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error("truncated varint");
      const byte = buf[pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const num = key >>> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ num, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error("truncated field");
      fields.push({ num, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

const bytesOf = (f: Field) => (Buffer.isBuffer(f.value) ? f.value : Buffer.alloc(0));
const str = (f: Field) => bytesOf(f).toString("utf8");
const sub = (fields: Field[], num: number) => fields.filter((f) => f.num === num);

function decodeMap(fields: Field[], num: number, asBytes: boolean): Record<string, string> | undefined {
  const entries = sub(fields, num);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = readFields(bytesOf(e));
    const k = kv.find((f) => f.num === 1);
    const v = kv.find((f) => f.num === 2);
    out[k ? str(k) : ""] = v ? (asBytes ? bytesOf(v).toString("base64") : str(v)) : "";
  }
  return out;
}

function decodeObjectMeta(buf: Buffer): Record<string, unknown> {
  const f = readFields(buf);
  const meta: Record<string, unknown> = {};
  const set = (num: number, key: string) => {
    const v = f.find((x) => x.num === num);
    if (v && str(v) !== "") meta[key] = str(v);
  };
  set(1, "name");
  set(2, "generateName");
  set(3, "namespace");
  const labels = decodeMap(f, 11, false);
  if (labels) meta.labels = labels;
  const annotations = decodeMap(f, 12, false);
  if (annotations) meta.annotations = annotations;
  const finalizers = sub(f, 14).map(str);
  if (finalizers.length > 0) meta.finalizers = finalizers;
  return meta;
}

/** The string fields `names[i]` at field number i + 1 that are set (proto3 omits empty strings). */
function strings(buf: Buffer, names: readonly string[]): Record<string, string> {
  const f = readFields(buf);
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    const v = f.find((x) => x.num === i + 1);
    if (v) out[name] = str(v);
  });
  return out;
}

const RESOURCE_ATTRIBUTES = ["namespace", "verb", "group", "version", "resource", "subresource", "name"];

function decodeTokenRequestSpec(buf: Buffer): Record<string, unknown> {
  const f = readFields(buf);
  const spec: Record<string, unknown> = {};
  const audiences = sub(f, 1).map(str);
  if (audiences.length > 0) spec.audiences = audiences;
  const expiration = f.find((x) => x.num === 4);
  if (expiration && typeof expiration.value === "bigint") spec.expirationSeconds = Number(expiration.value);
  const ref = f.find((x) => x.num === 3);
  if (ref) {
    const { uID, ...rest } = strings(bytesOf(ref), ["kind", "apiVersion", "name", "uID"]);
    spec.boundObjectRef = { ...rest, ...(uID ? { uid: uID } : {}) };
  }
  return spec;
}

function decodeAccessReviewSpec(buf: Buffer): Record<string, unknown> {
  const f = readFields(buf);
  const spec: Record<string, unknown> = {};
  const resource = f.find((x) => x.num === 1);
  if (resource) spec.resourceAttributes = strings(bytesOf(resource), RESOURCE_ATTRIBUTES);
  const nonResource = f.find((x) => x.num === 2);
  if (nonResource) spec.nonResourceAttributes = strings(bytesOf(nonResource), ["path", "verb"]);
  return spec;
}

function decodeKind(kind: string, raw: Buffer): Record<string, unknown> {
  const f = readFields(raw);
  const metaField = f.find((x) => x.num === 1);
  const metadata = metaField ? decodeObjectMeta(bytesOf(metaField)) : {};
  const obj: Record<string, unknown> = { metadata };
  switch (kind) {
    case "Namespace":
      return obj;
    case "ConfigMap": {
      const data = decodeMap(f, 2, false);
      const binaryData = decodeMap(f, 3, true);
      if (data) obj.data = data;
      if (binaryData) obj.binaryData = binaryData;
      return obj;
    }
    case "Secret": {
      const data = decodeMap(f, 2, true);
      const type = f.find((x) => x.num === 3);
      const stringData = decodeMap(f, 4, false);
      if (data) obj.data = data;
      if (type) obj.type = str(type);
      if (stringData) obj.stringData = stringData;
      return obj;
    }
    case "ServiceAccount":
    case "SelfSubjectReview":
      return obj;
    case "TokenRequest":
    case "SelfSubjectAccessReview": {
      const spec = f.find((x) => x.num === 2);
      obj.spec = spec
        ? (kind === "TokenRequest" ? decodeTokenRequestSpec : decodeAccessReviewSpec)(bytesOf(spec))
        : {};
      return obj;
    }
    default:
      throw new ApiError(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf is decoded for Namespace, ConfigMap, Secret, ServiceAccount, TokenRequest, SelfSubjectAccessReview and SelfSubjectReview only, not ${kind})`,
      );
  }
}

/** Decodes a protobuf request body into a JSON object with apiVersion and kind set. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) {
    throw new ApiError(400, "BadRequest", "protobuf body does not start with the k8s magic prefix");
  }
  try {
    const unknown = readFields(body.subarray(4));
    const typeMeta = unknown.find((f) => f.num === 1);
    const raw = unknown.find((f) => f.num === 2);
    const tm = typeMeta ? readFields(bytesOf(typeMeta)) : [];
    const apiVersionField = tm.find((f) => f.num === 1);
    const kindField = tm.find((f) => f.num === 2);
    const apiVersion = apiVersionField ? str(apiVersionField) : "";
    const kind = kindField ? str(kindField) : "";
    return { apiVersion, kind, ...decodeKind(kind, raw ? bytesOf(raw) : Buffer.alloc(0)) };
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(400, "BadRequest", `cannot decode protobuf body: ${(error as Error).message}`);
  }
}

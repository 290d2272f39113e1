/**
 * DeleteOptions of a DELETE (one object or a collection), read and validated before anything is deleted, as
 * kube-apiserver's delete handler does: a non-empty body is the whole of the options (the query is then not
 * read at all, so a body's gracePeriodSeconds wins over the query's); an empty body reads them from the query.
 * Decoding refusals are 400 with the Go decoder's message form; semantic ones are 422 `DeleteOptions`.
 */
import type { DeleteOptions } from "./api.ts";
import type { Obj } from "./json.ts";
import { badRequest, invalid, type StatusCause } from "./status.ts";

export interface ParsedDeleteOptions extends DeleteOptions {
  readonly dryRun: boolean;
}

/** The Go struct the decoder reads apiVersion and kind with, as its error messages name it. */
const FIND_KIND =
  'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }';

/** Kinds the meta.k8s.io scheme knows besides DeleteOptions: decoding one is a conversion error, not "no kind". */
const META_OPTION_KINDS = new Set([
  "ListOptions",
  "GetOptions",
  "CreateOptions",
  "UpdateOptions",
  "PatchOptions",
]);
const META_VERSIONS = new Set(["v1", "meta.k8s.io/v1"]);

const PROPAGATION = ["Foreground", "Background", "Orphan"];

/** The JSON type name Go's decoder uses in "cannot unmarshal X into …". */
function goJsonType(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "string";
  return "object";
}

function unmarshalError(v: unknown, field: string, goType: string): Error {
  return badRequest(
    `json: cannot unmarshal ${goJsonType(v)} into Go struct field DeleteOptions.${field} of type ${goType}`,
  );
}

function optionalString(o: Obj, key: string, field: string, goType = "string"): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw unmarshalError(v, field, goType);
  return v;
}

function optionalBool(o: Obj, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw unmarshalError(v, key, "bool");
  return v;
}

function optionalInt64(o: Obj, key: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number") throw unmarshalError(v, key, "int64");
  if (!Number.isSafeInteger(v))
    throw badRequest(
      `json: cannot unmarshal number ${v} into Go struct field DeleteOptions.${key} of type int64`,
    );
  return v;
}

function checkKind(o: Obj): void {
  const kind = o.kind;
  const apiVersion = o.apiVersion;
  if (
    (kind !== undefined && kind !== null && typeof kind !== "string") ||
    (apiVersion !== undefined && apiVersion !== null && typeof apiVersion !== "string")
  ) {
    const [key, v] = typeof kind === "string" || kind == null ? ["apiVersion", apiVersion] : ["kind", kind];
    throw badRequest(
      `couldn't get version/kind; json parse error: json: cannot unmarshal ${goJsonType(v)} into Go struct field .${key} of type string`,
    );
  }
  if (!kind || kind === "DeleteOptions") return;
  const version = (apiVersion as string | undefined) || "meta.k8s.io/v1";
  if (META_OPTION_KINDS.has(kind) && META_VERSIONS.has(version))
    throw badRequest(`converting (v1.${kind}) to (v1.DeleteOptions): unknown conversion`);
  throw badRequest(
    `no kind "${kind}" is registered for version "${version}" in scheme "pkg/runtime/scheme.go:111"`,
  );
}

function fromBody(body: unknown): { options: Obj; dryRun: string[] | undefined } {
  if (body === null) return { options: {}, dryRun: undefined };
  if (typeof body !== "object" || Array.isArray(body))
    throw badRequest(
      `couldn't get version/kind; json parse error: json: cannot unmarshal ${goJsonType(body)} into Go value of type ${FIND_KIND}`,
    );
  const o = body as Obj;
  checkKind(o);
  let preconditions: DeleteOptions["preconditions"];
  if (o.preconditions !== undefined && o.preconditions !== null) {
    if (typeof o.preconditions !== "object" || Array.isArray(o.preconditions))
      throw unmarshalError(o.preconditions, "preconditions", "v1.Preconditions");
    const p = o.preconditions as Obj;
    preconditions = {
      uid: optionalString(p, "uid", "preconditions.uid", "types.UID"),
      resourceVersion: optionalString(p, "resourceVersion", "preconditions.resourceVersion"),
    };
  }
  let dryRun: string[] | undefined;
  if (o.dryRun !== undefined && o.dryRun !== null) {
    if (!Array.isArray(o.dryRun)) throw unmarshalError(o.dryRun, "dryRun", "[]string");
    for (const d of o.dryRun) if (typeof d !== "string") throw unmarshalError(d, "dryRun", "string");
    dryRun = o.dryRun as string[];
  }
  return {
    options: {
      gracePeriodSeconds: optionalInt64(o, "gracePeriodSeconds"),
      propagationPolicy: optionalString(
        o,
        "propagationPolicy",
        "propagationPolicy",
        "v1.DeletionPropagation",
      ),
      orphanDependents: optionalBool(o, "orphanDependents"),
      ignoreStoreReadError: optionalBool(o, "ignoreStoreReadErrorWithClusterBreakingPotential"),
      preconditions,
    },
    dryRun,
  };
}

function fromQuery(query: URLSearchParams): { options: Obj; dryRun: string[] | undefined } {
  const grace = query.get("gracePeriodSeconds");
  let gracePeriodSeconds: number | undefined;
  if (grace !== null) {
    if (!/^[+-]?\d+$/.test(grace) || !Number.isSafeInteger(Number(grace)))
      throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(grace)}: invalid syntax`);
    gracePeriodSeconds = Number(grace);
  }
  const orphan = query.get("orphanDependents");
  let orphanDependents: boolean | undefined;
  if (orphan !== null) {
    const parsed = parseGoBool(orphan);
    if (parsed === undefined)
      throw badRequest(`strconv.ParseBool: parsing ${JSON.stringify(orphan)}: invalid syntax`);
    orphanDependents = parsed;
  }
  const dryRun = query.getAll("dryRun");
  return {
    options: {
      gracePeriodSeconds,
      propagationPolicy: query.get("propagationPolicy") ?? undefined,
      orphanDependents,
    },
    dryRun: dryRun.length > 0 ? dryRun : undefined,
  };
}

/** strconv.ParseBool's spellings. */
function parseGoBool(s: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(s)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(s)) return false;
  return undefined;
}

/**
 * The options of a DELETE: `body` is the decoded body (undefined when it was empty), `query` the URL's.
 * Throws the ApiError kube-apiserver answers with; nothing has been touched when it does.
 */
export function parseDeleteOptions(body: unknown, query: URLSearchParams): ParsedDeleteOptions {
  const { options: o, dryRun } = body === undefined ? fromQuery(query) : fromBody(body);
  const causes: StatusCause[] = [];
  const policy = o.propagationPolicy as string | undefined;
  if (o.orphanDependents !== undefined && policy !== undefined)
    causes.push({
      field: "propagationPolicy",
      message: `Invalid value: ${JSON.stringify(policy)}: orphanDependents and deletionPropagation cannot be both set`,
    });
  if (policy !== undefined && !PROPAGATION.includes(policy))
    causes.push({
      reason: "FieldValueNotSupported",
      field: "propagationPolicy",
      message: `Unsupported value: ${JSON.stringify(policy)}: supported values: ${[...PROPAGATION, "nil"].map((v) => `"${v}"`).join(", ")}`,
    });
  if (dryRun?.some((d) => d !== "All"))
    causes.push({
      reason: "FieldValueNotSupported",
      field: "dryRun",
      message: `Unsupported value: ${JSON.stringify(dryRun)}: supported values: "All"`,
    });
  if (causes.length > 0) throw invalid("meta.k8s.io", "DeleteOptions", "", causes);
  const orphan =
    o.orphanDependents === true ? "Orphan" : o.orphanDependents === false ? "Background" : undefined;
  return {
    gracePeriodSeconds: o.gracePeriodSeconds as number | undefined,
    propagationPolicy: policy ?? orphan,
    preconditions: o.preconditions as DeleteOptions["preconditions"],
    dryRun: dryRun?.includes("All") ?? false,
  };
}

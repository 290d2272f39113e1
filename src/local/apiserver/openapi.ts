/**
 * OpenAPI v3, just enough for `kubectl apply`/`create` (docs/kubectl-api.md §4a): a root listing each group version, and
 * per group version a document whose PATCH operations carry `x-kubernetes-group-version-kind` and declare
 * the `fieldValidation` parameter. kubectl then leaves validation to the server (`fieldValidation=Strict`).
 * CRD versions also carry their schema under components, so clients that read it get the real one.
 */
import type { ResourceRegistry, ResourceType } from "./resources.ts";

function gvPath(group: string, version: string): string {
  return group === "" ? `api/${version}` : `apis/${group}/${version}`;
}

export function buildOpenApiRoot(registry: ResourceRegistry) {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of registry.groupVersions()) {
    for (const v of g.versions) {
      const p = gvPath(g.group, v);
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}` };
    }
  }
  return { paths };
}

function schemaName(t: ResourceType): string {
  const group = t.group === "" ? "core" : t.group.split(".").reverse().join(".");
  return `${group}.${t.version}.${t.kind}`;
}

const PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"].map((name) => ({
  name,
  in: "query",
  schema: { type: name === "force" ? "boolean" : "string", uniqueItems: true },
}));

/** The per-group-version document, or undefined for an unknown one. `path` is e.g. `apis/apps/v1`. */
export function buildOpenApiGroupVersion(registry: ResourceRegistry, path: string) {
  const types = registry.all().filter((t) => gvPath(t.group, t.version) === path);
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const t of types) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const base = `/${gvPath(t.group, t.version)}${t.namespaced ? "/namespaces/{namespace}" : ""}/${t.resource}`;
    // Built-in kinds carry no schema: kubectl then takes patch metadata from its compiled-in types (docs/kubectl-api.md §4c).
    const responses = t.crd
      ? {
          "200": {
            content: { "application/json": { schema: { $ref: `#/components/schemas/${schemaName(t)}` } } },
          },
        }
      : undefined;
    const op = (verb: string) => ({
      "x-kubernetes-group-version-kind": gvk,
      "x-kubernetes-action": verb,
      parameters: PARAMS,
      ...(responses ? { responses } : {}),
    });
    paths[`${base}/{name}`] = { get: op("get"), put: op("put"), patch: op("patch"), delete: op("delete") };
    paths[base] = { get: op("list"), post: op("post") };
    if (t.crd) {
      const schema: Record<string, unknown> = t.crd.schema
        ? structuredClone(t.crd.schema)
        : { type: "object", "x-kubernetes-preserve-unknown-fields": true };
      schema["x-kubernetes-group-version-kind"] = [gvk];
      schemas[schemaName(t)] = schema;
    }
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.32.4" },
    paths,
    components: { schemas },
  };
}

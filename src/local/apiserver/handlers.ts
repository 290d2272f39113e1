/**
 * Verb handlers for resource URLs: get, list, watch, create, update, patch, delete, deletecollection, and
 * the `status` and `scale` subresources. Output follows the Accept header: the object, a server-side
 * Table (`as=Table`), or PartialObjectMetadata(List).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { KubeObject } from "../store/store.ts";
import type { Api, RequestContext } from "./api.ts";
import { type ParsedDeleteOptions, parseDeleteOptions } from "./delete-options.ts";
import { decodeBody, readBody, sendJson, warningHeaders } from "./http-util.ts";
import type { Obj } from "./json.ts";
import { applyJsonPatch, applyMergePatch } from "./patch.ts";
import { apiVersionOf, groupResource, type ResourceType } from "./resources.ts";
import type { ResourceRequest } from "./router.ts";
import {
  fieldValue,
  formatLabels,
  matchesLabels,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from "./selectors.ts";
import { asBadRequest } from "./shape.ts";
import { ApiError, badRequest, methodNotSupported } from "./status.ts";
import { buildTable } from "./table.ts";
import type { WatchHub } from "./watch.ts";

export interface HandlerDeps {
  readonly api: Api;
  readonly hub: WatchHub;
  readonly now: () => number;
}

type OutputForm = "object" | "table" | "metadata";

function outputForm(accept: string | undefined): OutputForm {
  if (!accept) return "object";
  const first = accept.split(",")[0] ?? "";
  if (/as=Table/.test(first)) return "table";
  if (/as=PartialObjectMetadata/.test(first)) return "metadata";
  return "object";
}

function listKind(type: ResourceType): string {
  return `${type.kind}List`;
}

function context(url: URL, user: string): RequestContext {
  const dryRun = url.searchParams.getAll("dryRun");
  return {
    dryRun: dryRun.includes("All"),
    fieldValidation: url.searchParams.get("fieldValidation") ?? undefined,
    user,
    warnings: [],
  };
}

/** A DELETE's dry run comes from its options (the body's when it has one), not only the query. */
function withDryRun(ctx: RequestContext, options: ParsedDeleteOptions): RequestContext {
  return { ...ctx, dryRun: options.dryRun };
}

function render(deps: HandlerDeps, type: ResourceType, form: OutputForm, obj: KubeObject, url: URL): unknown {
  if (form === "table")
    return buildTable(
      type,
      [obj],
      obj.metadata.resourceVersion,
      deps.now(),
      url.searchParams.get("includeObject") ?? undefined,
    );
  if (form === "metadata")
    return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: obj.metadata };
  return obj;
}

function reply(res: ServerResponse, code: number, body: unknown, ctx: RequestContext): void {
  const warnings = warningHeaders(ctx.warnings);
  if (warnings.length > 0) res.setHeader("Warning", warnings);
  sendJson(res, code, body);
}

/** A Scale object for deployments/replicasets (autoscaling/v1). */
function toScale(obj: Obj): Obj {
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      uid: obj.metadata.uid,
      resourceVersion: obj.metadata.resourceVersion,
      creationTimestamp: obj.metadata.creationTimestamp,
    },
    spec: { replicas: obj.spec?.replicas ?? 0 },
    status: { replicas: obj.status?.replicas ?? 0, selector: formatLabels(obj.spec?.selector?.matchLabels) },
  };
}

/** Handles one resource request (everything except exec, log and proxy). */
export async function handleResource(
  deps: HandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  r: ResourceRequest,
  type: ResourceType,
  user: string,
): Promise<void> {
  const { api } = deps;
  const method = req.method ?? "GET";
  const ns = type.namespaced ? (r.namespace ?? "") : "";
  const form = outputForm(req.headers.accept);
  const ctx = context(url, user);
  if (type.namespaced && r.namespace === undefined && r.name !== undefined)
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");
  if (r.subresource && !type.subresources.includes(r.subresource))
    throw new ApiError(404, "NotFound", "the server could not find the requested resource");

  if (r.name === undefined) {
    if (method === "GET") {
      const watch = url.searchParams.get("watch");
      if (watch === "true" || watch === "1")
        return watchCollection(deps, req, res, url, type, r.namespace, form);
      // A list is served at the latest state: "not older than" a resourceVersion the store has not reached yet
      // waits for it, as kube-apiserver's watch cache does.
      const from = resourceVersionParam(url);
      if (from !== undefined) await deps.hub.waitUntilFresh(from);
      return listCollection(deps, res, url, type, r.namespace, form);
    }
    if (method === "POST") {
      const body = decodeBody(await readBody(req), req.headers["content-type"]);
      const created = await asBadRequest(type.kind, type.version, () => api.create(type, ns, body, ctx));
      return reply(res, 201, render(deps, type, form, created, url), ctx);
    }
    if (method === "DELETE") {
      const body = decodeBody(await readBody(req), req.headers["content-type"], "options");
      const options = parseDeleteOptions(body, url.searchParams);
      const deleted = await api.deleteCollection(
        type,
        r.namespace,
        {
          labelSelector: url.searchParams.get("labelSelector"),
          fieldSelector: url.searchParams.get("fieldSelector"),
        },
        options,
        withDryRun(ctx, options),
      );
      return reply(
        res,
        200,
        {
          kind: listKind(type),
          apiVersion: apiVersionOf(type),
          metadata: { resourceVersion: String(api.store.resourceVersion) },
          items: deleted,
        },
        ctx,
      );
    }
    throw methodNotSupported(type.resource, method);
  }

  const name = r.name;
  if (r.subresource === "scale") return handleScale(deps, req, res, type, ns, name, ctx);
  const sub = r.subresource === "status" ? "status" : "";
  if (r.subresource === "finalize") {
    if (method !== "PUT") throw methodNotSupported(`${type.resource}/finalize`, method);
    const body = decodeBody(await readBody(req), req.headers["content-type"]);
    const updated = await asBadRequest(type.kind, type.version, () => api.update(type, ns, name, body, ctx));
    return reply(res, 200, updated, ctx);
  }
  switch (method) {
    case "GET":
      return reply(res, 200, render(deps, type, form, api.get(type, ns, name), url), ctx);
    case "PUT": {
      const body = decodeBody(await readBody(req), req.headers["content-type"]);
      const updated = await asBadRequest(type.kind, type.version, () =>
        api.update(type, ns, name, body, ctx, sub),
      );
      return reply(res, 200, render(deps, type, form, updated, url), ctx);
    }
    case "PATCH": {
      const patch = decodeBody(await readBody(req), req.headers["content-type"], "patch");
      if (patch === undefined) throw badRequest("empty patch");
      const updated = await asBadRequest(type.kind, type.version, () =>
        api.patch(type, ns, name, req.headers["content-type"] ?? "", patch, ctx, sub),
      );
      return reply(res, 200, render(deps, type, form, updated, url), ctx);
    }
    case "DELETE": {
      const body = decodeBody(await readBody(req), req.headers["content-type"], "options");
      const options = parseDeleteOptions(body, url.searchParams);
      const { object } = await api.delete(type, ns, name, options, withDryRun(ctx, options));
      return reply(res, 200, render(deps, type, form, object, url), ctx);
    }
    default:
      throw methodNotSupported(type.resource, method);
  }
}

async function handleScale(
  deps: HandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  type: ResourceType,
  ns: string,
  name: string,
  ctx: RequestContext,
): Promise<void> {
  const { api } = deps;
  const method = req.method ?? "GET";
  if (method === "GET") return reply(res, 200, toScale(api.get(type, ns, name) as Obj), ctx);
  const body = decodeBody(
    await readBody(req),
    req.headers["content-type"],
    method === "PATCH" ? "patch" : "object",
  );
  let replicasFrom: (currentScale: Obj) => unknown;
  if (method === "PUT") {
    const b = body as Obj;
    const rv = b?.metadata?.resourceVersion;
    const current = api.get(type, ns, name);
    if (rv && rv !== current.metadata.resourceVersion) {
      throw new ApiError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${type.resource}.${type.group} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    replicasFrom = () => b?.spec?.replicas;
  } else if (method === "PATCH") {
    const ct = (req.headers["content-type"] ?? "").split(";")[0];
    replicasFrom = (scale) =>
      (
        (ct === "application/json-patch+json"
          ? applyJsonPatch(scale, body)
          : applyMergePatch(scale, body)) as Obj
      )?.spec?.replicas;
  } else {
    throw methodNotSupported(`${type.resource}/scale`, method);
  }
  const updated = await api.mutate(
    type,
    ns,
    name,
    (current) => {
      const replicas = replicasFrom(toScale(current));
      if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
        throw new ApiError(
          422,
          "Invalid",
          `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
        );
      }
      const c = structuredClone(current) as Obj;
      c.spec = { ...c.spec, replicas };
      return c;
    },
    ctx,
  );
  return reply(res, 200, toScale(updated as Obj), ctx);
}

/** The `resourceVersion` parameter; undefined when absent or "0" (any version). */
function resourceVersionParam(url: URL): number | undefined {
  const param = url.searchParams.get("resourceVersion");
  if (!param || param === "0") return undefined;
  const rv = Number(param);
  if (!/^\d+$/.test(param) || !Number.isSafeInteger(rv))
    throw badRequest(`invalid resource version: ${param}`);
  return rv;
}

function listCollection(
  deps: HandlerDeps,
  res: ServerResponse,
  url: URL,
  type: ResourceType,
  namespace: string | undefined,
  form: OutputForm,
): void {
  const { items, resourceVersion } = deps.api.list(type, namespace, {
    labelSelector: url.searchParams.get("labelSelector"),
    fieldSelector: url.searchParams.get("fieldSelector"),
  });
  if (form === "table") {
    sendJson(
      res,
      200,
      buildTable(
        type,
        items,
        resourceVersion,
        deps.now(),
        url.searchParams.get("includeObject") ?? undefined,
      ),
    );
    return;
  }
  if (form === "metadata") {
    sendJson(res, 200, {
      kind: "PartialObjectMetadataList",
      apiVersion: "meta.k8s.io/v1",
      metadata: { resourceVersion },
      items: items.map((o) => ({
        kind: "PartialObjectMetadata",
        apiVersion: "meta.k8s.io/v1",
        metadata: o.metadata,
      })),
    });
    return;
  }
  sendJson(res, 200, {
    kind: listKind(type),
    apiVersion: apiVersionOf(type),
    metadata: { resourceVersion },
    items,
  });
}

/**
 * A watch: headers flushed at once (kubectl hangs otherwise, docs/kubectl-api.md §8), one JSON event per line, open until
 * the client leaves or `timeoutSeconds` passes. resourceVersion absent or "0": current objects first as ADDED.
 */
function watchCollection(
  deps: HandlerDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  type: ResourceType,
  namespace: string | undefined,
  form: OutputForm,
): void {
  const labels = parseLabelSelector(url.searchParams.get("labelSelector"));
  const fields = parseFieldSelector(url.searchParams.get("fieldSelector"));
  const matches = (o: KubeObject) =>
    matchesLabels(labels, o.metadata.labels as Record<string, string> | undefined) &&
    matchesRequirements(fields, (k) => fieldValue(o, k));
  const from = resourceVersionParam(url);
  const includeObject = url.searchParams.get("includeObject") ?? undefined;
  const encode = (type_: string, obj: KubeObject): string => {
    const presented = deps.api.present(type, obj);
    let object: unknown = presented;
    if (form === "table")
      object = buildTable(
        type,
        [presented],
        presented.metadata.resourceVersion,
        deps.now(),
        includeObject,
        false,
      );
    else if (form === "metadata")
      object = { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: presented.metadata };
    return `${JSON.stringify({ type: type_, object })}\n`;
  };
  const pending: string[] = [];
  let started = false;
  const write = (line: string) => {
    if (!started) pending.push(line);
    else res.write(line);
  };
  const stop = deps.hub.watch(
    { groupResource: groupResource(type), namespace: type.namespaced ? namespace : undefined, matches },
    from,
    (e) => write(encode(e.type, e.object)),
  );
  res.writeHead(200, {
    "Content-Type": "application/json",
    "Cache-Control": "no-cache, private",
    "Transfer-Encoding": "chunked",
  });
  res.flushHeaders();
  started = true;
  if (from === undefined) {
    for (const o of deps.api.list(type, namespace).items) if (matches(o)) res.write(encode("ADDED", o));
  }
  for (const line of pending) res.write(line);
  let timer: NodeJS.Timeout | undefined;
  let bookmarks: NodeJS.Timeout | undefined;
  const end = () => {
    stop();
    if (timer) clearTimeout(timer);
    if (bookmarks) clearInterval(bookmarks);
    if (!res.writableEnded) res.end();
  };
  const timeout = Number(url.searchParams.get("timeoutSeconds") ?? "0");
  if (timeout > 0) timer = setTimeout(end, timeout * 1000);
  if (url.searchParams.get("allowWatchBookmarks") === "true" && form === "object") {
    bookmarks = setInterval(() => {
      const bookmark = {
        kind: type.kind,
        apiVersion: apiVersionOf(type),
        metadata: { resourceVersion: String(deps.api.store.resourceVersion) },
      };
      res.write(`${JSON.stringify({ type: "BOOKMARK", object: bookmark })}\n`);
    }, 30_000);
  }
  req.on("close", end);
  res.on("close", end);
}

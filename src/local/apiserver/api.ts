/**
 * The API's verbs over the store, shared by the HTTP handlers and the in-process controllers (so pods the
 * ReplicaSet controller creates go through admission exactly like kubectl's): create, update (whole object
 * or a subresource), patch, delete (finalizers, graceful pod deletion, orphaning), with resourceVersion
 * preconditions, defaulting, built-in and CRD schema validation, admission and dry-run.
 *
 * Single writer: JavaScript runs one callback at a time, and every precondition is re-checked after the
 * last `await` (admission) and right before the synchronous store write.
 */

import { randomBytes, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { KubeObject, Store } from "../store/store.ts";
import { pruneUnknownBuiltinFields } from "./builtin-fields.ts";
import { type ClusterIpAllocator, createClusterIpAllocator, type HostAddressProbe } from "./cluster-ip.ts";
import { validateCustomResource } from "./crd-schema.ts";
import { applyDefaults, nowIso, validateBuiltin, validateName } from "./defaults.ts";
import type { Obj } from "./json.ts";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from "./patch.ts";
import {
  apiVersionOf,
  groupResource,
  hasStatus,
  type ResourceRegistry,
  type ResourceType,
} from "./resources.ts";
import {
  fieldValue,
  matchesLabels,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from "./selectors.ts";
import { checkShape } from "./shape.ts";
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  invalid,
  notFound,
  qualifiedResource,
  STALE_OBJECT,
} from "./status.ts";

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

export interface RequestContext {
  readonly dryRun: boolean;
  /** `Strict`, `Warn` or `Ignore` (kubectl sends `Strict` with `apply`/`create`). */
  readonly fieldValidation: string | undefined;
  readonly user: string;
  /** Warnings to return as `Warning: 299 - "..."` headers. */
  readonly warnings: string[];
}

export function internalContext(): RequestContext {
  return { dryRun: false, fieldValidation: "Ignore", user: "system:osmt-api-controller", warnings: [] };
}

export interface AdmissionAttributes {
  readonly operation: Operation;
  readonly type: ResourceType;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
  readonly object: KubeObject | undefined;
  readonly oldObject: KubeObject | undefined;
  readonly context: RequestContext;
  readonly options: Record<string, unknown>;
}

/** Admission as the real server runs it: mutating webhooks may rewrite the object; validating ones may only refuse. */
export interface Admission {
  mutate(attrs: AdmissionAttributes): Promise<KubeObject | undefined>;
  validate(attrs: AdmissionAttributes): Promise<void>;
}

export interface ListOptions {
  readonly labelSelector?: string | null;
  readonly fieldSelector?: string | null;
}

export interface DeleteOptions {
  readonly gracePeriodSeconds?: number;
  readonly propagationPolicy?: string;
  readonly preconditions?: { uid?: string; resourceVersion?: string };
}

/** As kube-apiserver's NamespaceLifecycle admission: these namespaces may not be deleted. */
const PROTECTED_NAMESPACES = new Set(["default", "kube-system", "kube-public"]);

const NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789";

/** Five characters from Kubernetes' safe alphabet, as generateName and pod names use. */
export function randomSuffix(length = 5): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += NAME_CHARS[b % NAME_CHARS.length];
  return out;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, value) =>
    value && typeof value === "object" && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}

/** Deep equality on JSON values, independent of key order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b);
}

/** Everything of an object except metadata and status: what bumps `metadata.generation`. */
function specOf(o: Obj): Obj {
  const { metadata: _m, status: _s, ...rest } = o;
  return rest;
}

export class Api {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  private readonly logger: Logger;
  private readonly clusterIps: ClusterIpAllocator;
  admission: Admission | undefined;

  constructor(store: Store, registry: ResourceRegistry, logger: Logger, hostAddresses: HostAddressProbe) {
    this.store = store;
    this.registry = registry;
    this.logger = logger;
    this.clusterIps = createClusterIpAllocator(hostAddresses);
  }

  /** Sets apiVersion/kind for the version asked for (CRD objects are stored once for all versions). */
  present(type: ResourceType, o: KubeObject): KubeObject {
    const out = clone(o);
    out.apiVersion = apiVersionOf(type);
    out.kind = type.kind;
    return out;
  }

  find(type: ResourceType, namespace: string, name: string): KubeObject | undefined {
    return this.store.get(groupResource(type), type.namespaced ? namespace : "", name);
  }

  get(type: ResourceType, namespace: string, name: string): KubeObject {
    const o = this.find(type, namespace, name);
    if (!o) throw notFound(type.group, type.resource, name);
    return this.present(type, o);
  }

  list(
    type: ResourceType,
    namespace: string | undefined,
    options: ListOptions = {},
  ): { items: KubeObject[]; resourceVersion: string } {
    const labels = parseLabelSelector(options.labelSelector);
    const fields = parseFieldSelector(options.fieldSelector);
    const items = this.store
      .list(groupResource(type), type.namespaced ? namespace : undefined)
      .filter((o) => matchesLabels(labels, o.metadata.labels as Record<string, string> | undefined))
      .filter((o) => matchesRequirements(fields, (k) => fieldValue(o, k)))
      .map((o) => this.present(type, o));
    return { items, resourceVersion: String(this.store.resourceVersion) };
  }

  private checkNamespace(type: ResourceType, namespace: string, creating: boolean, name = ""): void {
    if (!type.namespaced) return;
    const ns = this.store.get("/namespaces", "", namespace);
    if (!ns) throw notFound("", "namespaces", namespace);
    if (creating && (ns as Obj).metadata.deletionTimestamp) {
      throw new ApiError(
        403,
        "Forbidden",
        `${qualifiedResource(type.group, type.resource)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
      );
    }
  }

  /** The ClusterIPs Services hold now. */
  private usedClusterIps(): Set<string | undefined> {
    return new Set(this.store.list("/services").map((s) => (s as Obj).spec?.clusterIP));
  }

  private allocateClusterIP = (): string => this.clusterIps.allocate(this.usedClusterIps());

  /** Validation shared by create and update; returns the (CRD-pruned and defaulted) object. */
  private validate(type: ResourceType, obj: KubeObject, ctx: RequestContext): KubeObject {
    const causes = [];
    const nameCause = validateName(type, obj.metadata.name);
    if (nameCause) causes.push(nameCause);
    let out = obj;
    let unknownFields: string[];
    if (type.crd) {
      const result = validateCustomResource(obj, type.crd.schema);
      causes.push(...result.causes);
      unknownFields = result.unknownFields;
      out = result.value as KubeObject;
    } else {
      out = clone(obj);
      unknownFields = pruneUnknownBuiltinFields(type.kind, out as Obj);
      causes.push(...validateBuiltin(type, out));
    }
    if (unknownFields.length > 0) {
      if (ctx.fieldValidation === "Strict") {
        throw badRequest(
          `strict decoding error: ${unknownFields.map((f) => `unknown field "${f}"`).join(", ")}`,
        );
      }
      if (ctx.fieldValidation !== "Ignore")
        for (const f of unknownFields) ctx.warnings.push(`unknown field "${f}"`);
    }
    if (causes.length > 0) throw invalid(type.group, type.kind, obj.metadata.name, causes);
    return out;
  }

  private checkBody(
    type: ResourceType,
    body: unknown,
    namespace: string,
    name: string | undefined,
  ): KubeObject {
    if (!body || typeof body !== "object" || Array.isArray(body))
      throw badRequest("the request body must be a JSON object");
    checkShape(type.kind, type.version, body as Obj, type.crd !== undefined);
    const o = clone(body) as Obj;
    o.metadata ??= {};
    if (typeof o.kind === "string" && o.kind !== type.kind && o.kind !== "") {
      throw badRequest(
        `the API version in the data (${o.apiVersion}) and kind (${o.kind}) do not match the resource ${qualifiedResource(type.group, type.resource)} (${type.kind})`,
      );
    }
    if (type.namespaced) {
      if (o.metadata.namespace && o.metadata.namespace !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      o.metadata.namespace = namespace;
    } else {
      delete o.metadata.namespace;
    }
    if (name !== undefined && o.metadata.name !== undefined && o.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    if (name !== undefined) o.metadata.name = name;
    delete o.metadata.managedFields;
    delete o.metadata.selfLink;
    // A typed Go server never keeps nulls (`creationTimestamp: null` in a template, from kubectl): drop them
    // so equal objects compare equal (no-op updates, a rollback finding its ReplicaSet).
    if (!type.crd) dropNulls(o);
    o.apiVersion = apiVersionOf(type);
    o.kind = type.kind;
    return o as KubeObject;
  }

  async create(
    type: ResourceType,
    namespace: string,
    body: unknown,
    ctx: RequestContext,
  ): Promise<KubeObject> {
    const ns = type.namespaced ? namespace : "";
    let obj = this.checkBody(type, body, ns, undefined);
    const meta = obj.metadata as Obj;
    if (!meta.name && !meta.generateName) {
      throw invalid(type.group, type.kind, "", [
        {
          reason: "FieldValueRequired",
          field: "metadata.name",
          message: "Required value: name or generateName is required",
        },
      ]);
    }
    // As kube-apiserver: a generated name is chosen after mutating admission (webhooks see name "").
    const generate = !meta.name;
    if (generate) meta.name = "";
    this.checkNamespace(type, ns, true, meta.name);
    if (!generate && this.find(type, ns, obj.metadata.name))
      throw alreadyExists(type.group, type.resource, obj.metadata.name);
    const requestedIP: string | undefined =
      type.kind === "Service" && !type.crd ? (obj as Obj).spec?.clusterIP : undefined;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowIso();
    delete meta.deletionTimestamp;
    delete meta.resourceVersion;
    if (hasStatus(type) || type.crd) meta.generation = 1;
    if (type.crd?.schema && hasCrdStatus(type)) delete (obj as Obj).status;
    applyDefaults(type, obj, undefined, this.allocateClusterIP);
    obj = await this.admit("CREATE", type, "", obj, undefined, ctx, {});
    if (generate) {
      const prefix = String((obj.metadata as Obj).generateName ?? meta.generateName);
      do obj.metadata.name = `${prefix}${randomSuffix()}`;
      while (this.find(type, ns, obj.metadata.name));
    }
    obj = this.validate(type, obj, ctx);
    await this.admission?.validate(this.attrs("CREATE", type, "", obj, undefined, ctx, {}));
    this.checkNamespace(type, ns, true, meta.name);
    if (this.find(type, ns, obj.metadata.name))
      throw alreadyExists(type.group, type.resource, obj.metadata.name);
    if (type.kind === "Service" && !type.crd)
      this.clusterIps.recheck(obj as Obj, requestedIP, this.usedClusterIps());
    if (ctx.dryRun) return this.present(type, obj);
    return this.present(type, this.store.put(groupResource(type), ns, obj));
  }

  private attrs(
    op: Operation,
    type: ResourceType,
    subresource: string,
    obj: KubeObject | undefined,
    old: KubeObject | undefined,
    ctx: RequestContext,
    options: Record<string, unknown>,
  ): AdmissionAttributes {
    const name = obj?.metadata.name ?? old?.metadata.name ?? "";
    const namespace = (obj?.metadata.namespace ?? old?.metadata.namespace ?? "") as string;
    return {
      operation: op,
      type,
      subresource,
      namespace,
      name,
      object: obj,
      oldObject: old,
      context: ctx,
      options,
    };
  }

  private async admit(
    op: Operation,
    type: ResourceType,
    subresource: string,
    obj: KubeObject,
    old: KubeObject | undefined,
    ctx: RequestContext,
    options: Record<string, unknown>,
  ): Promise<KubeObject> {
    if (!this.admission) return obj;
    const mutated = await this.admission.mutate(this.attrs(op, type, subresource, obj, old, ctx, options));
    if (!mutated) return obj;
    // A webhook may not change identity fields.
    const m = mutated.metadata as Obj;
    m.name = obj.metadata.name;
    m.namespace = obj.metadata.namespace;
    m.uid = (obj.metadata as Obj).uid;
    if (!type.namespaced) delete m.namespace;
    return mutated;
  }

  /**
   * Replaces an object (PUT), or one subresource of it (`status`). `mutate`, when given, computes the new
   * object from the current one (patch): it is re-run on a resourceVersion race instead of failing.
   */
  update(
    type: ResourceType,
    namespace: string,
    name: string,
    body: unknown,
    ctx: RequestContext,
    subresource = "",
  ): Promise<KubeObject> {
    return this.write(type, namespace, name, { body }, ctx, subresource);
  }

  /** Read-modify-write: `fn` gets the current object (as presented) and returns the new one; re-run on races. */
  mutate(
    type: ResourceType,
    namespace: string,
    name: string,
    fn: (current: KubeObject) => unknown,
    ctx: RequestContext,
    subresource = "",
  ): Promise<KubeObject> {
    return this.write(type, namespace, name, { fn }, ctx, subresource);
  }

  private async write(
    type: ResourceType,
    namespace: string,
    name: string,
    change: { body: unknown } | { fn: (current: KubeObject) => unknown },
    ctx: RequestContext,
    subresource: string,
  ): Promise<KubeObject> {
    const ns = type.namespaced ? namespace : "";
    for (let attempt = 0; ; attempt++) {
      const current = this.find(type, ns, name);
      if (!current) throw notFound(type.group, type.resource, name);
      const isPatch = "fn" in change;
      const body = "fn" in change ? change.fn(this.present(type, current)) : change.body;
      let obj = this.checkBody(type, body, ns, name);
      const wantRv = (obj.metadata as Obj).resourceVersion;
      if (wantRv && wantRv !== current.metadata.resourceVersion && !isPatch) {
        throw conflict(type.group, type.resource, name, STALE_OBJECT);
      }
      obj = this.mergeSubresource(type, current, obj, subresource);
      obj = await this.admit("UPDATE", type, subresource, obj, this.present(type, current), ctx, {});
      obj = subresource === "" ? this.validate(type, obj, ctx) : obj;
      await this.admission?.validate(
        this.attrs("UPDATE", type, subresource, obj, this.present(type, current), ctx, {}),
      );
      const latest = this.find(type, ns, name);
      if (!latest) throw notFound(type.group, type.resource, name);
      if (latest.metadata.resourceVersion !== current.metadata.resourceVersion) {
        // Raced with another writer during admission: a patch or an unconditional PUT re-applies to the new
        // state; a PUT that named a resourceVersion conflicts.
        if ((isPatch || !wantRv) && attempt < 5) continue;
        throw conflict(type.group, type.resource, name, STALE_OBJECT);
      }
      if (wantRv && isPatch && wantRv !== current.metadata.resourceVersion) {
        throw conflict(type.group, type.resource, name, STALE_OBJECT);
      }
      return this.commitUpdate(type, ns, current, obj, ctx);
    }
  }

  /** Keeps the server-owned parts: status for the main endpoint, everything but status for `/status`. */
  private mergeSubresource(
    type: ResourceType,
    current: KubeObject,
    obj: KubeObject,
    subresource: string,
  ): KubeObject {
    const cur = current as Obj;
    const o = obj as Obj;
    const meta = o.metadata;
    const curMeta = cur.metadata;
    let out: Obj;
    if (subresource === "status") {
      out = clone(cur);
      if (o.status === undefined) delete out.status;
      else out.status = o.status;
    } else {
      out = o;
      const statusSeparate = hasStatus(type) || (type.crd !== undefined && hasCrdStatus(type));
      if (statusSeparate) {
        if (cur.status === undefined) delete out.status;
        else out.status = clone(cur.status);
      }
    }
    const m = out.metadata;
    if (subresource !== "status") {
      m.labels = meta.labels;
      m.annotations = meta.annotations;
      m.finalizers = meta.finalizers;
      m.ownerReferences = meta.ownerReferences;
      for (const k of ["labels", "annotations", "finalizers", "ownerReferences"])
        if (m[k] === undefined) delete m[k];
    }
    m.uid = curMeta.uid;
    m.creationTimestamp = curMeta.creationTimestamp;
    m.name = curMeta.name;
    if (curMeta.namespace) m.namespace = curMeta.namespace;
    if (curMeta.deletionTimestamp) {
      m.deletionTimestamp = curMeta.deletionTimestamp;
      m.deletionGracePeriodSeconds = curMeta.deletionGracePeriodSeconds;
    } else {
      delete m.deletionTimestamp;
      delete m.deletionGracePeriodSeconds;
    }
    if (curMeta.generation !== undefined) m.generation = curMeta.generation;
    if (curMeta.generation !== undefined && subresource === "" && !jsonEqual(specOf(out), specOf(cur)))
      m.generation = curMeta.generation + 1;
    m.resourceVersion = curMeta.resourceVersion;
    if (subresource === "") applyDefaults(type, out as KubeObject, current, this.allocateClusterIP);
    return out as KubeObject;
  }

  private commitUpdate(
    type: ResourceType,
    ns: string,
    current: KubeObject,
    obj: KubeObject,
    ctx: RequestContext,
  ): KubeObject {
    const meta = obj.metadata as Obj;
    // A no-op write keeps the resourceVersion (kubectl prints "patched (no change)" / "unchanged").
    if (jsonEqual(obj, current)) return this.present(type, current);
    if (ctx.dryRun) return this.present(type, obj);
    const finalizersDone = !meta.finalizers || meta.finalizers.length === 0;
    const podDone = type.kind !== "Pod" || meta.deletionGracePeriodSeconds === 0;
    if (meta.deletionTimestamp && finalizersDone && podDone && type.kind !== "Namespace") {
      return this.present(type, this.store.remove(groupResource(type), ns, obj.metadata.name) ?? obj);
    }
    return this.present(type, this.store.put(groupResource(type), ns, obj));
  }

  /** Applies a patch of `contentType` to the current object and stores the result (retrying on races). */
  async patch(
    type: ResourceType,
    namespace: string,
    name: string,
    contentType: string,
    patch: unknown,
    ctx: RequestContext,
    subresource = "",
  ): Promise<KubeObject> {
    const ct = contentType.split(";")[0]?.trim() ?? "";
    let apply: (current: KubeObject) => unknown;
    if (ct === "application/merge-patch+json") apply = (c) => applyMergePatch(c, patch);
    else if (ct === "application/json-patch+json") apply = (c) => applyJsonPatch(c, patch);
    else if (ct === "application/apply-patch+yaml") {
      // Server-side apply, simplified: no managed fields, so no conflicts and no removal of fields the
      // configuration dropped; the configuration is merged (strategically for built-in kinds) or creates.
      if (subresource === "" && !this.find(type, namespace, name))
        return this.create(type, namespace, patch, ctx);
      apply = (c) => (type.crd ? applyMergePatch(c, patch) : applyStrategicMergePatch(c, patch, type.kind));
    } else if (ct === "application/strategic-merge-patch+json") {
      if (type.crd) {
        throw new ApiError(
          415,
          "UnsupportedMediaType",
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
        );
      }
      apply = (c) => applyStrategicMergePatch(c, patch, type.kind);
    } else {
      throw new ApiError(
        415,
        "UnsupportedMediaType",
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml`,
      );
    }
    return this.mutate(type, namespace, name, apply, ctx, subresource);
  }

  /**
   * Deletes an object. Objects with finalizers, namespaces and pods a node has started get a
   * deletionTimestamp first (the owner of the finalizer, the namespace controller or the node agent then
   * finishes the job); everything else is removed at once.
   */
  async delete(
    type: ResourceType,
    namespace: string,
    name: string,
    options: DeleteOptions,
    ctx: RequestContext,
  ): Promise<{ object: KubeObject; removed: boolean }> {
    const ns = type.namespaced ? namespace : "";
    const current = this.find(type, ns, name);
    if (!current) throw notFound(type.group, type.resource, name);
    if (type.kind === "Namespace" && !type.crd && PROTECTED_NAMESPACES.has(name)) {
      throw new ApiError(
        403,
        "Forbidden",
        `namespaces "${name}" is forbidden: this namespace may not be deleted`,
      );
    }
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== (current.metadata as Obj).uid) {
      throw conflict(
        type.group,
        type.resource,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${(current.metadata as Obj).uid}`,
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(
        type.group,
        type.resource,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    }
    await this.admission?.validate(
      this.attrs(
        "DELETE",
        type,
        "",
        undefined,
        this.present(type, current),
        ctx,
        options as Record<string, unknown>,
      ),
    );
    const latest = this.find(type, ns, name);
    if (!latest) throw notFound(type.group, type.resource, name);
    if (ctx.dryRun) return { object: this.present(type, latest), removed: false };
    const cur = latest as Obj;
    if (options.propagationPolicy === "Orphan") this.orphanDependents(cur.metadata.uid, ns);
    const finalizers: string[] = cur.metadata.finalizers ?? [];
    const grace = this.gracefulPeriod(type, cur, options);
    if (type.kind !== "Namespace" && grace === undefined && finalizers.length === 0) {
      return {
        object: this.present(type, this.store.remove(groupResource(type), ns, name) ?? latest),
        removed: true,
      };
    }
    const updated = clone(cur);
    if (!updated.metadata.deletionTimestamp) {
      updated.metadata.deletionTimestamp = nowIso();
      updated.metadata.deletionGracePeriodSeconds = grace ?? 0;
    } else if (
      grace !== undefined &&
      grace < (updated.metadata.deletionGracePeriodSeconds ?? Number.POSITIVE_INFINITY)
    ) {
      updated.metadata.deletionGracePeriodSeconds = grace;
    }
    if (type.kind === "Namespace") updated.status = { ...(updated.status ?? {}), phase: "Terminating" };
    if (jsonEqual(updated, cur)) return { object: this.present(type, latest), removed: false };
    return {
      object: this.present(type, this.store.put(groupResource(type), ns, updated as KubeObject)),
      removed: false,
    };
  }

  /**
   * A pod that a node has started (it reported container statuses) and is not finished is stopped by the
   * node agent within its grace period; the agent then deletes it with gracePeriodSeconds=0. Any other pod
   * goes at once: no process runs for it.
   */
  private gracefulPeriod(type: ResourceType, pod: Obj, options: DeleteOptions): number | undefined {
    if (type.kind !== "Pod") return undefined;
    const grace = options.gracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    const started =
      Array.isArray(pod.status?.containerStatuses) || Array.isArray(pod.status?.initContainerStatuses);
    const finished = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
    if (grace <= 0 || !started || finished) return undefined;
    return grace;
  }

  private orphanDependents(uid: string, namespace: string): void {
    for (const gr of this.store.groupResources()) {
      for (const o of this.store.list(gr, namespace || undefined)) {
        const refs: Obj[] = (o.metadata as Obj).ownerReferences ?? [];
        if (!refs.some((r) => r.uid === uid)) continue;
        const updated = clone(o) as Obj;
        updated.metadata.ownerReferences = refs.filter((r) => r.uid !== uid);
        if (updated.metadata.ownerReferences.length === 0) delete updated.metadata.ownerReferences;
        this.store.put(gr, o.metadata.namespace ?? "", updated as unknown as KubeObject);
      }
    }
  }

  /** Removes a pod or namespace for good (the node agent's final delete, the namespace controller's last step). */
  finalize(type: ResourceType, namespace: string, name: string): void {
    this.store.remove(groupResource(type), type.namespaced ? namespace : "", name);
  }

  /** Deletes every object matched by the selectors; returns the list of those deleted or marked. */
  async deleteCollection(
    type: ResourceType,
    namespace: string | undefined,
    list: ListOptions,
    options: DeleteOptions,
    ctx: RequestContext,
  ): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const o of this.list(type, namespace, list).items) {
      try {
        out.push((await this.delete(type, o.metadata.namespace ?? "", o.metadata.name, options, ctx)).object);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 404)) throw error;
      }
    }
    return out;
  }

  logError(error: unknown, what: string): void {
    this.logger.error({ err: error }, what);
  }
}

function dropNulls(v: unknown): void {
  if (Array.isArray(v)) {
    for (const item of v) dropNulls(item);
  } else if (v && typeof v === "object") {
    const o = v as Obj;
    for (const [k, value] of Object.entries(o)) {
      if (value === null) delete o[k];
      else dropNulls(value);
    }
  }
}

/** Whether a CRD version declares the status subresource. */
export function hasCrdStatus(type: ResourceType): boolean {
  return type.subresources.includes("status");
}

/**
 * Admission as kube-apiserver runs it: the MutatingWebhookConfigurations and
 * ValidatingWebhookConfigurations stored here are called over HTTPS (trusting only their `caBundle`) with
 * real `admission.k8s.io/v1` AdmissionReviews. Honoured: rules (operations, apiGroups, apiVersions,
 * resources incl. `*` and subresources, scope), namespaceSelector, objectSelector, failurePolicy,
 * sideEffects under dry-run, timeoutSeconds; mutating webhooks run in name order and their JSON patches
 * apply in turn; validating webhooks run after. A denial is `admission webhook "<name>" denied the
 * request: <message>`; warnings come back as Warning headers. Not supported: matchConditions (CEL) and
 * reinvocationPolicy.
 *
 * A `clientConfig.service` reference resolves through the Service's Endpoints (first ready address, the
 * port by targetPort), so a webhook running on the host is reachable via a selector-less Service with
 * hand-written Endpoints; the TLS server name is `<service>.<namespace>.svc`.
 */

import { randomUUID } from "node:crypto";
import { request } from "node:https";
import jsonPatch from "fast-json-patch";
import type { Logger } from "pino";
import { formatHost } from "../../net/host-port.ts";
import type { KubeObject } from "../store/store.ts";
import type { Admission, AdmissionAttributes, Api } from "./api.ts";
import type { Obj } from "./json.ts";
import { labelSelectorRequirements, matchesLabels } from "./selectors.ts";
import { ApiError } from "./status.ts";

const MUTATING = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const VALIDATING = "admissionregistration.k8s.io/validatingwebhookconfigurations";

function listMatches(list: string[] | undefined, value: string): boolean {
  return (list ?? []).some((x) => x === "*" || x === value);
}

function resourceMatches(patterns: string[] | undefined, resource: string, subresource: string): boolean {
  return (patterns ?? []).some((p) => {
    const [pr = "", ps] = p.split("/");
    if (ps === undefined) return subresource === "" && (pr === "*" || pr === resource);
    return (pr === "*" || pr === resource) && (ps === "*" || ps === subresource);
  });
}

/** Whether one webhook's rules select this request. */
export function rulesMatch(webhook: Obj, attrs: AdmissionAttributes): boolean {
  const t = attrs.type;
  return (webhook.rules ?? []).some((rule: Obj) => {
    const scope = rule.scope ?? "*";
    if (scope === "Cluster" && t.namespaced) return false;
    if (scope === "Namespaced" && !t.namespaced) return false;
    return (
      listMatches(rule.operations, attrs.operation) &&
      listMatches(rule.apiGroups, t.group) &&
      listMatches(rule.apiVersions, t.version) &&
      resourceMatches(rule.resources, t.resource, attrs.subresource)
    );
  });
}

export class WebhookAdmission implements Admission {
  private readonly api: Api;
  private readonly logger: Logger;

  constructor(api: Api, logger: Logger) {
    this.api = api;
    this.logger = logger;
  }

  private webhooks(gr: string): { name: string; hook: Obj }[] {
    return this.api.store
      .list(gr)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .flatMap((cfg) =>
        ((cfg as Obj).webhooks ?? []).map((hook: Obj) => ({ name: hook.name as string, hook })),
      );
  }

  /** Webhook configurations never go through webhooks (as in Kubernetes: it would allow locking oneself out). */
  private exempt(attrs: AdmissionAttributes): boolean {
    return attrs.type.group === "admissionregistration.k8s.io";
  }

  private selected(hook: Obj, attrs: AdmissionAttributes): boolean {
    if (!rulesMatch(hook, attrs)) return false;
    const objectLabels = (o: KubeObject | undefined) =>
      o?.metadata.labels as Record<string, string> | undefined;
    const objSel = labelSelectorRequirements(hook.objectSelector);
    if (
      objSel.length > 0 &&
      !matchesLabels(objSel, objectLabels(attrs.object)) &&
      !matchesLabels(objSel, objectLabels(attrs.oldObject))
    )
      return false;
    const nsSel = labelSelectorRequirements(hook.namespaceSelector);
    if (nsSel.length > 0) {
      let labels: Record<string, string> | undefined;
      if (attrs.type.kind === "Namespace" && attrs.type.group === "")
        labels = objectLabels(attrs.object ?? attrs.oldObject);
      else if (attrs.type.namespaced)
        labels = this.api.store.get("/namespaces", "", attrs.namespace)?.metadata.labels as
          | Record<string, string>
          | undefined;
      else return true;
      if (!matchesLabels(nsSel, labels)) return false;
    }
    return true;
  }

  async mutate(attrs: AdmissionAttributes): Promise<KubeObject | undefined> {
    if (this.exempt(attrs) || attrs.operation === "DELETE") return undefined;
    let object = attrs.object;
    let changed = false;
    for (const { name, hook } of this.webhooks(MUTATING)) {
      const current = { ...attrs, object };
      if (!this.selected(hook, current)) continue;
      const response = await this.call(name, hook, current);
      if (!response) continue;
      if (response.patch) {
        if (response.patchType !== "JSONPatch")
          throw new ApiError(
            500,
            "InternalError",
            `Internal error occurred: webhook "${name}" returned patchType ${response.patchType}, expected JSONPatch`,
          );
        try {
          const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
          object = jsonPatch.applyPatch(structuredClone(object), ops, true, false).newDocument as KubeObject;
          changed = true;
        } catch (error) {
          throw new ApiError(
            500,
            "InternalError",
            `Internal error occurred: JSON patch from webhook "${name}" cannot be applied: ${(error as Error).message}`,
          );
        }
      }
    }
    return changed ? object : undefined;
  }

  async validate(attrs: AdmissionAttributes): Promise<void> {
    if (this.exempt(attrs)) return;
    const hooks = this.webhooks(VALIDATING).filter(({ hook }) => this.selected(hook, attrs));
    await Promise.all(hooks.map(({ name, hook }) => this.call(name, hook, attrs)));
  }

  /** Calls one webhook; throws its denial, or its failure when failurePolicy is Fail. */
  private async call(name: string, hook: Obj, attrs: AdmissionAttributes): Promise<Obj | undefined> {
    const sideEffects = hook.sideEffects ?? "Unknown";
    if (attrs.context.dryRun && sideEffects !== "None" && sideEffects !== "NoneOnDryRun") {
      throw new ApiError(400, "BadRequest", `admission webhook "${name}" does not support dry run`);
    }
    const uid = randomUUID();
    const t = attrs.type;
    const gvk = {
      group: t.group,
      version: t.version,
      kind: attrs.subresource === "scale" ? "Scale" : t.kind,
    };
    const gvr = { group: t.group, version: t.version, resource: t.resource };
    const optionsKind = {
      CREATE: "CreateOptions",
      UPDATE: "UpdateOptions",
      DELETE: "DeleteOptions",
      CONNECT: "",
    }[attrs.operation];
    const review = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid,
        kind: gvk,
        resource: gvr,
        ...(attrs.subresource ? { subResource: attrs.subresource } : {}),
        requestKind: gvk,
        requestResource: gvr,
        ...(attrs.subresource ? { requestSubResource: attrs.subresource } : {}),
        name: attrs.name,
        ...(t.namespaced ? { namespace: attrs.namespace } : {}),
        operation: attrs.operation,
        userInfo: { username: attrs.context.user, groups: ["system:masters", "system:authenticated"] },
        object: attrs.object ?? null,
        oldObject: attrs.oldObject ?? null,
        dryRun: attrs.context.dryRun,
        options: { apiVersion: "meta.k8s.io/v1", kind: optionsKind, ...attrs.options },
      },
    };
    let response: Obj;
    try {
      const body = await this.post(hook, JSON.stringify(review));
      response = body?.response;
      if (!response || response.uid !== uid)
        throw new Error(`expected response.uid="${uid}", got "${response?.uid ?? ""}"`);
    } catch (error) {
      const message = `failed calling webhook "${name}": ${(error as Error).message}`;
      if ((hook.failurePolicy ?? "Fail") === "Ignore") {
        this.logger.warn({ webhook: name, err: error }, "webhook failed; failurePolicy Ignore");
        return undefined;
      }
      throw new ApiError(500, "InternalError", `Internal error occurred: ${message}`);
    }
    for (const w of response.warnings ?? []) attrs.context.warnings.push(String(w));
    if (!response.allowed) {
      const result: Obj = response.status ?? {};
      const code = typeof result.code === "number" && result.code >= 400 ? result.code : 400;
      const deniedBy = `admission webhook "${name}" denied the request`;
      const message = result.message
        ? `${deniedBy}: ${result.message}`
        : result.reason
          ? `${deniedBy}: ${result.reason}`
          : `${deniedBy} without explanation`;
      throw new ApiError(code, result.reason ?? "", message, result.details);
    }
    return response;
  }

  private endpointFor(hook: Obj): { url: URL; servername: string } {
    const cc = hook.clientConfig ?? {};
    if (cc.url) {
      const url = new URL(cc.url);
      return { url, servername: url.hostname.replace(/^\[|\]$/g, "") };
    }
    const svcRef = cc.service;
    if (!svcRef) throw new Error("clientConfig has neither url nor service");
    const port = svcRef.port ?? 443;
    const svc = this.api.store.get("/services", svcRef.namespace, svcRef.name) as Obj | undefined;
    if (!svc) throw new Error(`service "${svcRef.namespace}/${svcRef.name}" not found`);
    const sp = (svc.spec?.ports ?? []).find((p: Obj) => p.port === port);
    if (!sp) throw new Error(`service "${svcRef.namespace}/${svcRef.name}" has no port ${port}`);
    const ep = this.api.store.get("/endpoints", svcRef.namespace, svcRef.name) as Obj | undefined;
    for (const subset of ep?.subsets ?? []) {
      const address = subset.addresses?.[0]?.ip;
      const epPort =
        (subset.ports ?? []).find((p: Obj) => (sp.name ? p.name === sp.name : true))?.port ??
        (typeof sp.targetPort === "number" ? sp.targetPort : port);
      if (address) {
        const host = formatHost(address);
        return {
          url: new URL(`https://${host}:${epPort}${svcRef.path ?? "/"}`),
          servername: `${svcRef.name}.${svcRef.namespace}.svc`,
        };
      }
    }
    throw new Error(`no endpoints available for service "${svcRef.name}"`);
  }

  private post(hook: Obj, body: string): Promise<Obj> {
    const { url, servername } = this.endpointFor(hook);
    const caBundle = hook.clientConfig?.caBundle
      ? Buffer.from(hook.clientConfig.caBundle, "base64").toString("utf8")
      : undefined;
    const timeoutMs = (hook.timeoutSeconds ?? 10) * 1000;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          ca: caBundle,
          servername: /^[\d.]+$|:/.test(servername) ? undefined : servername,
          headers: {
            "Content-Type": "application/json",
            Accept: "application/json",
            "Content-Length": Buffer.byteLength(body),
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if ((res.statusCode ?? 0) >= 300)
              return reject(
                new Error(`the server responded with status ${res.statusCode}: ${text.slice(0, 200)}`),
              );
            try {
              resolve(JSON.parse(text) as Obj);
            } catch {
              reject(new Error(`cannot decode the webhook response: ${text.slice(0, 200)}`));
            }
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () =>
        req.destroy(new Error(`context deadline exceeded (timeout ${timeoutMs / 1000}s)`)),
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}

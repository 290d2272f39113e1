/**
 * AdmissionReview v1 (admission.k8s.io/v1): the request kube-apiserver sends a webhook and the response it
 * expects. Pure: parsing a review, building responses. Field names follow k8s.io/api/admission/v1.
 */
import type { JsonPatchOperation } from "../injector/types.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly resource?: { group: string; version: string; resource: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  readonly userInfo?: { username?: string; uid?: string; groups?: string[] };
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

/** A metav1.Status as kubectl prints it: `admission webhook "<name>" denied the request: <message>`. */
export interface AdmissionStatus {
  readonly code: number;
  readonly message: string;
  readonly reason?: string;
  readonly details?: { readonly causes: readonly { field: string; message: string; reason?: string }[] };
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  /** base64 of an RFC 6902 JSON patch. */
  readonly patch?: string;
  readonly patchType?: "JSONPatch";
  /** Shown by kubectl as `Warning: ...` lines (Kubernetes 1.19+). */
  readonly warnings?: readonly string[];
}

export interface AdmissionReview {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: "AdmissionReview";
  readonly request?: AdmissionRequest;
  readonly response?: AdmissionResponse;
}

/** What a webhook handler decides, before it is wrapped into a response carrying the request's uid. */
export type AdmissionDecision =
  | {
      readonly allowed: true;
      readonly patch?: readonly JsonPatchOperation[];
      readonly warnings?: readonly string[];
    }
  | { readonly allowed: false; readonly status: AdmissionStatus; readonly warnings?: readonly string[] };

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks the envelope only (apiVersion, kind, request.uid/operation); handlers check the object itself. */
export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isRecord(body)) return { ok: false, reason: "body is not a JSON object" };
  if (body["apiVersion"] !== ADMISSION_API_VERSION) {
    return {
      ok: false,
      reason: `apiVersion ${JSON.stringify(body["apiVersion"])} is not supported; expected "${ADMISSION_API_VERSION}"`,
    };
  }
  if (body["kind"] !== "AdmissionReview") {
    return { ok: false, reason: `kind ${JSON.stringify(body["kind"])} is not "AdmissionReview"` };
  }
  const request = body["request"];
  if (!isRecord(request)) return { ok: false, reason: "request is missing" };
  if (typeof request["uid"] !== "string" || request["uid"] === "") {
    return { ok: false, reason: "request.uid is missing" };
  }
  if (typeof request["operation"] !== "string") return { ok: false, reason: "request.operation is missing" };
  if (!isRecord(request["kind"])) return { ok: false, reason: "request.kind is missing" };
  return { ok: true, request: request as unknown as AdmissionRequest };
}

/** Wraps a decision into the AdmissionReview the API server expects back (same apiVersion, same uid). */
export function buildAdmissionReview(uid: string, decision: AdmissionDecision): AdmissionReview {
  const warnings = decision.warnings && decision.warnings.length > 0 ? decision.warnings : undefined;
  if (!decision.allowed) {
    return {
      apiVersion: ADMISSION_API_VERSION,
      kind: "AdmissionReview",
      response: { uid, allowed: false, status: decision.status, ...(warnings ? { warnings } : {}) },
    };
  }
  const patch =
    decision.patch && decision.patch.length > 0
      ? {
          patch: Buffer.from(JSON.stringify(decision.patch)).toString("base64"),
          patchType: "JSONPatch" as const,
        }
      : {};
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: "AdmissionReview",
    response: { uid, allowed: true, ...patch, ...(warnings ? { warnings } : {}) },
  };
}

/** A denial as OSM's webhook.AdmissionError builds it: the message is the error text. */
export function denied(message: string, code = 403, reason = "Forbidden"): AdmissionDecision {
  return { allowed: false, status: { code, message, reason } };
}

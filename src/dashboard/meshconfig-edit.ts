/**
 * The MeshConfig editor's server side: the edited `spec.traffic` (YAML or JSON text) becomes one JSON merge
 * patch of `osm-mesh-config`, sent through the API server with the user's credentials, as a dry run
 * (`dryRun=All`: admission, the MeshConfig validator included, answers and nothing is stored) or for real.
 * The answer is the server's own: its admission warnings, or the field causes of its refusal.
 */
import {
  ApiException,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { parseDocument } from "yaml";
import { MESH_CONFIG_GROUP, MESH_CONFIG_NAME } from "../constants.ts";
import { apiErrorMessage } from "../edge/kube-client.ts";
import type { FieldProblem, MeshConfigAnswer } from "./wire.ts";

/**
 * The merge patch that makes `spec.traffic` equal `edited`: its keys as given, and `null` (delete) for each key
 * of `current` it no longer has (a merge patch otherwise keeps them).
 */
export function trafficPatch(
  current: Readonly<Record<string, unknown>>,
  edited: Readonly<Record<string, unknown>>,
): { spec: { traffic: Record<string, unknown> } } {
  const traffic: Record<string, unknown> = { ...edited };
  for (const key of Object.keys(current)) if (!(key in edited)) traffic[key] = null;
  return { spec: { traffic } };
}

/** The edited text (YAML; JSON is YAML) → an object, or the problem with it. */
export function parseTrafficText(text: string): Record<string, unknown> | FieldProblem {
  const doc = parseDocument(text);
  const error = doc.errors[0];
  if (error) {
    const line = error.linePos?.[0]?.line;
    const value = line === undefined ? text.trim() : (text.split("\n")[line - 1] ?? "").trim();
    return { field: "spec.traffic", value, reason: `is not valid YAML: ${error.message.split("\n")[0]}` };
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    return { field: "spec.traffic", value: text.trim(), reason: "must be a mapping of traffic settings" };
  }
  return value as Record<string, unknown>;
}

/** The texts of a `Warning` header: `299 - "text", 299 - "other"` → [text, other]. */
export function parseWarningHeader(header: string | undefined): string[] {
  if (!header) return [];
  const out: string[] = [];
  for (const m of header.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g))
    out.push((m[1] ?? "").replace(/\\(.)/g, "$1"));
  return out;
}

/**
 * One cause of a refusal (`Invalid value: "203.0.113.10/33": is not a valid CIDR: … (hint: …)`) → field,
 * value, reason and hint.
 */
export function parseCause(field: string, message: string): FieldProblem {
  const m = /^Invalid value: ("(?:[^"\\]|\\.)*"|[^:]*): ([\s\S]*)$/.exec(message);
  if (!m) return { field, value: "", reason: message };
  const rest = m[2] ?? "";
  const hint = /^([\s\S]*) \(hint: ([\s\S]*)\)$/.exec(rest);
  return {
    field,
    value: m[1] ?? "",
    reason: hint ? (hint[1] ?? "") : rest,
    ...(hint ? { hint: hint[2] ?? "" } : {}),
  };
}

/** The Status an API error carries (its body), if any. */
function statusOf(error: unknown): {
  message?: string;
  details?: { causes?: { field?: string; message?: string }[] };
} {
  if (!(error instanceof ApiException)) return {};
  const body: unknown = error.body;
  if (typeof body === "string") {
    try {
      return JSON.parse(body) as ReturnType<typeof statusOf>;
    } catch {
      return { message: body };
    }
  }
  return (body ?? {}) as ReturnType<typeof statusOf>;
}

export interface MeshConfigPatchTarget {
  readonly kubeConfig: KubeConfig;
  readonly osmNamespace: string;
}

/** Sends `text` as the new `spec.traffic` (dry run or for real) and returns the server's answer. */
export async function patchTraffic(
  target: MeshConfigPatchTarget,
  current: Readonly<Record<string, unknown>>,
  text: string,
  dryRun: boolean,
): Promise<MeshConfigAnswer> {
  const edited = parseTrafficText(text);
  if ("field" in edited && "reason" in edited && typeof edited.reason === "string") {
    return { ok: false, dryRun, warnings: [], problems: [edited as FieldProblem] };
  }
  const custom = target.kubeConfig.makeApiClient(CustomObjectsApi);
  try {
    const answer = await custom.patchNamespacedCustomObjectWithHttpInfo(
      {
        group: MESH_CONFIG_GROUP,
        version: "v1alpha2",
        namespace: target.osmNamespace,
        plural: "meshconfigs",
        name: MESH_CONFIG_NAME,
        body: trafficPatch(current, edited as Record<string, unknown>),
        ...(dryRun ? { dryRun: "All" } : {}),
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    return { ok: true, dryRun, warnings: parseWarningHeader(answer.headers["warning"]), problems: [] };
  } catch (error) {
    const status = statusOf(error);
    const problems = (status.details?.causes ?? []).map((c) => parseCause(c.field ?? "", c.message ?? ""));
    return { ok: false, dryRun, warnings: [], problems, message: status.message ?? apiErrorMessage(error) };
  }
}

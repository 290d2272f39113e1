/**
 * `/validate-meshconfig`: the MeshConfig validator OSM never had. The same `validateMeshConfig` as the CLI;
 * a denial lists every problem as kubectl users expect (`<field>: Invalid value: "<value>": <reason>`) with
 * the fix; footguns and restart-needed changes come back as admission warnings, which kubectl prints.
 */
import {
  buildEffectivePolicy,
  RECORDED_FIELDS,
  RECORDED_LIST_FIELDS,
  validateMeshConfig,
} from "../config/index.ts";
import { MESH_CONFIG_NAME } from "../constants.ts";
import { ConfigError, type ConfigIssue } from "../errors.ts";
import type { AdmissionDecision, AdmissionRequest } from "./admission.ts";
import type { AdmissionHandler } from "./webhook-server.ts";

/** Fields baked into osm-init at pod creation (docs/osm-behaviour.md §5.2): changing them needs a pod restart. */
export const INIT_TIME_FIELDS: readonly string[] = [
  ...RECORDED_FIELDS,
  "sidecar.enablePrivilegedInitContainer",
  "sidecar.initContainerImage",
  "sidecar.envoyImage",
  "sidecar.envoyWindowsImage",
  "sidecar.logLevel",
];

/** One issue as kube-apiserver words a field error, plus our hint. */
export function formatFieldError(issue: ConfigIssue): string {
  const value = issue.value === undefined ? "<missing>" : JSON.stringify(issue.value);
  const hint = issue.hint ? ` (hint: ${issue.hint})` : "";
  return `${issue.path}: Invalid value: ${value}: ${issue.reason}${hint}`;
}

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function restartWarnings(request: AdmissionRequest): string[] {
  if (request.operation !== "UPDATE" || !request.oldObject) return [];
  const changed = INIT_TIME_FIELDS.filter(
    (f) =>
      JSON.stringify(get(request.object, `spec.${f}`)) !==
      JSON.stringify(get(request.oldObject, `spec.${f}`)),
  );
  if (changed.length === 0) return [];
  return [
    `spec.${changed.join(", spec.")} changed: running pods keep what they were created with until restarted (e.g. kubectl rollout restart deployment <name> -n <namespace>)`,
  ];
}

/**
 * Changes nobody would notice otherwise: egress turned back on by removing or nulling `enableEgress` (the
 * default is true), a MeshConfig nothing reads (only osm-mesh-config is), entries listed twice.
 */
export function silentChangeWarnings(request: AdmissionRequest): string[] {
  const warnings: string[] = [];
  const name = get(request.object, "metadata.name");
  if (name !== MESH_CONFIG_NAME) {
    warnings.push(
      `meshconfig-not-read: MeshConfig ${JSON.stringify(name)} is ignored: the controller and the injector read only ${MESH_CONFIG_NAME} in the OSM namespace (put these settings there)`,
    );
  }
  const was = get(request.oldObject, "spec.traffic.enableEgress");
  const now = get(request.object, "spec.traffic.enableEgress");
  if (request.operation === "UPDATE" && was === false && (now === undefined || now === null)) {
    warnings.push(
      "egress-enabled-by-default: spec.traffic.enableEgress was removed, so egress is now enabled (the default): sidecars pass non-mesh destinations through; set it to false to keep egress disabled",
    );
  }
  for (const field of RECORDED_LIST_FIELDS) {
    const list = get(request.object, `spec.${field}`);
    if (!Array.isArray(list)) continue;
    const counts = new Map<string, number>();
    for (const item of list) counts.set(JSON.stringify(item), (counts.get(JSON.stringify(item)) ?? 0) + 1);
    for (const [item, count] of counts) {
      if (count > 1)
        warnings.push(`duplicate-entry: spec.${field} lists ${item} ${count} times (it counts once)`);
    }
  }
  return warnings;
}

/** A 422 `Invalid` denial listing every issue, as kube-apiserver words field errors. */
export function invalidDenial(kind: string, name: string, issues: readonly ConfigIssue[]): AdmissionDecision {
  return {
    allowed: false,
    status: {
      code: 422,
      reason: "Invalid",
      message: `${kind} ${JSON.stringify(name)} is invalid: ${issues.map(formatFieldError).join("; ")}`,
      details: {
        causes: issues.map((issue) => ({
          field: issue.path,
          reason: "FieldValueInvalid",
          message: `Invalid value: ${JSON.stringify(issue.value)}: ${issue.reason}${issue.hint ? ` (hint: ${issue.hint})` : ""}`,
        })),
      },
    },
  };
}

export function createMeshConfigValidationHandler(): AdmissionHandler {
  return async (request): Promise<AdmissionDecision> => {
    if (
      request.kind.kind !== "MeshConfig" ||
      (request.operation !== "CREATE" && request.operation !== "UPDATE")
    ) {
      return { allowed: true };
    }
    let meshConfig: ReturnType<typeof validateMeshConfig>;
    try {
      meshConfig = validateMeshConfig(request.object);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const name = request.name ?? (request.object as { metadata?: { name?: string } })?.metadata?.name ?? "";
      return invalidDenial("MeshConfig", name, error.issues);
    }
    const policy = buildEffectivePolicy(meshConfig, {});
    const warnings = [
      ...silentChangeWarnings(request),
      ...policy.warnings.map((w) => `${w.code}: ${w.message}`),
      ...restartWarnings(request),
    ];
    return { allowed: true, warnings };
  };
}

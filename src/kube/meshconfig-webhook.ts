/**
 * `/validate-meshconfig`: the MeshConfig validator OSM never had. The same `validateMeshConfig` as the CLI;
 * a denial lists every problem as kubectl users expect (`<field>: Invalid value: "<value>": <reason>`) with
 * the fix; footguns and restart-needed changes come back as admission warnings, which kubectl prints.
 */
import { buildEffectivePolicy, validateMeshConfig } from "../config/index.ts";
import { ConfigError, type ConfigIssue } from "../errors.ts";
import type { AdmissionDecision, AdmissionRequest } from "./admission.ts";
import type { AdmissionHandler } from "./webhook-server.ts";

/** Fields baked into osm-init at pod creation (docs/osm-behaviour.md §5.2): changing them needs a pod restart. */
export const INIT_TIME_FIELDS: readonly string[] = [
  "traffic.outboundIPRangeExclusionList",
  "traffic.outboundIPRangeInclusionList",
  "traffic.outboundPortExclusionList",
  "traffic.inboundPortExclusionList",
  "traffic.networkInterfaceExclusionList",
  "sidecar.localProxyMode",
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
      return {
        allowed: false,
        status: {
          code: 422,
          reason: "Invalid",
          message: `MeshConfig ${JSON.stringify(name)} is invalid: ${error.issues.map(formatFieldError).join("; ")}`,
          details: {
            causes: error.issues.map((issue) => ({
              field: issue.path,
              reason: "FieldValueInvalid",
              message: `Invalid value: ${JSON.stringify(issue.value)}: ${issue.reason}${issue.hint ? ` (hint: ${issue.hint})` : ""}`,
            })),
          },
        },
      };
    }
    const policy = buildEffectivePolicy(meshConfig, {});
    const warnings = [...policy.warnings.map((w) => `${w.code}: ${w.message}`), ...restartWarnings(request)];
    return { allowed: true, warnings };
  };
}

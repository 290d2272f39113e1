/**
 * `/validate-smi`: the SMI objects (TrafficTarget, TCPRoute, HTTPRouteGroup) and OSM's Egress through the same `validateSmiObject` as
 * `osm policy validate -f`; a denial lists every field as the MeshConfig validator's does.
 */
import { ConfigError } from "../errors.ts";
import { smiKindOf, smiWarnings, validateSmiObject } from "../smi/validate.ts";
import type { AdmissionDecision } from "./admission.ts";
import { invalidDenial } from "./meshconfig-webhook.ts";
import type { AdmissionHandler } from "./webhook-server.ts";

export function createSmiValidationHandler(): AdmissionHandler {
  return async (request): Promise<AdmissionDecision> => {
    if (
      smiKindOf(request.kind.kind) === undefined ||
      (request.operation !== "CREATE" && request.operation !== "UPDATE")
    ) {
      return { allowed: true };
    }
    let valid: ReturnType<typeof validateSmiObject>;
    try {
      valid = validateSmiObject(request.object, request.namespace);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const name = request.name ?? (request.object as { metadata?: { name?: string } })?.metadata?.name ?? "";
      return invalidDenial(request.kind.kind, name, error.issues);
    }
    return { allowed: true, warnings: smiWarnings(valid) };
  };
}

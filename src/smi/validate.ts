/**
 * Validation of SMI objects, the one validator behind every entry (the validating webhook, `osm policy
 * validate -f`, the controller's informers): every problem at once, as ConfigIssues naming field and value.
 */
import type { z } from "zod";
import { describeType, dropNulls, issuesFromZod } from "../config/validate.ts";
import {
  EGRESS_API_VERSION,
  EGRESS_KIND,
  type Egress,
  egressChecks,
  egressSchema,
  egressWarnings,
} from "../egress/schema.ts";
import { ConfigError, type ConfigIssue } from "../errors.ts";
import {
  HTTP_ROUTE_GROUP_API_VERSION,
  type HttpRouteGroup,
  httpRouteGroupChecks,
  httpRouteGroupSchema,
} from "./http-route-group.ts";
import {
  HTTP_ROUTE_GROUP_KIND,
  TCP_ROUTE_API_VERSION,
  TCP_ROUTE_KIND,
  type TCPRoute,
  TRAFFIC_TARGET_API_VERSION,
  type TrafficTarget,
  tcpRouteSchema,
  trafficTargetSchema,
} from "./schema.ts";

/** One SMI kind osm-ts serves: where it lives in the API and how it is checked. */
export interface SmiKind {
  readonly kind: string;
  readonly apiVersion: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly schema: z.ZodType;
  /**
   * Rules across fields and metadata, run on the input as written even when the schema fails elsewhere (every
   * problem at once), so they read it defensively; `namespace` is where the object lives.
   */
  readonly crossChecks?: (object: Record<string, unknown>, namespace: string | undefined) => ConfigIssue[];
  /** What is accepted but worth telling (`code: message`): admission warnings, `osm policy validate` lines. */
  readonly warnings?: (object: never) => string[];
}

/**
 * OSM's validating webhook rule (pkg/validator/validators.go trafficTargetValidator): a TrafficTarget lives
 * in its destination's namespace; OSM also skips any other as invalid (pkg/smi IsValidTrafficTarget).
 */
function trafficTargetChecks(target: Record<string, unknown>, namespace: string | undefined): ConfigIssue[] {
  const spec = target["spec"] as { destination?: { namespace?: unknown } } | undefined;
  const destination = spec?.destination?.namespace;
  if (namespace === undefined || typeof destination !== "string" || namespace === destination) return [];
  return [
    {
      path: "spec.destination.namespace",
      value: destination,
      reason: `must be the TrafficTarget's own namespace ${JSON.stringify(namespace)}`,
      hint: `create the TrafficTarget in namespace ${JSON.stringify(destination)}, where its destination is`,
    },
  ];
}

export const TRAFFIC_TARGET: SmiKind = {
  kind: "TrafficTarget",
  apiVersion: TRAFFIC_TARGET_API_VERSION,
  plural: "traffictargets",
  singular: "traffictarget",
  shortNames: ["tt"],
  schema: trafficTargetSchema,
  crossChecks: trafficTargetChecks,
};

export const TCP_ROUTE: SmiKind = {
  kind: TCP_ROUTE_KIND,
  apiVersion: TCP_ROUTE_API_VERSION,
  plural: "tcproutes",
  singular: "tcproute",
  shortNames: ["tr"],
  schema: tcpRouteSchema,
};

export const HTTP_ROUTE_GROUP: SmiKind = {
  kind: HTTP_ROUTE_GROUP_KIND,
  apiVersion: HTTP_ROUTE_GROUP_API_VERSION,
  plural: "httproutegroups",
  singular: "httproutegroup",
  shortNames: ["htr"],
  schema: httpRouteGroupSchema,
  crossChecks: httpRouteGroupChecks,
};

/** OSM's Egress policy (src/egress): not SMI, but served, validated and watched the same way. */
export const EGRESS: SmiKind = {
  kind: EGRESS_KIND,
  apiVersion: EGRESS_API_VERSION,
  plural: "egresses",
  singular: "egress",
  shortNames: ["egress"],
  schema: egressSchema,
  crossChecks: egressChecks,
  warnings: egressWarnings,
};

/** Every policy kind served (SMI's, then OSM's Egress), in CRD order. A new kind is one entry here. */
export const SMI_KINDS: readonly SmiKind[] = [TRAFFIC_TARGET, TCP_ROUTE, HTTP_ROUTE_GROUP, EGRESS];

export function smiKindOf(kind: unknown): SmiKind | undefined {
  return SMI_KINDS.find((k) => k.kind === kind);
}

export type ValidSmiObject =
  | { readonly kind: "TrafficTarget"; readonly object: TrafficTarget }
  | { readonly kind: "TCPRoute"; readonly object: TCPRoute }
  | { readonly kind: "HTTPRouteGroup"; readonly object: HttpRouteGroup }
  | { readonly kind: "Egress"; readonly object: Egress };

/**
 * Validates one SMI object as parsed from YAML/JSON or read from the API. `namespace` is where it lives (the
 * admission request's, or kubectl's `-n`) when its metadata does not say. Never mutates `input`; throws
 * ConfigError with every problem.
 */
export function validateSmiObject(input: unknown, namespace?: string): ValidSmiObject {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new ConfigError([
      { path: "<root>", value: input, reason: `is not an SMI object (got ${describeType(input)})` },
    ]);
  }
  const object = dropNulls(input) as Record<string, unknown>;
  const kind = smiKindOf(object["kind"]);
  if (kind === undefined) {
    throw new ConfigError([
      {
        path: "kind",
        value: object["kind"],
        reason: object["kind"] === undefined ? "is required" : "is not an SMI kind osm-ts serves",
        hint: `one of ${SMI_KINDS.map((k) => k.kind).join(", ")}`,
      },
    ]);
  }
  const issues: ConfigIssue[] = [];
  if (object["apiVersion"] !== kind.apiVersion) {
    issues.push({
      path: "apiVersion",
      value: object["apiVersion"],
      reason: object["apiVersion"] === undefined ? "is required" : `is not served for ${kind.kind}`,
      hint: `use apiVersion: ${kind.apiVersion}`,
    });
  }
  const result = kind.schema.safeParse({ ...object, apiVersion: kind.apiVersion });
  if (!result.success) issues.push(...issuesFromZod(result.error, input, kind.schema));
  const own = (object["metadata"] as { namespace?: unknown } | undefined)?.namespace;
  issues.push(...(kind.crossChecks?.(object, typeof own === "string" ? own : namespace) ?? []));
  if (issues.length > 0) throw new ConfigError(issues);
  return { kind: kind.kind, object: structuredClone(result.data) } as ValidSmiObject;
}

/** The warnings a valid object's kind has for it (`code: message`). */
export function smiWarnings(valid: ValidSmiObject): string[] {
  return smiKindOf(valid.kind)?.warnings?.(valid.object as never) ?? [];
}

/**
 * The valid objects of a list read from the API, and the invalid ones by name (`<kind> <ns>/<name>`) with
 * their issues: stored around the webhook, they allow nothing (OSM skips an invalid TrafficTarget too).
 */
export function validObjects(
  objects: readonly { metadata?: { name?: string; namespace?: string } }[],
  kind: string,
): { valid: unknown[]; invalid: Map<string, readonly ConfigIssue[]> } {
  const valid: unknown[] = [];
  const invalid = new Map<string, readonly ConfigIssue[]>();
  for (const object of objects) {
    const result = tryValidateSmiObject(object, object.metadata?.namespace);
    if (result.ok) valid.push(result.value.object);
    else invalid.set(`${kind} ${object.metadata?.namespace}/${object.metadata?.name}`, result.issues);
  }
  return { valid, invalid };
}

/** `validateSmiObject` that answers instead of throwing, for informers that must skip a bad stored object. */
export function tryValidateSmiObject(
  input: unknown,
  namespace?: string,
): { ok: true; value: ValidSmiObject } | { ok: false; issues: readonly ConfigIssue[] } {
  try {
    return { ok: true, value: validateSmiObject(input, namespace) };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, issues: error.issues };
    throw error;
  }
}

/**
 * SMI's HTTPRouteGroup (`specs.smi-spec.io/v1alpha4`), the HTTP match conditions OSM's policies refer to
 * (Egress `matches`, TrafficTarget `rules`); the kind's entry is `HTTP_ROUTE_GROUP` in validate.ts. Fields and CRD rules: OSM's
 * `cmd/osm-bootstrap/crds/smi_http_route_group.yaml` (headers as a list of one-entry maps, as that CRD and
 * OSM's demos write them); semantics of each match: `http-match.ts`.
 *
 * Stricter than OSM: `pathRegex` and header values must be RE2 expressions (what Envoy compiles; OSM accepts
 * anything and Envoy rejects the whole route configuration later), header names must be HTTP tokens, and a
 * match must have a name (the CRD requires it; OSM's webhook does not check).
 */
import { RE2JS } from "re2js";
import { z } from "zod";
import { issueMessage } from "../config/schema.ts";
import type { ConfigIssue } from "../errors.ts";
import { HTTP_ROUTE_GROUP_KIND, objectMetadata, SPECS_GROUP } from "./schema.ts";

export const HTTP_ROUTE_GROUP_API_VERSION = `${SPECS_GROUP}/v1alpha4`;

/** The methods OSM's CRD allows; `*` is any method. */
export const HTTP_METHODS = [
  "*",
  "GET",
  "HEAD",
  "PUT",
  "POST",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
] as const;

const REGEX_HINT =
  "write an RE2 expression (no lookaround or backreferences); it must match the whole value, e.g. /status.*";

/** A regular expression in RE2 syntax, as Envoy's `safe_regex` compiles it. */
const re2 = (description: string) =>
  z
    .string()
    .meta({ description })
    .superRefine((text, ctx) => {
      try {
        RE2JS.compile(text);
      } catch (error) {
        ctx.addIssue({
          code: "custom",
          message: issueMessage(
            `is not a valid RE2 regular expression: ${(error as Error).message}`,
            REGEX_HINT,
          ),
        });
      }
    });

/** RFC 9110 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const headerCondition = z
  .record(z.string(), re2("RE2 expression the header's value must match in full."))
  .meta({ description: "Header match condition of this route: header name → RE2 value expression." })
  .superRefine((condition, ctx) => {
    for (const name of Object.keys(condition)) {
      if (!HEADER_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: issueMessage(
            `is not a valid HTTP header name: ${JSON.stringify(name)}`,
            "header names are tokens: letters, digits and !#$%&'*+.^_`|~-, no spaces or colons",
          ),
        });
      }
    }
  });

export const httpMatchSchema = z.strictObject({
  name: z.string().min(1).meta({ description: "Name of the HTTP route." }),
  pathRegex: re2("URI path regex of the HTTP route (RE2, matched against the whole path).").optional(),
  methods: z
    .array(z.enum(HTTP_METHODS))
    .meta({ description: "The HTTP methods of this HTTP route; * or none is any method." })
    .optional(),
  headers: z
    .array(headerCondition)
    .meta({ description: "Header match conditions of this route; all must hold." })
    .optional(),
});

export const httpRouteGroupSchema = z.strictObject({
  apiVersion: z.literal(HTTP_ROUTE_GROUP_API_VERSION),
  kind: z.literal(HTTP_ROUTE_GROUP_KIND),
  metadata: objectMetadata,
  spec: z.strictObject({
    matches: z.array(httpMatchSchema).min(1).meta({ description: "Match conditions of this route group." }),
  }),
});

export type HttpMatch = z.output<typeof httpMatchSchema>;
export type HttpRouteGroup = z.output<typeof httpRouteGroupSchema>;

/** Match names are unique within a group: TrafficTarget rules pick matches by name. */
export function httpRouteGroupChecks(group: Record<string, unknown>): ConfigIssue[] {
  const matches = (group["spec"] as { matches?: unknown } | undefined)?.matches;
  if (!Array.isArray(matches)) return [];
  const seen = new Set<unknown>();
  return matches.flatMap((match: { name?: unknown } | null, index) => {
    const name = match?.name;
    if (typeof name !== "string" || !seen.has(name)) {
      seen.add(name);
      return [];
    }
    return [
      {
        path: `spec.matches[${index}].name`,
        value: name,
        reason: "is the name of an earlier match",
        hint: "give each match its own name (TrafficTarget rules refer to matches by name)",
      },
    ];
  });
}

/**
 * OSM's Egress policy (`policy.openservicemesh.io/v1alpha1`, kind `Egress`) as a zod schema: the one source of
 * the type, the validation and the CRD schema. Fields: OSM's `pkg/apis/policy/v1alpha1/egress.go` and
 * `cmd/osm-bootstrap/crds/policy_egress.yaml`; `matches` rules: OSM's validating webhook
 * (`pkg/validator/validators.go: egressValidator`). Stricter than OSM where OSM would accept an object and
 * then ignore it or part of it (src/egress/README.md lists each case); IPv6 ranges accepted.
 */
import { z } from "zod";
import { issueMessage } from "../config/schema.ts";
import type { ConfigIssue } from "../errors.ts";
import { tryParseCidr } from "../net/index.ts";
import { HTTP_ROUTE_GROUP_API_VERSION } from "../smi/http-route-group.ts";
import { HTTP_ROUTE_GROUP_KIND, objectMetadata, SERVICE_ACCOUNT_KIND } from "../smi/schema.ts";
import { EGRESS_PROTOCOLS } from "./types.ts";

export const POLICY_GROUP = "policy.openservicemesh.io";
export const EGRESS_API_VERSION = `${POLICY_GROUP}/v1alpha1`;
export const EGRESS_KIND = "Egress";
export const UPSTREAM_TRAFFIC_SETTING_KIND = "UpstreamTrafficSetting";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A host name as HTTP Host headers and TLS SNI carry it: DNS labels, optionally `*.` first (Envoy's wildcard
 * domains and server names). Not a URL, not host:port, not an IP address (those are `ipAddresses`).
 */
const hostName = z
  .string()
  .meta({ description: "External host name (HTTP Host, TLS SNI); *.example.com matches its subdomains." })
  .superRefine((text, ctx) => {
    const problem = hostProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: issueMessage(problem.reason, problem.hint) });
  });

function hostProblem(text: string): { reason: string; hint: string } | undefined {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  if (scheme) {
    return {
      reason: `is not a host name: it has a scheme (${scheme[1]}://)`,
      hint: `write the host alone, e.g. ${JSON.stringify(text.slice(scheme[0].length).split(/[/:]/)[0])}; the protocol goes in ports[].protocol`,
    };
  }
  if (text.includes("/"))
    return { reason: "is not a host name: it has a path", hint: "write the host alone" };
  if (tryParseCidr(text.includes("/") ? text : `${text}/${text.includes(":") ? 128 : 32}`).ok) {
    return {
      reason: "is an IP address, not a host name",
      hint: `list addresses in ipAddresses as CIDRs, e.g. ${text.includes(":") ? `${text}/128` : `${text}/32`}`,
    };
  }
  if (/:\d+$/.test(text)) {
    return {
      reason: "is not a host name: it has a port",
      hint: "write the host alone; ports go in ports[] (a Host header host:port matches too)",
    };
  }
  const labels = (text.startsWith("*.") ? text.slice(2) : text).split(".");
  if (text.length > 253 || labels.some((label) => !DNS_LABEL.test(label))) {
    return {
      reason: "is not a valid host name",
      hint: "lower-case DNS labels (letters, digits, '-') separated by dots, optionally *. first, e.g. httpbin.org",
    };
  }
  return undefined;
}

/** An IP range: IPv4 or IPv6 CIDR (OSM's CRD pattern takes IPv4 only, and garbage such as 999.1.1.1/99). */
const ipRange = z
  .string()
  .meta({ description: "External IP address range (CIDR, IPv4 or IPv6)." })
  .superRefine((text, ctx) => {
    const r = tryParseCidr(text);
    if (r.ok) return;
    const bare = tryParseCidr(`${text}/${text.includes(":") ? 128 : 32}`).ok;
    ctx.addIssue({
      code: "custom",
      message: issueMessage(
        `is not a valid CIDR: ${r.reason}`,
        bare
          ? `a single address is ${text}/${text.includes(":") ? 128 : 32}`
          : (r.hint ?? "write an IPv4 or IPv6 prefix such as 203.0.113.0/24 or 2001:db8::/32"),
      ),
    });
  });

const PORT_REASON = "is not a valid port: must be an integer from 1 to 65535";
const portNumber = z
  .number()
  .int(issueMessage(PORT_REASON, "write a whole number"))
  .min(1, issueMessage(PORT_REASON, "ports start at 1"))
  .max(65535, issueMessage(PORT_REASON, "TCP ports go up to 65535"))
  .meta({ description: "Port number of this port." });

const source = z.strictObject({
  kind: z
    .literal(
      SERVICE_ACCOUNT_KIND,
      issueMessage(
        `must be ${JSON.stringify(SERVICE_ACCOUNT_KIND)}`,
        "Egress sources are service accounts: kind: ServiceAccount, name, namespace",
      ),
    )
    .meta({ description: "Kind of this source." }),
  name: z.string().min(1).meta({ description: "Name of this source." }),
  namespace: z.string().min(1).meta({ description: "Namespace of this source." }),
});

const match = z.strictObject({
  apiGroup: z.string().meta({ description: "API group and version of the referenced resource." }),
  kind: z.string().meta({ description: "Type of resource being referenced." }),
  name: z.string().min(1).meta({ description: "Name of resource being referenced." }),
});

export const egressSchema = z.strictObject({
  apiVersion: z.literal(EGRESS_API_VERSION),
  kind: z.literal(EGRESS_KIND),
  metadata: objectMetadata,
  spec: z.strictObject({
    sources: z
      .array(source)
      .min(1, issueMessage("must have at least 1 source", "list the service accounts this policy allows"))
      .meta({ description: "Sources the egress policy is applicable to." }),
    hosts: z
      .array(hostName)
      .optional()
      .meta({ description: "Hosts that the sources are allowed to direct external traffic to." }),
    ipAddresses: z
      .array(ipRange)
      .optional()
      .meta({ description: "IP address ranges that the sources are allowed to direct external traffic to." }),
    ports: z
      .array(
        z.strictObject({
          number: portNumber,
          protocol: z.enum(EGRESS_PROTOCOLS).meta({ description: "Protocol served by this port." }),
        }),
      )
      .min(1, issueMessage("must have at least 1 port", "an Egress without ports allows nothing"))
      .meta({ description: "Ports that the sources are allowed to direct external traffic to." }),
    matches: z
      .array(match)
      .optional()
      .meta({ description: "The resource references an Egress policy should match on." }),
  }),
});

export type Egress = z.output<typeof egressSchema>;
export type EgressPort = Egress["spec"]["ports"][number];

const UTS_API_GROUP = EGRESS_API_VERSION;

/**
 * OSM's webhook rules for `matches` (an HTTPRouteGroup of specs.smi-spec.io/v1alpha4, at most one
 * UpstreamTrafficSetting of policy.openservicemesh.io/v1alpha1), and ours: an http port needs hosts or
 * ipAddresses (OSM builds no route then: it allows nothing), HTTPRouteGroup matches need an http port.
 * Runs on the input as written (the schema may fail elsewhere), so it reads defensively.
 */
export function egressChecks(object: Record<string, unknown>): ConfigIssue[] {
  const spec = (object["spec"] ?? {}) as {
    matches?: unknown;
    ports?: unknown;
    hosts?: unknown;
    ipAddresses?: unknown;
  };
  const issues: ConfigIssue[] = [];
  const matches = Array.isArray(spec.matches)
    ? (spec.matches as { apiGroup?: unknown; kind?: unknown }[])
    : [];
  let upstreamSettings = 0;
  matches.forEach((m, index) => {
    if (m === null || typeof m !== "object") return;
    if (m.apiGroup === HTTP_ROUTE_GROUP_API_VERSION && m.kind !== HTTP_ROUTE_GROUP_KIND) {
      issues.push({
        path: `spec.matches[${index}].kind`,
        value: m.kind,
        reason: `must be ${JSON.stringify(HTTP_ROUTE_GROUP_KIND)} for apiGroup ${HTTP_ROUTE_GROUP_API_VERSION}`,
        hint: "Egress matches refer to HTTPRouteGroups (path, method, header matches)",
      });
    } else if (m.apiGroup === UTS_API_GROUP && m.kind !== UPSTREAM_TRAFFIC_SETTING_KIND) {
      issues.push({
        path: `spec.matches[${index}].kind`,
        value: m.kind,
        reason: `must be ${JSON.stringify(UPSTREAM_TRAFFIC_SETTING_KIND)} for apiGroup ${UTS_API_GROUP}`,
      });
    } else if (m.apiGroup !== HTTP_ROUTE_GROUP_API_VERSION && m.apiGroup !== UTS_API_GROUP) {
      issues.push({
        path: `spec.matches[${index}].apiGroup`,
        value: m.apiGroup,
        reason: `is not one of "${HTTP_ROUTE_GROUP_API_VERSION}", "${UTS_API_GROUP}"`,
        hint: `an HTTPRouteGroup is apiGroup: ${HTTP_ROUTE_GROUP_API_VERSION}, kind: ${HTTP_ROUTE_GROUP_KIND}`,
      });
    } else if (m.kind === UPSTREAM_TRAFFIC_SETTING_KIND && ++upstreamSettings > 1) {
      issues.push({
        path: `spec.matches[${index}]`,
        value: m,
        reason: "is a second UpstreamTrafficSetting match",
        hint: "an Egress may refer to at most 1 UpstreamTrafficSetting (OSM's rule)",
      });
    }
  });
  const ports = Array.isArray(spec.ports) ? (spec.ports as { protocol?: unknown }[]) : [];
  const listed = (list: unknown) => Array.isArray(list) && list.length > 0;
  const httpPorts = ports.filter((p) => p?.protocol === "http");
  if (httpPorts.length > 0 && !listed(spec.hosts) && !listed(spec.ipAddresses)) {
    issues.push({
      path: `spec.ports[${ports.indexOf(httpPorts[0]!)}].protocol`,
      value: "http",
      reason: "needs hosts or ipAddresses: an http port is matched by Host header or destination range",
      hint: "add hosts (e.g. httpbin.org) or ipAddresses (e.g. 203.0.113.0/24); for any destination use protocol tcp",
    });
  }
  const routeGroups = matches.findIndex((m) => m?.kind === HTTP_ROUTE_GROUP_KIND);
  if (routeGroups >= 0 && ports.length > 0 && httpPorts.length === 0) {
    issues.push({
      path: `spec.matches[${routeGroups}]`,
      value: matches[routeGroups],
      reason: "is an HTTPRouteGroup match, but no port has protocol http",
      hint: "HTTPRouteGroup matches apply to http ports only (https and tcp are not inspected)",
    });
  }
  return issues;
}

/** What is accepted but not done: UpstreamTrafficSetting references (osm-ts does not enforce them). */
export function egressWarnings(egress: Egress): string[] {
  return (egress.spec.matches ?? [])
    .filter((m) => m.kind === UPSTREAM_TRAFFIC_SETTING_KIND)
    .map(
      (m) =>
        `upstream-traffic-setting-not-enforced: UpstreamTrafficSetting ${JSON.stringify(m.name)} is accepted but not enforced by osm-ts (no connection limits or circuit breaking on egress)`,
    );
}

/**
 * The SMI access APIs OSM serves, as zod schemas (one source of types, validation and CRD schema):
 * `TrafficTarget` (`access.smi-spec.io/v1alpha3`) and `TCPRoute` (`specs.smi-spec.io/v1alpha4`), shaped as
 * OSM's `cmd/osm-bootstrap/crds/smi_traffic_access.yaml` and `smi_tcp_route.yaml`. Stricter than OSM where
 * OSM would accept an object and then silently ignore it (src/smi/README.md lists each case).
 */
import { z } from "zod";
import { issueMessage } from "../config/schema.ts";

export const ACCESS_GROUP = "access.smi-spec.io";
export const SPECS_GROUP = "specs.smi-spec.io";
export const TRAFFIC_TARGET_API_VERSION = `${ACCESS_GROUP}/v1alpha3`;
export const TCP_ROUTE_API_VERSION = `${SPECS_GROUP}/v1alpha4`;
export const SERVICE_ACCOUNT_KIND = "ServiceAccount";
export const TCP_ROUTE_KIND = "TCPRoute";
export const HTTP_ROUTE_GROUP_KIND = "HTTPRouteGroup";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const namespaceName = z
  .string()
  .max(63)
  .regex(DNS_LABEL, issueMessage("is not a valid namespace name", "lower-case letters, digits and '-'"));
const objectName = z
  .string()
  .max(253)
  .regex(
    DNS_SUBDOMAIN,
    issueMessage("is not a valid name", "lower-case letters, digits, '-' and '.' (a DNS-1123 subdomain)"),
  );

/** ObjectMeta: name and namespace checked, the rest open (objects read back carry uid, managedFields, ...). */
export const objectMetadata = z.looseObject({
  name: objectName.optional(),
  namespace: namespaceName.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** A service account: OSM matches only kind ServiceAccount, by name and namespace (pkg/catalog/traffictarget.go). */
const identitySubject = z.strictObject({
  kind: z.literal(
    SERVICE_ACCOUNT_KIND,
    issueMessage(
      `must be ${JSON.stringify(SERVICE_ACCOUNT_KIND)}`,
      "OSM identifies workloads by service account only",
    ),
  ),
  name: objectName,
  // Optional in SMI; OSM compares it as written, so a missing namespace matches no workload: required here.
  namespace: namespaceName,
});

const rule = z.strictObject({
  kind: z.enum(
    [HTTP_ROUTE_GROUP_KIND, TCP_ROUTE_KIND],
    issueMessage(
      `is not one of "${HTTP_ROUTE_GROUP_KIND}", "${TCP_ROUTE_KIND}"`,
      "OSM ignores a TrafficTarget with any other rule kind (UDPRoute is not supported)",
    ),
  ),
  name: objectName,
  /** Names of matches inside an HTTPRouteGroup; absent means all of them. */
  matches: z.array(z.string().min(1)).optional(),
});

export const trafficTargetSchema = z.strictObject({
  apiVersion: z.literal(TRAFFIC_TARGET_API_VERSION),
  kind: z.literal("TrafficTarget"),
  metadata: objectMetadata,
  spec: z.strictObject({
    destination: identitySubject,
    rules: z
      .array(rule)
      .min(1, issueMessage("must have at least 1 rule", "OSM ignores a TrafficTarget without rules")),
    sources: z
      .array(identitySubject)
      .min(1, issueMessage("must have at least 1 source", "list the service accounts allowed to connect")),
  }),
});

const port = z
  .number()
  .int(issueMessage("is not a valid port: must be an integer from 1 to 65535", "write a whole number"))
  .min(1, issueMessage("is not a valid port: must be an integer from 1 to 65535"))
  .max(65535, issueMessage("is not a valid port: must be an integer from 1 to 65535"));

export const tcpRouteSchema = z.strictObject({
  apiVersion: z.literal(TCP_ROUTE_API_VERSION),
  kind: z.literal(TCP_ROUTE_KIND),
  metadata: objectMetadata,
  spec: z.strictObject({
    matches: z.strictObject({
      /** SMI's optional match name; OSM reads only the ports. */
      name: z.string().optional(),
      ports: z
        .array(port)
        .min(1, issueMessage("must have at least 1 port", "a TCPRoute with no ports allows nothing")),
    }),
  }),
});

export type TrafficTarget = z.output<typeof trafficTargetSchema>;
export type TCPRoute = z.output<typeof tcpRouteSchema>;
export type TrafficTargetRule = TrafficTarget["spec"]["rules"][number];
export type IdentitySubject = TrafficTarget["spec"]["destination"];

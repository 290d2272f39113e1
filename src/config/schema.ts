/**
 * The MeshConfig API (`config.openservicemesh.io/v1alpha2`, and the deprecated `v1alpha1`) as zod schemas.
 * This one definition is the source of the TypeScript types, of validation (validate.ts) and of the CRD's
 * OpenAPI schema (crd.ts). Field set and CRD rules: OSM v1.2.4 `pkg/apis/config/v1alpha2/mesh_config.go` and
 * `cmd/osm-bootstrap/crds/config_meshconfig.yaml`; defaults: the v1.2 Helm chart's preset MeshConfig
 * (`charts/osm/values.yaml`, `templates/preset-mesh-config.yaml`) plus the CRD's own `default:` values.
 */
import { z } from "zod";
import { tryParseCidr } from "../net/index.ts";

export const API_GROUP = "config.openservicemesh.io";
export const API_VERSION_V1ALPHA2 = `${API_GROUP}/v1alpha2`;
export const API_VERSION_V1ALPHA1 = `${API_GROUP}/v1alpha1`;
export const KIND = "MeshConfig";

/**
 * A zod message carrying our reason and, after the separator, a hint. validate.ts splits it back into
 * ConfigIssue.reason and ConfigIssue.hint (zod messages are plain strings).
 */
export const HINT_SEPARATOR = "\u241f";
export function issueMessage(reason: string, hint?: string): string {
  return `${reason}${HINT_SEPARATOR}${hint ?? ""}`;
}

const PORT_REASON = "is not a valid port: must be an integer from 1 to 65535";
function portError(issue: { code: string; input?: unknown }): string {
  const input = issue.input;
  let hint: string | undefined;
  if (typeof input === "string" && /^\d+$/.test(input)) hint = `write ${input} without quotes`;
  else if (typeof input === "number" && !Number.isInteger(input)) hint = "write a whole number";
  else if (typeof input === "number" && input > 65535) hint = "TCP ports go up to 65535";
  else if (typeof input === "number" && input < 1) hint = "ports start at 1";
  return issueMessage(PORT_REASON, hint);
}
const port = (description: string) =>
  z
    .int({ error: portError })
    .min(1, { error: portError })
    .max(65535, { error: portError })
    .meta({ description });

/**
 * A CIDR item: IPv4 or IPv6, validated by net/ (OSM's CRD regex accepts garbage and rejects IPv6). Not by the
 * CRD schema: kube-apiserver checks the schema before it calls validating webhooks, so a `format: cidr` there
 * would answer first with Go's bare "must be of type cidr", hiding the MeshConfig validator's reason and hint.
 */
const cidr = (description: string) =>
  z
    .string()
    .meta({ description })
    .superRefine((text, ctx) => {
      const r = tryParseCidr(text);
      if (!r.ok) {
        ctx.addIssue({
          code: "custom",
          message: issueMessage(
            `is not a valid CIDR: ${r.reason}`,
            r.hint ?? "write an IPv4 or IPv6 prefix such as 192.0.2.0/24 or 2001:db8::/32",
          ),
        });
      }
    });

/**
 * Linux interface names (`dev_valid_name`: 1–15 bytes, not `.`/`..`, no `/`, `:` or whitespace), further
 * limited to characters that are inert in the init container's shell heredoc; a trailing `+` is iptables'
 * wildcard.
 */
const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}\+?$|^[A-Za-z0-9_.-]{1,14}\+$/;
const interfaceName = z
  .string()
  .meta({ description: "Network interface name (iptables -i/-o syntax; a trailing + is a wildcard)." })
  .superRefine((name, ctx) => {
    let reason: string | undefined;
    if (name === "") reason = "is empty";
    else if (name === "." || name === "..") reason = "is not a valid interface name";
    else if (/\s/.test(name)) reason = "is not a valid interface name: contains whitespace";
    else if (name.replace(/\+$/, "").length > 15)
      reason = "is not a valid interface name: longer than 15 characters";
    else if (!INTERFACE_NAME.test(name)) {
      reason =
        "is not a valid interface name: only letters, digits, '_', '.', '-' and a trailing '+' are allowed";
    }
    if (reason)
      ctx.addIssue({
        code: "custom",
        message: issueMessage(reason, "write a name as `ip link` shows it, e.g. eth1"),
      });
  });

/** Go `time.ParseDuration` syntax (e.g. `24h`, `1.5s`, `1h30m`, `0`). */
const GO_DURATION =
  /^[+-]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/;
const duration = (description: string) =>
  z
    .string()
    .meta({ description })
    .superRefine((text, ctx) => {
      if (!GO_DURATION.test(text)) {
        ctx.addIssue({
          code: "custom",
          message: issueMessage("is not a duration", "write a Go duration such as 24h, 90m, 1.5s or 0s"),
        });
      }
    });

const bool = (description: string) =>
  z
    .boolean({ error: issueMessage("is not a boolean", "write true or false, without quotes") })
    .meta({ description });

const LOG_LEVELS = ["trace", "debug", "info", "warning", "warn", "error", "critical", "off"] as const;
const TLS_VERSIONS = ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] as const;
export const LOCAL_PROXY_MODES = ["Localhost", "PodIP"] as const;

const quantity = z.union([z.string(), z.number()]);
const resources = z.strictObject({
  limits: z.record(z.string(), quantity).optional().meta({ description: "Maximum compute resources." }),
  requests: z.record(z.string(), quantity).optional().meta({ description: "Minimum compute resources." }),
});

/** The preset MeshConfig `spec` of the OSM v1.2 Helm chart (docs/osm-behaviour.md §3.2), with the CRD's own defaults. */
export const V1_2_DEFAULTS = {
  sidecar: {
    enablePrivilegedInitContainer: false,
    logLevel: "error",
    maxDataPlaneConnections: 0,
    configResyncInterval: "0s",
    tlsMinProtocolVersion: "TLSv1_2",
    tlsMaxProtocolVersion: "TLSv1_3",
    localProxyMode: "Localhost",
  },
  traffic: {
    enableEgress: true,
    enablePermissiveTrafficPolicyMode: true,
    outboundIPRangeExclusionList: [],
    outboundIPRangeInclusionList: [],
    outboundPortExclusionList: [],
    inboundPortExclusionList: [],
    networkInterfaceExclusionList: [],
  },
  observability: { osmLogLevel: "info", enableDebugServer: false, tracing: { enable: false } },
  certificate: { serviceCertValidityDuration: "24h", certKeyBitSize: 2048 },
  featureFlags: {
    enableWASMStats: true,
    enableEgressPolicy: true,
    enableMulticlusterMode: false,
    enableSnapshotCacheMode: false,
    enableAsyncProxyServiceMapping: false,
    enableIngressBackendPolicy: true,
    enableEnvoyActiveHealthChecks: false,
    enableRetryPolicy: false,
  },
} as const;

const D = V1_2_DEFAULTS;

function buildSpec() {
  const sidecar = z
    .strictObject({
      enablePrivilegedInitContainer: bool(
        "Enables privileged init containers for pods in mesh. When false, init containers only have NET_ADMIN.",
      ).default(D.sidecar.enablePrivilegedInitContainer),
      logLevel: z
        .enum(LOG_LEVELS)
        .meta({ description: "Envoy log level; applies to newly created pods." })
        .default(D.sidecar.logLevel),
      maxDataPlaneConnections: z
        .int()
        .min(0)
        .meta({ description: "Max allowed data plane sidecar connections (0: no limit)." })
        .default(D.sidecar.maxDataPlaneConnections),
      envoyImage: z.string().meta({ description: "Image for the sidecar." }).optional(),
      envoyWindowsImage: z
        .string()
        .meta({ description: "Image for the sidecar on Windows workers." })
        .optional(),
      initContainerImage: z.string().meta({ description: "Image for the init container." }).optional(),
      resources: resources.optional().meta({ description: "Compute resources of the sidecar." }),
      configResyncInterval: duration("Resync interval for regular proxy broadcast updates.").default(
        D.sidecar.configResyncInterval,
      ),
      tlsMinProtocolVersion: z
        .enum(TLS_VERSIONS)
        .meta({ description: "Minimum TLS protocol version the sidecar supports." })
        .default(D.sidecar.tlsMinProtocolVersion),
      tlsMaxProtocolVersion: z
        .enum(TLS_VERSIONS)
        .meta({ description: "Maximum TLS protocol version the sidecar supports." })
        .default(D.sidecar.tlsMaxProtocolVersion),
      cipherSuites: z
        .array(z.string())
        .meta({ description: "Ciphers the listener supports when negotiating TLS 1.0-1.2." })
        .optional(),
      ecdhCurves: z
        .array(z.string())
        .meta({ description: "ECDH curves TLS connections support." })
        .optional(),
      localProxyMode: z
        .enum(LOCAL_PROXY_MODES)
        .meta({
          description:
            "Destination the sidecar uses to reach the app: Localhost (127.0.0.1) or PodIP (DNAT to the pod IP).",
        })
        .default(D.sidecar.localProxyMode),
    })
    .meta({ description: "Configuration for the sidecar proxy." });

  const traffic = z
    .strictObject({
      enableEgress: bool("Enables egress (passthrough to non-mesh destinations) in the mesh.").default(
        D.traffic.enableEgress,
      ),
      enablePermissiveTrafficPolicyMode: bool(
        "Allows traffic between mesh pods without SMI traffic policies.",
      ).default(D.traffic.enablePermissiveTrafficPolicyMode),
      outboundIPRangeExclusionList: z
        .array(cidr("An IPv4 or IPv6 CIDR whose outbound traffic bypasses the sidecar."))
        .meta({ description: "Global list of IP ranges to exclude from outbound traffic interception." })
        .default(() => []),
      outboundIPRangeInclusionList: z
        .array(cidr("An IPv4 or IPv6 CIDR whose outbound traffic is intercepted."))
        .meta({
          description:
            "Global list of IP ranges to intercept; when set, traffic to other destinations bypasses the sidecar.",
        })
        .default(() => []),
      outboundPortExclusionList: z
        .array(port("A destination port whose outbound TCP traffic bypasses the sidecar."))
        .meta({ description: "Global list of ports to exclude from outbound traffic interception." })
        .default(() => []),
      inboundPortExclusionList: z
        .array(port("A port whose inbound TCP traffic bypasses the sidecar."))
        .meta({ description: "Global list of ports to exclude from inbound traffic interception." })
        .default(() => []),
      networkInterfaceExclusionList: z
        .array(interfaceName)
        .meta({ description: "Global list of network interfaces whose traffic is never intercepted." })
        .default(() => []),
      inboundExternalAuthorization: z
        .strictObject({
          enable: bool("Enables the inbound external authorization policy.").default(false),
          address: z.string().meta({ description: "External authorization endpoint address." }).optional(),
          port: port("External authorization endpoint port.").optional(),
          statPrefix: z.string().meta({ description: "Metrics prefix." }).default("inboundExtAuthz"),
          timeout: duration("Timeout for the external authorization endpoint.").default("1s"),
          failureModeAllow: bool("Allow traffic when the endpoint fails to respond.").default(false),
        })
        .optional()
        .meta({ description: "External authorization for inbound and ingress connections." }),
    })
    .meta({ description: "Configuration for traffic management." });

  const observability = z
    .strictObject({
      osmLogLevel: z
        .enum(["trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled"])
        .meta({ description: "Control plane log level." })
        .default(D.observability.osmLogLevel),
      enableDebugServer: bool("Enables the controller's debug endpoint.").default(
        D.observability.enableDebugServer,
      ),
      tracing: z
        .strictObject({
          enable: bool("Enables tracing for the mesh.").default(false),
          // Go type int16: values above 32767 make OSM fail to decode the MeshConfig.
          port: z
            .int()
            .min(1)
            .max(32767, {
              error: issueMessage(
                "is too large: OSM stores the tracing port as int16 (at most 32767)",
                "use a collector port up to 32767",
              ),
            })
            .meta({ description: "Tracing collector port." })
            .optional(),
          address: z.string().meta({ description: "Tracing collector host name." }).optional(),
          endpoint: z.string().meta({ description: "Tracing collector API endpoint." }).optional(),
        })
        .meta({ description: "Distributed tracing." })
        .prefault({}),
    })
    .meta({ description: "Observability: logs, debug server, tracing." });

  const certificate = z
    .strictObject({
      serviceCertValidityDuration: duration("Service certificate validity duration.").default(
        D.certificate.serviceCertValidityDuration,
      ),
      certKeyBitSize: z
        .int()
        .min(1)
        .meta({ description: "Key bit size of data plane certificates." })
        .default(D.certificate.certKeyBitSize),
      ingressGateway: z
        .strictObject({
          subjectAltNames: z.array(z.string()).min(1).meta({ description: "Subject Alternative Names." }),
          validityDuration: duration("Certificate validity duration."),
          secret: z
            .strictObject({
              name: z.string().meta({ description: "Secret name." }),
              namespace: z.string().meta({ description: "Secret namespace." }),
            })
            .meta({ description: "Secret that stores the certificate." }),
        })
        .optional()
        .meta({ description: "Certificate of the ingress gateway." }),
    })
    .meta({ description: "Certificate management." });

  const flag = (name: keyof typeof D.featureFlags, description: string) =>
    bool(description).default(D.featureFlags[name]);
  const featureFlags = z
    .strictObject({
      enableWASMStats: flag("enableWASMStats", "Enables WASM stats."),
      enableEgressPolicy: flag("enableEgressPolicy", "Enables the Egress policy API."),
      enableMulticlusterMode: flag("enableMulticlusterMode", "DEPRECATED, no longer used."),
      enableSnapshotCacheMode: flag("enableSnapshotCacheMode", "xDS server uses a snapshot cache."),
      enableAsyncProxyServiceMapping: flag(
        "enableAsyncProxyServiceMapping",
        "Maps proxies to services asynchronously.",
      ),
      enableIngressBackendPolicy: flag("enableIngressBackendPolicy", "Enables the IngressBackend API."),
      enableEnvoyActiveHealthChecks: flag("enableEnvoyActiveHealthChecks", "Enables active health checks."),
      enableRetryPolicy: flag("enableRetryPolicy", "Enables the retry policy."),
    })
    .meta({ description: "OSM feature flags." });

  const spec = z
    .strictObject({
      sidecar: sidecar.prefault({}),
      traffic: traffic.prefault({}),
      observability: observability.prefault({}),
      certificate: certificate.prefault({}),
      featureFlags: featureFlags.prefault({}),
    })
    .meta({ description: "MeshConfig specification." });
  // v1alpha1 lacks the fields v1alpha2 added (docs/osm-behaviour.md §3.1).
  const specV1alpha1 = spec.extend({
    sidecar: sidecar
      .omit({
        tlsMinProtocolVersion: true,
        tlsMaxProtocolVersion: true,
        cipherSuites: true,
        ecdhCurves: true,
        localProxyMode: true,
      })
      .prefault({}),
    traffic: traffic
      .omit({ outboundIPRangeInclusionList: true, networkInterfaceExclusionList: true })
      .prefault({}),
  });
  return { spec, specV1alpha1 };
}

/**
 * ObjectMeta: typed where we read it, open otherwise (objects read back from an API server carry uid,
 * resourceVersion, managedFields, ...).
 */
const metadata = z.looseObject({
  name: z.string().optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const specs = buildSpec();
export const specSchemaV1alpha2 = specs.spec;
export const specSchemaV1alpha1 = specs.specV1alpha1;

export const meshConfigSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION_V1ALPHA2),
  kind: z.literal(KIND),
  metadata: metadata.optional(),
  spec: specSchemaV1alpha2.prefault({}),
});
export const meshConfigSchemaV1alpha1 = z.strictObject({
  apiVersion: z.literal(API_VERSION_V1ALPHA1),
  kind: z.literal(KIND),
  metadata: metadata.optional(),
  spec: specSchemaV1alpha1.prefault({}),
});

/** A validated MeshConfig (v1alpha2), every defaulted field present. */
export type MeshConfig = z.output<typeof meshConfigSchema>;
/** What a user may write (defaults optional). */
export type MeshConfigInput = z.input<typeof meshConfigSchema>;
export type MeshConfigSpec = MeshConfig["spec"];

/**
 * The bad-input table: every case names its input and the exact message it must produce. Shared by
 * bad-input.test.ts (which also checks that nothing stored changed).
 */
import {
  ANNOTATION_INBOUND_PORT_EXCLUSION_LIST as IN_PORTS,
  ANNOTATION_SIDECAR_INJECTION as INJECTION,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST as IP_EXCL,
  ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST as IP_INCL,
  ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST as OUT_PORTS,
} from "../../../src/constants.ts";

export const V2 = "config.openservicemesh.io/v1alpha2";
export const V1 = "config.openservicemesh.io/v1alpha1";

export function meshConfig(spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: V2,
    kind: "MeshConfig",
    metadata: { name: "osm-mesh-config", namespace: "osm-system" },
    spec,
    ...extra,
  };
}
export const traffic = (t: Record<string, unknown>) => meshConfig({ traffic: t });
export const sidecar = (s: Record<string, unknown>) => meshConfig({ sidecar: s });

const CIDR_HINT = "write an IPv4 or IPv6 prefix such as 192.0.2.0/24 or 2001:db8::/32";
const EXCL = "spec.traffic.outboundIPRangeExclusionList";

/** validateMeshConfig(input) must throw a ConfigError whose message is exactly these lines. */
export const objectCases: { name: string; input: unknown; lines: string[] }[] = [
  {
    name: "a prefix length above 32",
    input: traffic({ outboundIPRangeExclusionList: ["54.91.118.50/33"] }),
    lines: [
      `${EXCL}[0]: "54.91.118.50/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4 (hint: IPv4 prefix lengths go from 0 to 32; /32 is a single address)`,
    ],
  },
  {
    name: "an octet above 255 with a mask above 32 (OSM's CRD accepts it)",
    input: traffic({ outboundIPRangeExclusionList: ["999.1.1.1/99"] }),
    lines: [
      `${EXCL}[0]: "999.1.1.1/99" is not a valid CIDR: IPv4 octet 999 exceeds 255 (hint: each IPv4 octet is 0 to 255)`,
    ],
  },
  {
    name: "two CIDRs in one item (OSM's CRD accepts it)",
    input: traffic({ outboundIPRangeExclusionList: ["10.0.0.0/8,1.1.1.1/32"] }),
    lines: [
      `${EXCL}[0]: "10.0.0.0/8,1.1.1.1/32" is not a valid CIDR: contains ","; a list item holds one CIDR (hint: split it into separate items: "10.0.0.0/8", "1.1.1.1/32")`,
    ],
  },
  {
    name: "junk before the address (OSM's CRD accepts it)",
    input: traffic({ outboundIPRangeExclusionList: ["foo1.1.1.1/32"] }),
    lines: [
      `${EXCL}[0]: "foo1.1.1.1/32" is not a valid CIDR: address "foo1.1.1.1" is neither IPv4 nor IPv6 (hint: write a dotted quad such as 192.0.2.1 or an IPv6 address such as 2001:db8::1; host names are not allowed)`,
    ],
  },
  {
    name: "a bare address",
    input: traffic({ outboundIPRangeExclusionList: ["1.1.1.1"] }),
    lines: [
      `${EXCL}[0]: "1.1.1.1" is not a valid CIDR: has no prefix length (hint: write 1.1.1.1/32 for a single address)`,
    ],
  },
  {
    name: "a trailing space",
    input: traffic({ outboundIPRangeExclusionList: ["1.1.1.1/32 "] }),
    lines: [`${EXCL}[0]: "1.1.1.1/32 " is not a valid CIDR: contains whitespace (hint: remove the spaces)`],
  },
  {
    name: "a leading zero",
    input: traffic({ outboundIPRangeExclusionList: ["010.0.0.1/8"] }),
    lines: [
      `${EXCL}[0]: "010.0.0.1/8" is not a valid CIDR: IPv4 octet "010" has a leading zero (hint: leading zeros are ambiguous (octal or decimal); write 10)`,
    ],
  },
  {
    name: "a zone id",
    input: traffic({ outboundIPRangeExclusionList: ["fe80::1%eth0/64"] }),
    lines: [
      `${EXCL}[0]: "fe80::1%eth0/64" is not a valid CIDR: has a zone identifier ("%eth0"), which is not allowed here (hint: remove the %zone suffix; interception rules apply to every interface)`,
    ],
  },
  {
    name: "an IPv4-mapped IPv6 prefix",
    input: traffic({ outboundIPRangeExclusionList: ["::ffff:1.2.3.4/120"] }),
    lines: [
      `${EXCL}[0]: "::ffff:1.2.3.4/120" is not a valid CIDR: is an IPv4-mapped IPv6 prefix (inside ::ffff:0:0/96) (hint: the kernel sends this traffic as IPv4; write the IPv4 form 1.2.3.0/24)`,
    ],
  },
  {
    name: "trailing junk in the prefix length (inclusion list)",
    input: traffic({ outboundIPRangeInclusionList: ["1.2.3.4/5x"] }),
    lines: [
      `spec.traffic.outboundIPRangeInclusionList[0]: "1.2.3.4/5x" is not a valid CIDR: prefix length "5x" is not a decimal number (hint: ${CIDR_HINT})`,
    ],
  },
  {
    name: "an empty CIDR",
    input: traffic({ outboundIPRangeInclusionList: [""] }),
    lines: [
      `spec.traffic.outboundIPRangeInclusionList[0]: "" is not a valid CIDR: is empty (hint: write a CIDR such as 192.0.2.0/24)`,
    ],
  },
  {
    name: "a number where a CIDR string belongs",
    input: traffic({ outboundIPRangeExclusionList: [3] }),
    lines: [`${EXCL}[0]: 3 is not a string (got a number)`],
  },
  {
    name: "a string where a list belongs",
    input: traffic({ outboundIPRangeExclusionList: "10.0.0.0/8" }),
    lines: [
      `${EXCL}: "10.0.0.0/8" is not a list (got a string) (hint: write a YAML list (- item) or [item, ...])`,
    ],
  },
  {
    name: "a port above 65535",
    input: traffic({ outboundPortExclusionList: [70000] }),
    lines: [
      "spec.traffic.outboundPortExclusionList[0]: 70000 is not a valid port: must be an integer from 1 to 65535 (hint: TCP ports go up to 65535)",
    ],
  },
  {
    name: "port 0",
    input: traffic({ outboundPortExclusionList: [0] }),
    lines: [
      "spec.traffic.outboundPortExclusionList[0]: 0 is not a valid port: must be an integer from 1 to 65535 (hint: ports start at 1)",
    ],
  },
  {
    name: "a negative port",
    input: traffic({ inboundPortExclusionList: [-1] }),
    lines: [
      "spec.traffic.inboundPortExclusionList[0]: -1 is not a valid port: must be an integer from 1 to 65535 (hint: ports start at 1)",
    ],
  },
  {
    name: "a quoted port",
    input: traffic({ inboundPortExclusionList: ["80"] }),
    lines: [
      'spec.traffic.inboundPortExclusionList[0]: "80" is not a valid port: must be an integer from 1 to 65535 (hint: write 80 without quotes)',
    ],
  },
  {
    name: "a fractional port",
    input: traffic({ inboundPortExclusionList: [1.5] }),
    lines: [
      "spec.traffic.inboundPortExclusionList[0]: 1.5 is not a valid port: must be an integer from 1 to 65535 (hint: write a whole number)",
    ],
  },
  {
    name: "a comma-separated string where a port list belongs",
    input: traffic({ outboundPortExclusionList: "80,443" }),
    lines: [
      'spec.traffic.outboundPortExclusionList: "80,443" is not a list (got a string) (hint: write a YAML list (- item) or [item, ...])',
    ],
  },
  {
    name: "a string where a boolean belongs",
    input: traffic({ enableEgress: "yes" }),
    lines: ['spec.traffic.enableEgress: "yes" is not a boolean (hint: write true or false, without quotes)'],
  },
  {
    name: "a quoted boolean",
    input: traffic({ enableEgress: "false" }),
    lines: [
      'spec.traffic.enableEgress: "false" is not a boolean (hint: write true or false, without quotes)',
    ],
  },
  {
    name: "a number where a boolean belongs",
    input: traffic({ enablePermissiveTrafficPolicyMode: 1 }),
    lines: [
      "spec.traffic.enablePermissiveTrafficPolicyMode: 1 is not a boolean (hint: write true or false, without quotes)",
    ],
  },
  {
    name: "an enum value in the wrong case",
    input: sidecar({ localProxyMode: "podip" }),
    lines: [
      'spec.sidecar.localProxyMode: "podip" is not one of "Localhost", "PodIP" (hint: did you mean "PodIP"?)',
    ],
  },
  {
    name: "an unknown enum value",
    input: sidecar({ localProxyMode: "Host" }),
    lines: ['spec.sidecar.localProxyMode: "Host" is not one of "Localhost", "PodIP"'],
  },
  {
    name: "an unknown log level",
    input: sidecar({ logLevel: "verbose" }),
    lines: [
      'spec.sidecar.logLevel: "verbose" is not one of "trace", "debug", "info", "warning", "warn", "error", "critical", "off"',
    ],
  },
  {
    name: "a TLS version spelt with a dot",
    input: sidecar({ tlsMinProtocolVersion: "TLSv1.2" }),
    lines: [
      'spec.sidecar.tlsMinProtocolVersion: "TLSv1.2" is not one of "TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3" (hint: did you mean "TLSv1_2"?)',
    ],
  },
  {
    name: "a minimum TLS version above the maximum",
    input: sidecar({ tlsMinProtocolVersion: "TLSv1_3", tlsMaxProtocolVersion: "TLSv1_2" }),
    lines: [
      'spec.sidecar.tlsMinProtocolVersion: "TLSv1_3" is above tlsMaxProtocolVersion "TLSv1_2" (hint: the minimum TLS version must not exceed the maximum)',
    ],
  },
  {
    name: "a misspelt field",
    input: traffic({ enableEgres: false }),
    lines: ["spec.traffic.enableEgres: false is not a known field (hint: did you mean enableEgress?)"],
  },
  {
    name: "a misspelt section",
    input: meshConfig({ trafic: { enableEgress: false } }),
    lines: ['spec.trafic: {"enableEgress":false} is not a known field (hint: did you mean traffic?)'],
  },
  {
    name: "an unknown top-level field",
    input: meshConfig({}, { status: {} }),
    lines: ["status: {} is not a known field (hint: known fields here: apiVersion, kind, metadata, spec)"],
  },
  {
    name: "a field of a later, unreleased OSM (proxyMode)",
    input: sidecar({ proxyMode: "PodIP" }),
    lines: [
      'spec.sidecar.proxyMode: "PodIP" is not a known field (hint: known fields here: enablePrivilegedInitContainer, logLevel, maxDataPlaneConnections, envoyImage, envoyWindowsImage, initContainerImage, resources, configResyncInterval, tlsMinProtocolVersion, tlsMaxProtocolVersion, cipherSuites, ecdhCurves, localProxyMode)',
    ],
  },
  {
    name: "an interface name with a space",
    input: traffic({ networkInterfaceExclusionList: ["eth 0"] }),
    lines: [
      'spec.traffic.networkInterfaceExclusionList[0]: "eth 0" is not a valid interface name: contains whitespace (hint: write a name as `ip link` shows it, e.g. eth1)',
    ],
  },
  {
    name: "an empty interface name",
    input: traffic({ networkInterfaceExclusionList: [""] }),
    lines: [
      'spec.traffic.networkInterfaceExclusionList[0]: "" is empty (hint: write a name as `ip link` shows it, e.g. eth1)',
    ],
  },
  {
    name: "an interface name longer than 15 characters",
    input: traffic({ networkInterfaceExclusionList: ["averyveryverylongname"] }),
    lines: [
      'spec.traffic.networkInterfaceExclusionList[0]: "averyveryverylongname" is not a valid interface name: longer than 15 characters (hint: write a name as `ip link` shows it, e.g. eth1)',
    ],
  },
  {
    name: "an interface name with a shell character",
    input: traffic({ networkInterfaceExclusionList: ["eth$0"] }),
    lines: [
      "spec.traffic.networkInterfaceExclusionList[0]: \"eth$0\" is not a valid interface name: only letters, digits, '_', '.', '-' and a trailing '+' are allowed (hint: write a name as `ip link` shows it, e.g. eth1)",
    ],
  },
  {
    name: "a tracing port that overflows OSM's int16",
    input: meshConfig({ observability: { tracing: { enable: true, port: 40000 } } }),
    lines: [
      "spec.observability.tracing.port: 40000 is too large: OSM stores the tracing port as int16 (at most 32767) (hint: use a collector port up to 32767)",
    ],
  },
  {
    name: "a negative connection limit",
    input: sidecar({ maxDataPlaneConnections: -1 }),
    lines: ["spec.sidecar.maxDataPlaneConnections: -1 must be at least 0"],
  },
  {
    name: "a quoted integer",
    input: meshConfig({ certificate: { certKeyBitSize: "2048" } }),
    lines: [
      'spec.certificate.certKeyBitSize: "2048" is not an integer (got a string) (hint: write 2048 without quotes)',
    ],
  },
  {
    name: "a duration that Go cannot parse",
    input: meshConfig({ certificate: { serviceCertValidityDuration: "1 day" } }),
    lines: [
      'spec.certificate.serviceCertValidityDuration: "1 day" is not a duration (hint: write a Go duration such as 24h, 90m, 1.5s or 0s)',
    ],
  },
  {
    name: "a duration without a unit",
    input: sidecar({ configResyncInterval: "5" }),
    lines: [
      'spec.sidecar.configResyncInterval: "5" is not a duration (hint: write a Go duration such as 24h, 90m, 1.5s or 0s)',
    ],
  },
  {
    name: "external authorization on port 0",
    input: traffic({ inboundExternalAuthorization: { enable: true, address: "authz.example", port: 0 } }),
    lines: [
      "spec.traffic.inboundExternalAuthorization.port: 0 is not a valid port: must be an integer from 1 to 65535 (hint: ports start at 1)",
    ],
  },
  {
    name: "external authorization enabled without an address",
    input: traffic({ inboundExternalAuthorization: { enable: true } }),
    lines: [
      "spec.traffic.inboundExternalAuthorization.address: <missing> is required when inboundExternalAuthorization.enable is true (hint: set the address and port of the external authorization service, or enable: false)",
      "spec.traffic.inboundExternalAuthorization.port: <missing> is required when inboundExternalAuthorization.enable is true (hint: set the address and port of the external authorization service, or enable: false)",
    ],
  },
  {
    name: "an ingress gateway certificate without its secret",
    input: meshConfig({
      certificate: { ingressGateway: { subjectAltNames: ["a.example"], validityDuration: "24h" } },
    }),
    lines: ["spec.certificate.ingressGateway.secret: <missing> is required"],
  },
  {
    name: "an ingress gateway certificate with no names",
    input: meshConfig({
      certificate: {
        ingressGateway: {
          subjectAltNames: [],
          validityDuration: "24h",
          secret: { name: "s", namespace: "n" },
        },
      },
    }),
    lines: ["spec.certificate.ingressGateway.subjectAltNames: [] must have at least 1 item(s)"],
  },
  {
    name: "a missing apiVersion",
    input: { kind: "MeshConfig", spec: {} },
    lines: ["apiVersion: <missing> is required (hint: use apiVersion: config.openservicemesh.io/v1alpha2)"],
  },
  {
    name: "v1alpha3, which never shipped",
    input: { apiVersion: "config.openservicemesh.io/v1alpha3", kind: "MeshConfig" },
    lines: [
      'apiVersion: "config.openservicemesh.io/v1alpha3" is not a served version (v1alpha2, v1alpha1) (hint: v1alpha3 never shipped; use apiVersion: config.openservicemesh.io/v1alpha2)',
    ],
  },
  {
    name: "another API group",
    input: { apiVersion: "v1", kind: "MeshConfig" },
    lines: [
      'apiVersion: "v1" is not config.openservicemesh.io (hint: use apiVersion: config.openservicemesh.io/v1alpha2)',
    ],
  },
  {
    name: "a kind in the wrong case",
    input: { apiVersion: V2, kind: "Meshconfig" },
    lines: ['kind: "Meshconfig" must be "MeshConfig" (hint: write kind: MeshConfig)'],
  },
  {
    name: "a v1alpha2-only field in a v1alpha1 object (localProxyMode)",
    input: { apiVersion: V1, kind: "MeshConfig", spec: { sidecar: { localProxyMode: "PodIP" } } },
    lines: [
      'spec.sidecar.localProxyMode: "PodIP" is not a field of v1alpha1 (hint: it was added in v1alpha2; use apiVersion: config.openservicemesh.io/v1alpha2)',
    ],
  },
  {
    name: "a v1alpha2-only field in a v1alpha1 object (networkInterfaceExclusionList)",
    input: {
      apiVersion: V1,
      kind: "MeshConfig",
      spec: { traffic: { networkInterfaceExclusionList: ["eth1"] } },
    },
    lines: [
      'spec.traffic.networkInterfaceExclusionList: ["eth1"] is not a field of v1alpha1 (hint: it was added in v1alpha2; use apiVersion: config.openservicemesh.io/v1alpha2)',
    ],
  },
  {
    name: "a list instead of an object",
    input: [meshConfig()],
    lines: [
      "<root>: " +
        JSON.stringify([meshConfig()]) +
        " is not a MeshConfig object (got a list) (hint: a MeshConfig starts with apiVersion: config.openservicemesh.io/v1alpha2 and kind: MeshConfig)",
    ],
  },
  {
    name: "a string instead of an object",
    input: "MeshConfig",
    lines: [
      '<root>: "MeshConfig" is not a MeshConfig object (got a string) (hint: a MeshConfig starts with apiVersion: config.openservicemesh.io/v1alpha2 and kind: MeshConfig)',
    ],
  },
  {
    name: "a label value that is not a string",
    input: meshConfig({}, { metadata: { name: "osm-mesh-config", labels: { tier: 1 } } }),
    lines: ["metadata.labels.tier: 1 is not a string (got a number)"],
  },
  {
    name: "a list where the spec object belongs",
    input: meshConfig([] as unknown as Record<string, unknown>),
    lines: ["spec: [] is not an object (got a list)"],
  },
  {
    name: "a quoted feature flag",
    input: meshConfig({ featureFlags: { enableWASMStats: "true" } }),
    lines: [
      'spec.featureFlags.enableWASMStats: "true" is not a boolean (hint: write true or false, without quotes)',
    ],
  },
  {
    name: "several problems at once, reported top to bottom",
    input: traffic({
      outboundIPRangeExclusionList: ["54.91.118.50/33", "fd00::/8", "999.1.1.1/99"],
      outboundPortExclusionList: [70000],
    }),
    lines: [
      `${EXCL}[0]: "54.91.118.50/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4 (hint: IPv4 prefix lengths go from 0 to 32; /32 is a single address)`,
      `${EXCL}[2]: "999.1.1.1/99" is not a valid CIDR: IPv4 octet 999 exceeds 255 (hint: each IPv4 octet is 0 to 255)`,
      "spec.traffic.outboundPortExclusionList[0]: 70000 is not a valid port: must be an integer from 1 to 65535 (hint: TCP ports go up to 65535)",
    ],
  },
];

/** parseMeshConfigDocuments(text) must throw a ConfigError whose message is exactly these lines. */
export const yamlCases: { name: string; text: string; lines: string[] }[] = [
  {
    name: "an unclosed flow sequence",
    text: "spec:\n  traffic:\n    outboundIPRangeExclusionList: [10.0.0.0/8\n",
    lines: [
      '<input>:4:1: "" is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] (hint: check the indentation (spaces, not tabs) and the quotes around this point)',
    ],
  },
  {
    name: "a duplicate key",
    text: "kind: MeshConfig\nkind: MeshConfig\n",
    lines: [
      '<input>:2:1: "kind: MeshConfig" is not valid YAML: Map keys must be unique (hint: each key may appear once per mapping)',
    ],
  },
  {
    name: "a tab used for indentation",
    text: "spec:\n\ttraffic: {}\n",
    lines: [
      '<input>:2:1: "traffic: {}" is not valid YAML: Tabs are not allowed as indentation (hint: indent with spaces; YAML does not allow tabs)',
    ],
  },
  {
    name: "a mapping value where none may be",
    text: "spec: traffic: {}\n",
    lines: [
      '<input>:1:7: "spec: traffic: {}" is not valid YAML: Nested mappings are not allowed in compact mappings (hint: check the YAML syntax around this point)',
    ],
  },
];

/** parsePodAnnotations(annotations) must throw MeshError OSM_ERR_INVALID_ANNOTATION with this message and hint. */
export const annotationCases: {
  name: string;
  annotations: Record<string, string>;
  message: string;
  hint: string;
}[] = [
  {
    name: "a negative port among valid ones (OSM's exclusions_test)",
    annotations: { [OUT_PORTS]: "6060, -7070" },
    message: `Invalid port value '-7070' specified for annotation '${OUT_PORTS}'`,
    hint: "-7070 is not a port; ports go from 1 to 65535",
  },
  {
    name: "a word instead of a port (OSM's exclusions_test)",
    annotations: { [IN_PORTS]: "foobar" },
    message: `Invalid port value 'foobar' specified for annotation '${IN_PORTS}'`,
    hint: '"foobar" is not a decimal integer; write ports as numbers separated by commas, e.g. 80,443',
  },
  {
    name: "a port above 65535 (OSM accepts it and the init container crashes)",
    annotations: { [OUT_PORTS]: "70000" },
    message: `Invalid port value '70000' specified for annotation '${OUT_PORTS}'`,
    hint: "70000 is above 65535; ports go from 1 to 65535",
  },
  {
    name: "an empty port list",
    annotations: { [OUT_PORTS]: "" },
    message: `Invalid port value '' specified for annotation '${OUT_PORTS}'`,
    hint: "the list has an empty item; remove the stray comma, or the annotation if it lists nothing",
  },
  {
    name: "a trailing comma in a port list",
    annotations: { [IN_PORTS]: "80," },
    message: `Invalid port value '' specified for annotation '${IN_PORTS}'`,
    hint: "the list has an empty item; remove the stray comma, or the annotation if it lists nothing",
  },
  {
    name: "a hexadecimal port",
    annotations: { [IN_PORTS]: "0x50" },
    message: `Invalid port value '0x50' specified for annotation '${IN_PORTS}'`,
    hint: '"0x50" is not a decimal integer; write ports as numbers separated by commas, e.g. 80,443',
  },
  {
    name: "a prefix length above 32",
    annotations: { [IP_EXCL]: "10.0.0.0/33" },
    message: `Invalid IP range '10.0.0.0/33' specified for annotation '${IP_EXCL}'`,
    hint: '"10.0.0.0/33" is not a valid CIDR: prefix length 33 exceeds 32 for IPv4; IPv4 prefix lengths go from 0 to 32; /32 is a single address',
  },
  {
    name: "a trailing comma in an IP list",
    annotations: { [IP_EXCL]: "1.1.1.1/32," },
    message: `Invalid IP range '' specified for annotation '${IP_EXCL}'`,
    hint: "the list has an empty item; remove the stray comma, or the annotation if it lists nothing",
  },
  {
    name: "a bad item after a valid IPv6 one",
    annotations: { [IP_INCL]: "fd00::/8, bad" },
    message: `Invalid IP range 'bad' specified for annotation '${IP_INCL}'`,
    hint: '"bad" is not a valid CIDR: has no prefix length; write 192.0.2.1/32 for a single address',
  },
  {
    name: "an unknown sidecar-injection value",
    annotations: { [INJECTION]: "maybe" },
    message: `Invalid annotation value for key "${INJECTION}": maybe`,
    hint: "use enabled or disabled (yes/no and true/false are accepted too)",
  },
];

/**
 * OSM's pod and namespace annotations (docs/osm-behaviour.md §4, OSM `pkg/injector/exclusions.go`, `webhook.go`), parsed with
 * the same validators as the MeshConfig. Error texts are OSM's, verbatim (scripts and users match on them);
 * our explanation goes in the MeshError's `hint`, printed after them.
 */
import {
  ANNOTATION_INBOUND_PORT_EXCLUSION_LIST,
  ANNOTATION_METRICS,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
  ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST,
  ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST,
  ANNOTATION_SIDECAR_INJECTION,
} from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { type Cidr, tryParseCidr } from "../net/index.ts";

/** One CIDR item of an annotation: the trimmed text as given (what OSM emits) and its parsed prefix. */
export interface AnnotationCidr {
  readonly given: string;
  readonly cidr: Cidr;
  readonly hostBitsSet: boolean;
}

/** The annotations OSM reads, typed. A field is undefined when its annotation is absent. */
export interface ParsedAnnotations {
  readonly outboundIPRangeExclusionList?: readonly AnnotationCidr[];
  readonly outboundIPRangeInclusionList?: readonly AnnotationCidr[];
  readonly outboundPortExclusionList?: readonly number[];
  readonly inboundPortExclusionList?: readonly number[];
  readonly sidecarInjection?: "enabled" | "disabled";
  /** `openservicemesh.io/metrics` (meaningful on namespaces): enabled|yes|true, case-insensitive. */
  readonly metrics?: boolean;
}

function annotationError(message: string, hint: string): MeshError {
  return new MeshError(ErrorCode.InvalidAnnotation, message, { hint });
}

/**
 * Parses a comma-separated port list as OSM does (split on `,`, trim, Go `strconv.Atoi`: optional sign,
 * leading zeros, decimal only; `<= 0` rejected) and, unlike OSM, rejects ports above 65535 (OSM lets them
 * crash `iptables-restore` in the init container).
 */
export function parsePortListAnnotation(key: string, value: string): number[] {
  const ports: number[] = [];
  for (const raw of value.split(",")) {
    const item = raw.trim();
    const fail = (why: string, hint: string) =>
      annotationError(`Invalid port value '${item}' specified for annotation '${key}'`, `${why}; ${hint}`);
    if (!/^[+-]?[0-9]+$/.test(item)) {
      if (item === "") {
        throw fail(
          "the list has an empty item",
          "remove the stray comma, or the annotation if it lists nothing",
        );
      }
      throw fail(
        `"${item}" is not a decimal integer`,
        "write ports as numbers separated by commas, e.g. 80,443",
      );
    }
    const n = BigInt(item);
    if (n <= 0n) throw fail(`${item} is not a port`, "ports go from 1 to 65535");
    if (n > 65535n) throw fail(`${item} is above 65535`, "ports go from 1 to 65535");
    ports.push(Number(n));
  }
  return ports;
}

/**
 * Parses a comma-separated CIDR list as OSM does (split on `,`, trim each item, keep the trimmed text),
 * validating each item with net/ instead of Go's `net.ParseCIDR`. IPv6 ranges are accepted (OSM accepts them
 * here, then its IPv4-only init container crashes on them; osm-ts programs them with ip6tables/nft).
 */
export function parseCidrListAnnotation(key: string, value: string): AnnotationCidr[] {
  const out: AnnotationCidr[] = [];
  for (const raw of value.split(",")) {
    const item = raw.trim();
    const r = tryParseCidr(item);
    if (!r.ok) {
      const why = item === "" ? "the list has an empty item" : `"${item}" is not a valid CIDR: ${r.reason}`;
      const hint =
        item === ""
          ? "remove the stray comma, or the annotation if it lists nothing"
          : (r.hint ?? "write IPv4 or IPv6 prefixes separated by commas, e.g. 192.0.2.0/24,2001:db8::/32");
      throw annotationError(
        `Invalid IP range '${item}' specified for annotation '${key}'`,
        `${why}; ${hint}`,
      );
    }
    out.push({ given: item, cidr: r.cidr, hostBitsSet: r.hostBitsSet });
  }
  return out;
}

const ENABLED = new Set(["enabled", "yes", "true"]);
const DISABLED = new Set(["disabled", "no", "false"]);

/**
 * `openservicemesh.io/sidecar-injection`: enabled|yes|true → "enabled", disabled|no|false → "disabled"
 * (case-insensitive, as OSM `isAnnotatedForInjection`); anything else → OSM's error text.
 */
export function parseSidecarInjection(value: string): "enabled" | "disabled" {
  return parseEnabledAnnotation(ANNOTATION_SIDECAR_INJECTION, value);
}

/** An on/off annotation in OSM's style (enabled|yes|true, disabled|no|false, any case); else OSM's error text. */
export function parseEnabledAnnotation(key: string, value: string): "enabled" | "disabled" {
  const lower = value.toLowerCase();
  if (ENABLED.has(lower)) return "enabled";
  if (DISABLED.has(lower)) return "disabled";
  throw annotationError(
    `Invalid annotation value for key "${key}": ${value}`,
    "use enabled or disabled (yes/no and true/false are accepted too)",
  );
}

/**
 * Parses every OSM annotation present, in OSM's order (injection decision first, then outbound ports, inbound
 * ports, IP exclusions, IP inclusions: `configurePodInit`), throwing the first error as OSM does.
 * Unrelated annotations are ignored.
 */
export function parsePodAnnotations(annotations: Readonly<Record<string, string>>): ParsedAnnotations {
  const get = (key: string): string | undefined =>
    Object.hasOwn(annotations, key) ? String(annotations[key]) : undefined;
  const result: {
    -readonly [K in keyof ParsedAnnotations]: ParsedAnnotations[K];
  } = {};
  const injection = get(ANNOTATION_SIDECAR_INJECTION);
  if (injection !== undefined) result.sidecarInjection = parseSidecarInjection(injection);
  const outPorts = get(ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST);
  if (outPorts !== undefined) {
    result.outboundPortExclusionList = parsePortListAnnotation(
      ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST,
      outPorts,
    );
  }
  const inPorts = get(ANNOTATION_INBOUND_PORT_EXCLUSION_LIST);
  if (inPorts !== undefined) {
    result.inboundPortExclusionList = parsePortListAnnotation(
      ANNOTATION_INBOUND_PORT_EXCLUSION_LIST,
      inPorts,
    );
  }
  const exclusions = get(ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST);
  if (exclusions !== undefined) {
    result.outboundIPRangeExclusionList = parseCidrListAnnotation(
      ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
      exclusions,
    );
  }
  const inclusions = get(ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST);
  if (inclusions !== undefined) {
    result.outboundIPRangeInclusionList = parseCidrListAnnotation(
      ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST,
      inclusions,
    );
  }
  const metrics = get(ANNOTATION_METRICS);
  if (metrics !== undefined) result.metrics = ENABLED.has(metrics.toLowerCase());
  return result;
}

/**
 * Parses `--annotation KEY=VALUE` flags into a map (split at the first `=`; the value may be empty or
 * contain `=`). A later flag for the same key wins, as with `kubectl annotate --overwrite`.
 */
export function parseAnnotationFlags(flags: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const flag of flags) {
    const at = flag.indexOf("=");
    if (at <= 0) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `--annotation ${JSON.stringify(flag)} is not of the form KEY=VALUE`,
        {
          hint: `e.g. --annotation ${ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST}=192.0.2.0/24 (quote values with spaces)`,
        },
      );
    }
    const key = flag.slice(0, at).trim();
    if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key)) {
      throw new MeshError(
        ErrorCode.InvalidArgument,
        `--annotation key ${JSON.stringify(key)} is not a valid annotation key`,
        {
          hint: "keys look like prefix/name, e.g. openservicemesh.io/outbound-port-exclusion-list",
        },
      );
    }
    out[key] = flag.slice(at + 1);
  }
  return out;
}

/**
 * The interception policy recorded on a pod at admission, the one owner of it: what is recorded (the canonical
 * text and its sha256), which MeshConfig fields it depends on, reading it back, the difference between two
 * records in one wording, the staleness verdict, and the policy a pod was admitted with, rebuilt from its
 * record. Interception is programmed once, by osm-init at pod start (docs/osm-behaviour.md §5.2), so a record
 * that differs from the current one means the pod must be recreated. Pure.
 */
import { createHash } from "node:crypto";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ANNOTATION_INTERCEPTION_POLICY_SOURCE,
} from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { parseCidr } from "../net/index.ts";
import { buildEffectivePolicy } from "./policy.ts";
import type { CidrEntry, EffectiveTrafficPolicy, GivenCidr, PortEntry, Provenance } from "./policy-types.ts";
import type { MeshConfig } from "./schema.ts";
import { validateMeshConfig } from "./validate.ts";

const FORMAT = "osm-ts/interception-policy/v1";

/**
 * The recorded lists: their key in the record, the MeshConfig field (under `spec.`) they come from, and how a
 * diff names their entries (exclusions, the list users change most, bare: `+203.0.113.10/32`).
 */
const LISTS = [
  { key: "outboundIPRangeExclusions", field: "traffic.outboundIPRangeExclusionList", label: "" },
  { key: "outboundIPRangeInclusions", field: "traffic.outboundIPRangeInclusionList", label: "include " },
  { key: "outboundPortExclusions", field: "traffic.outboundPortExclusionList", label: "outbound-port " },
  { key: "inboundPortExclusions", field: "traffic.inboundPortExclusionList", label: "inbound-port " },
  { key: "networkInterfaceExclusions", field: "traffic.networkInterfaceExclusionList", label: "interface " },
] as const;

type ListKey = (typeof LISTS)[number]["key"];

/** The MeshConfig list fields (under `spec.`) the record is computed from. */
export const RECORDED_LIST_FIELDS: readonly string[] = LISTS.map((l) => l.field);

/**
 * Every MeshConfig field (under `spec.`) the record is computed from: changing one makes running pods stale.
 * (`traffic.enableEgress` counts only through the non-TCP filter; TCP egress is applied live by the sidecar.)
 */
export const RECORDED_FIELDS: readonly string[] = [...RECORDED_LIST_FIELDS, "sidecar.localProxyMode"];

/** A policy as the injector records it on a pod: the canonical text and its hash. */
export interface PolicyRecording {
  readonly text: string;
  readonly hash: string;
}

/** A record read back: every list flattened (v4 then v6), entries as text. */
export interface PolicyRecord {
  readonly lists: Readonly<Record<ListKey, readonly string[]>>;
  readonly localProxyMode: string | undefined;
  readonly nonTcpEgressDropped: boolean;
}

/** JSON with object keys sorted at every level; arrays keep their order. */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Stable canonical JSON of what interception depends on: the aggregated prefixes, sorted ports and interfaces,
 * localProxyMode. Two policies with the same text intercept the same traffic, whatever order or spelling
 * the lists were written in. `enableEgress` counts only as `nonTcpEgress: "drop"` when it is false: TCP egress
 * is decided live by the sidecar, but the non-TCP egress filter is programmed at pod start. (Absent when egress
 * is enabled, so those pods keep the hash they had before the filter existed.)
 */
export function canonicalPolicyText(policy: EffectiveTrafficPolicy): string {
  const c = policy.canonical;
  const cidrs = (l: readonly CidrEntry[]) => l.map((e) => e.cidr.toString());
  return stableStringify({
    format: FORMAT,
    outboundIPRangeExclusions: {
      v4: cidrs(c.outboundIPRangeExclusions.v4),
      v6: cidrs(c.outboundIPRangeExclusions.v6),
    },
    outboundIPRangeInclusions: {
      v4: cidrs(c.outboundIPRangeInclusions.v4),
      v6: cidrs(c.outboundIPRangeInclusions.v6),
    },
    outboundPortExclusions: c.outboundPortExclusions.map((p) => p.port),
    inboundPortExclusions: c.inboundPortExclusions.map((p) => p.port),
    networkInterfaceExclusions: [...c.networkInterfaceExclusions],
    localProxyMode: policy.localProxyMode,
    ...(policy.enableEgress ? {} : { nonTcpEgress: "drop" }),
  });
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** sha256 (hex) of canonicalPolicyText: equal hashes mean equal interception. */
export function policyHash(policy: EffectiveTrafficPolicy): string {
  return sha256(canonicalPolicyText(policy));
}

/** What the injector records for a policy. */
export function recordPolicy(policy: EffectiveTrafficPolicy): PolicyRecording {
  const text = canonicalPolicyText(policy);
  return { text, hash: sha256(text) };
}

/** The recording of a text received from elsewhere (osm-init checks it against the hash on its pod). */
export function recordingOf(text: string): PolicyRecording {
  return { text, hash: sha256(text) };
}

/**
 * The largest record carried on the pod (about 500 /32 exclusions). A larger one stays off the pod object, which
 * keeps it small whatever the list size: the pod records the hash and where the policy came from, and osm-init
 * fetches the text by its hash (`osm interception init`).
 */
export const MAX_RECORD_ON_POD = 8 * 1024;

/** True when the recording travels on the pod (its text in the annotation, osm-init's script in the PodSpec). */
export function fitsOnPod(recording: PolicyRecording): boolean {
  return recording.text.length <= MAX_RECORD_ON_POD;
}

/** Where a policy was computed from, as recorded on a pod whose record does not fit on it. */
export function describeSource(meshConfig: MeshConfig): string {
  const { name, namespace, generation } = (meshConfig.metadata ?? {}) as {
    name?: unknown;
    namespace?: unknown;
    generation?: unknown;
  };
  const at = typeof generation === "number" ? ` generation ${generation}` : "";
  return `MeshConfig ${String(namespace ?? "")}/${String(name ?? "")}${at}`;
}

/** The pod annotations that carry a recording: the hash, and the text or (too large) where it came from. */
export function recordingAnnotations(recording: PolicyRecording, source: string): Record<string, string> {
  return {
    [ANNOTATION_INTERCEPTION_POLICY_HASH]: recording.hash,
    ...(fitsOnPod(recording)
      ? { [ANNOTATION_INTERCEPTION_POLICY]: recording.text }
      : { [ANNOTATION_INTERCEPTION_POLICY_SOURCE]: source }),
  };
}

/** The recording on a pod, as far as the pod carries it. */
export interface RecordOnPod {
  readonly hash: string;
  /** The canonical text, when it fitted on the pod. */
  readonly text: string | undefined;
  /** Where the policy came from, when its text did not fit. */
  readonly source: string | undefined;
}

/** The recording on a pod, from its annotations; undefined when the injector recorded none. */
export function recordedOn(annotations: Readonly<Record<string, string>>): RecordOnPod | undefined {
  const hash = annotations[ANNOTATION_INTERCEPTION_POLICY_HASH];
  if (hash === undefined) return undefined;
  return {
    hash: hash.trim(),
    text: annotations[ANNOTATION_INTERCEPTION_POLICY],
    source: annotations[ANNOTATION_INTERCEPTION_POLICY_SOURCE],
  };
}

/** Why a recorded policy cannot be shown: its text was never on the pod (too large), or it was lost. */
export function unrecordedReason(recorded: RecordOnPod): string {
  return recorded.source === undefined
    ? `the recorded policy text ${ANNOTATION_INTERCEPTION_POLICY} is missing`
    : `the policy it was admitted with (from ${recorded.source}, larger than ${MAX_RECORD_ON_POD / 1024} KiB, so only its hash is on the pod) can no longer be reconstructed`;
}

function entriesAt(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (value !== null && typeof value === "object") {
    const { v4, v6 } = value as { v4?: unknown; v6?: unknown };
    return [...entriesAt(v4 ?? []), ...entriesAt(v6 ?? [])];
  }
  return [];
}

/** Reads a recorded text back. Throws InvalidAnnotation when it is not a record this osm wrote. */
export function parsePolicyRecord(text: string): PolicyRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new MeshError(ErrorCode.InvalidAnnotation, "the pod's recorded interception policy is not JSON", {
      cause: error,
    });
  }
  const format = (parsed as { format?: unknown } | null)?.format;
  if (parsed === null || typeof parsed !== "object" || (format !== undefined && format !== FORMAT)) {
    throw new MeshError(
      ErrorCode.InvalidAnnotation,
      `the pod's recorded interception policy is not in the format this osm reads (${FORMAT})`,
    );
  }
  const record = parsed as Record<string, unknown>;
  const lists = Object.fromEntries(LISTS.map((l) => [l.key, entriesAt(record[l.key])])) as Record<
    ListKey,
    string[]
  >;
  const mode = record["localProxyMode"];
  return {
    lists,
    localProxyMode: typeof mode === "string" ? mode : undefined,
    nonTcpEgressDropped: record["nonTcpEgress"] === "drop",
  };
}

/**
 * What recreating the pod would change, recorded → current: `-` entries it loses, then `+` entries it gains
 * (`+203.0.113.10/32`; other lists are named: `+include 10.0.0.0/8`, `+outbound-port 8080`,
 * `+inbound-port 9090`, `+interface eth1`), then `localProxyMode PodIP (was Localhost)` and
 * `non-TCP egress dropped (was allowed)`. Empty when the two records intercept the same traffic.
 */
export function diffPolicyRecords(recordedText: string, currentText: string): string[] {
  let recorded: PolicyRecord;
  let current: PolicyRecord;
  try {
    recorded = parsePolicyRecord(recordedText);
    current = parsePolicyRecord(currentText);
  } catch {
    return recordedText === currentText ? [] : ["(the recorded policy is not in a format this osm reads)"];
  }
  const removed: string[] = [];
  const added: string[] = [];
  for (const list of LISTS) {
    const before = recorded.lists[list.key];
    const after = current.lists[list.key];
    const beforeSet = new Set(before);
    const afterSet = new Set(after);
    for (const entry of before) if (!afterSet.has(entry)) removed.push(`-${list.label}${entry}`);
    for (const entry of after) if (!beforeSet.has(entry)) added.push(`+${list.label}${entry}`);
  }
  const lines = [...removed, ...added];
  if (recorded.localProxyMode !== current.localProxyMode) {
    lines.push(`localProxyMode ${current.localProxyMode} (was ${recorded.localProxyMode})`);
  }
  if (recorded.nonTcpEgressDropped !== current.nonTcpEgressDropped) {
    lines.push(
      current.nonTcpEgressDropped
        ? "non-TCP egress dropped (was allowed)"
        : "non-TCP egress allowed (was dropped)",
    );
  }
  return lines;
}

/** Whether a pod runs the policy it would get now. */
export type PolicyStaleness =
  | { readonly state: "current"; readonly hash: string }
  | {
      readonly state: "stale";
      readonly recordedHash: string;
      readonly currentHash: string;
      /** `-10.0.0.0/8`, `+203.0.113.10/32`: what recreating the pod would change (never empty). */
      readonly diff: readonly string[];
    }
  | { readonly state: "error"; readonly reason: string };

/**
 * The staleness verdict for a pod's annotations against the policy it would get now (`recompute` may throw:
 * a bad annotation; that is an `error` verdict). Undefined when the pod has no recording. Hashes decide; the
 * texts only explain, so a pod whose text was lost is still reported stale.
 */
export function evaluateStaleness(
  annotations: Readonly<Record<string, string>>,
  recompute: () => PolicyRecording,
): PolicyStaleness | undefined {
  const recorded = recordedOn(annotations);
  if (recorded === undefined) return undefined;
  let current: PolicyRecording;
  try {
    current = recompute();
  } catch (error) {
    return { state: "error", reason: error instanceof Error ? error.message : String(error) };
  }
  if (current.hash === recorded.hash) return { state: "current", hash: current.hash };
  const diff =
    recorded.text === undefined
      ? [`(${unrecordedReason(recorded)})`]
      : diffPolicyRecords(recorded.text, current.text);
  return {
    state: "stale",
    recordedHash: recorded.hash,
    currentHash: current.hash,
    diff: diff.length > 0 ? diff : ["(same entries, recorded by another version)"],
  };
}

/**
 * The policy a record describes, for programming it (osm-init of a policy fetched by hash): the record's lists
 * are already merged, masked, aggregated and sorted, so they stand as both the as-given and the canonical
 * lists, each CIDR parsed once. No validation pass and no warnings (the text is this osm's own output, checked
 * against its hash); provenance is the MeshConfig field of each list. Its recording is the record itself.
 */
export function policyFromRecord(text: string): EffectiveTrafficPolicy {
  const record = parsePolicyRecord(text);
  const field = (key: ListKey): Provenance => ({
    source: "meshconfig",
    field: `spec.${LISTS.find((l) => l.key === key)!.field}`,
  });
  const cidrs = (key: "outboundIPRangeExclusions" | "outboundIPRangeInclusions") => {
    const provenance = field(key);
    const entries = record.lists[key].map(
      (given): CidrEntry => ({ cidr: parseCidr(given), given, provenance }),
    );
    return { v4: entries.filter((e) => e.cidr.family === 4), v6: entries.filter((e) => e.cidr.family === 6) };
  };
  const ports = (key: "outboundPortExclusions" | "inboundPortExclusions") =>
    record.lists[key].map((p): PortEntry => ({ port: Number(p), provenance: field(key) }));
  const exclusions = cidrs("outboundIPRangeExclusions");
  const inclusions = cidrs("outboundIPRangeInclusions");
  // Canonical prefixes have no host bits: each is its own as-given item.
  const given = (l: { v4: readonly CidrEntry[]; v6: readonly CidrEntry[] }): GivenCidr[] =>
    [...l.v4, ...l.v6].map((e) => ({
      given: e.given,
      cidr: e.cidr,
      hostBitsSet: false,
      provenance: e.provenance,
    }));
  return {
    asGiven: {
      outboundIPRangeExclusionList: given(exclusions),
      outboundIPRangeInclusionList: given(inclusions),
      outboundPortExclusionList: ports("outboundPortExclusions"),
      inboundPortExclusionList: ports("inboundPortExclusions"),
      networkInterfaceExclusionList: record.lists.networkInterfaceExclusions,
    },
    canonical: {
      outboundIPRangeExclusions: exclusions,
      outboundIPRangeInclusions: inclusions,
      outboundPortExclusions: ports("outboundPortExclusions"),
      inboundPortExclusions: ports("inboundPortExclusions"),
      networkInterfaceExclusions: record.lists.networkInterfaceExclusions,
    },
    localProxyMode: record.localProxyMode === "PodIP" ? "PodIP" : "Localhost",
    enableEgress: !record.nonTcpEgressDropped,
    warnings: [],
  };
}

/**
 * The policy a pod was admitted with, rebuilt from its recorded text: the recorded lists stand in for the
 * MeshConfig of that time, and the pod's annotations are applied again so their entries keep their
 * provenance (a pod's annotations are read at admission only, and it still carries them).
 */
export function rebuildRecordedPolicy(
  recordedText: string,
  podAnnotations: Readonly<Record<string, string>>,
  namespaceAnnotations: Readonly<Record<string, string>>,
  current: MeshConfig,
): EffectiveTrafficPolicy {
  const record = parsePolicyRecord(recordedText);
  const then = validateMeshConfig({
    apiVersion: "config.openservicemesh.io/v1alpha2",
    kind: "MeshConfig",
    metadata: { name: current.metadata?.name, namespace: current.metadata?.namespace },
    spec: {
      ...current.spec,
      traffic: {
        ...current.spec.traffic,
        outboundIPRangeExclusionList: record.lists.outboundIPRangeExclusions,
        outboundIPRangeInclusionList: record.lists.outboundIPRangeInclusions,
        outboundPortExclusionList: record.lists.outboundPortExclusions.map(Number),
        inboundPortExclusionList: record.lists.inboundPortExclusions.map(Number),
        networkInterfaceExclusionList: record.lists.networkInterfaceExclusions,
        // The non-TCP filter the pod was started with (TCP egress is the live MeshConfig's, in the sidecar).
        enableEgress: !record.nonTcpEgressDropped,
      },
      sidecar: {
        ...current.spec.sidecar,
        ...(record.localProxyMode === undefined ? {} : { localProxyMode: record.localProxyMode }),
      },
    },
  });
  return buildEffectivePolicy(then, { podAnnotations, namespaceAnnotations });
}

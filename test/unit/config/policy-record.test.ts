import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildEffectivePolicy,
  defaultMeshConfig,
  describeSource,
  diffPolicyRecords,
  evaluateStaleness,
  fitsOnPod,
  MAX_RECORD_ON_POD,
  type MeshConfig,
  type PolicyRecording,
  parsePolicyRecord,
  policyFromRecord,
  rebuildRecordedPolicy,
  recordedOn,
  recordingAnnotations,
  recordPolicy,
} from "../../../src/config/index.ts";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
} from "../../../src/constants.ts";
import { buildPlan, renderNft } from "../../../src/interception/index.ts";
import { exclusionList } from "../../support/exclusions.ts";

function recordingFor(
  traffic: Partial<MeshConfig["spec"]["traffic"]>,
  podAnnotations: Record<string, string> = {},
  localProxyMode?: "PodIP",
): PolicyRecording {
  const base = defaultMeshConfig();
  const meshConfig: MeshConfig = {
    ...base,
    spec: {
      ...base.spec,
      traffic: { ...base.spec.traffic, ...traffic },
      sidecar: { ...base.spec.sidecar, ...(localProxyMode ? { localProxyMode } : {}) },
    },
  };
  return recordPolicy(buildEffectivePolicy(meshConfig, { podAnnotations }));
}
const SOURCE = "MeshConfig osm-system/osm-mesh-config generation 3";
const textFor = (traffic: Partial<MeshConfig["spec"]["traffic"]>) => recordingFor(traffic).text;

test("the recording is the canonical text and its sha256, on the two annotations, read back as given", () => {
  const recording = recordingFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  assert.match(recording.hash, /^[0-9a-f]{64}$/);
  const annotations = recordingAnnotations(recording, SOURCE);
  assert.deepEqual(Object.keys(annotations).sort(), [
    ANNOTATION_INTERCEPTION_POLICY,
    ANNOTATION_INTERCEPTION_POLICY_HASH,
  ]);
  assert.deepEqual(recordedOn({ ...annotations, other: "x" }), { ...recording, source: undefined });
  assert.equal(recordedOn({ other: "x" }), undefined);
  assert.deepEqual(parsePolicyRecord(recording.text).lists.outboundIPRangeExclusions, ["10.0.0.0/8"]);
});

test("a record that is not JSON, or in another format, is refused with the reason", () => {
  assert.throws(() => parsePolicyRecord("10.0.0.0/8"), /recorded interception policy is not JSON/);
  assert.throws(
    () => parsePolicyRecord('{"format":"osm-ts/interception-policy/v9"}'),
    /not in the format this osm reads \(osm-ts\/interception-policy\/v1\)/,
  );
});

test("identical policies have an empty diff", () => {
  const text = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  assert.deepEqual(diffPolicyRecords(text, text), []);
});

test("an exclusion added to the MeshConfig and one removed show as bare +CIDR and -CIDR", () => {
  const recorded = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  const current = textFor({ outboundIPRangeExclusionList: ["203.0.113.10/32"] });
  assert.deepEqual(diffPolicyRecords(recorded, current), ["-10.0.0.0/8", "+203.0.113.10/32"]);
});

test("the same exclusions written in another order or spelling are no difference", () => {
  const recorded = textFor({ outboundIPRangeExclusionList: ["203.0.113.10/32", "10.0.0.0/8"] });
  const current = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8", "203.0.113.10/32", "10.0.0.0/8"] });
  assert.deepEqual(diffPolicyRecords(recorded, current), []);
});

test("differences in every interception field are named, removals first", () => {
  const recorded = recordingFor({
    outboundIPRangeExclusionList: ["10.0.0.0/8"],
    inboundPortExclusionList: [9090],
  });
  const current = recordingFor(
    {
      enableEgress: false,
      outboundIPRangeInclusionList: ["198.51.100.0/24"],
      outboundPortExclusionList: [8080],
      networkInterfaceExclusionList: ["eth1"],
    },
    { "openservicemesh.io/outbound-ip-range-exclusion-list": "2001:db8::/32" },
    "PodIP",
  );
  assert.deepEqual(diffPolicyRecords(recorded.text, current.text), [
    "-10.0.0.0/8",
    "-inbound-port 9090",
    "+2001:db8::/32",
    "+include 198.51.100.0/24",
    "+outbound-port 8080",
    "+interface eth1",
    "localProxyMode PodIP (was Localhost)",
    "non-TCP egress dropped (was allowed)",
  ]);
  assert.deepEqual(
    diffPolicyRecords(current.text, recorded.text).at(-1),
    "non-TCP egress allowed (was dropped)",
  );
});

test("a text this osm does not read is a difference that says so", () => {
  assert.deepEqual(diffPolicyRecords("x", "x"), []);
  assert.deepEqual(diffPolicyRecords("x", textFor({})), [
    "(the recorded policy is not in a format this osm reads)",
  ]);
});

test("staleness: no recording, no verdict; equal hashes, current", () => {
  const recording = recordingFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  assert.equal(
    evaluateStaleness({}, () => recording),
    undefined,
  );
  assert.deepEqual(
    evaluateStaleness(recordingAnnotations(recording, SOURCE), () => recording),
    { state: "current", hash: recording.hash },
  );
});

test("staleness: a different hash is stale with what recreating the pod would add and remove", () => {
  const recorded = recordingFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  const current = recordingFor({ outboundIPRangeExclusionList: ["203.0.113.10/32"] });
  assert.deepEqual(
    evaluateStaleness(recordingAnnotations(recorded, SOURCE), () => current),
    {
      state: "stale",
      recordedHash: recorded.hash,
      currentHash: current.hash,
      diff: ["-10.0.0.0/8", "+203.0.113.10/32"],
    },
  );
});

test("staleness: a lost text, or only the hash differing, still says something", () => {
  const current = recordingFor({});
  const lost = evaluateStaleness({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1" }, () => current);
  assert.equal(lost?.state, "stale");
  assert.match(lost?.state === "stale" ? lost.diff.join(" ") : "", /is missing/);
  const other = evaluateStaleness(
    { [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1", [ANNOTATION_INTERCEPTION_POLICY]: current.text },
    () => current,
  );
  assert.deepEqual(other?.state === "stale" ? other.diff : [], [
    "(same entries, recorded by another version)",
  ]);
});

test("staleness: a recomputation that throws is an error verdict with its reason", () => {
  const verdict = evaluateStaleness({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1" }, () => {
    throw new Error("bad annotation");
  });
  assert.deepEqual(verdict, { state: "error", reason: "bad annotation" });
});

test("a record larger than MAX_RECORD_ON_POD stays off the pod: the hash and its source only", () => {
  const list = Array.from({ length: 2000 }, (_, i) => `10.${i >> 8}.${i & 255}.${0}/32`);
  const big = recordingFor({ outboundIPRangeExclusionList: list });
  assert.ok(big.text.length > MAX_RECORD_ON_POD && !fitsOnPod(big));
  const annotations = recordingAnnotations(big, SOURCE);
  assert.deepEqual(recordedOn(annotations), { hash: big.hash, text: undefined, source: SOURCE });
  assert.deepEqual(
    evaluateStaleness(annotations, () => big),
    { state: "current", hash: big.hash },
  );
  const now = recordingFor({ outboundIPRangeExclusionList: list.slice(1) });
  const verdict = evaluateStaleness(annotations, () => now);
  assert.deepEqual(verdict?.state === "stale" ? verdict.diff : [], [
    `(the policy it was admitted with (from ${SOURCE}, larger than 8 KiB, so only its hash is on the pod) can no longer be reconstructed)`,
  ]);
});

test("describeSource names the MeshConfig and its generation", () => {
  const base = defaultMeshConfig();
  const mc = { ...base, metadata: { name: "osm-mesh-config", namespace: "osm-system", generation: 3 } };
  assert.equal(describeSource(mc), SOURCE);
});

test("policyFromRecord gives back a policy that records to the same text and renders the same nft rules", () => {
  for (const recording of [
    recordingFor({}),
    recordingFor(
      {
        enableEgress: false,
        outboundIPRangeExclusionList: ["10.0.0.0/8", "10.0.0.1/32", "2001:db8::/48"],
        outboundIPRangeInclusionList: ["198.51.100.0/24"],
        outboundPortExclusionList: [8080, 443],
        inboundPortExclusionList: [9090],
        networkInterfaceExclusionList: ["eth1"],
      },
      { "openservicemesh.io/outbound-ip-range-exclusion-list": "203.0.113.10/32" },
      "PodIP",
    ),
    recordingFor({ outboundIPRangeExclusionList: exclusionList(100_000) }),
  ]) {
    const policy = policyFromRecord(recording.text);
    assert.equal(recordPolicy(policy).text, recording.text);
    const original = rebuildRecordedPolicy(recording.text, {}, {}, defaultMeshConfig());
    assert.equal(renderNft(buildPlan(policy)), renderNft(buildPlan(original)));
  }
});

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  defaultMeshConfig,
  type MeshConfig,
} from "../../../src/config/index.ts";
import {
  diffPolicyText,
  formatPolicyDiff,
  isEmptyDiff,
  policyEntries,
} from "../../../src/controller/policy-diff.ts";

function textFor(
  traffic: Partial<MeshConfig["spec"]["traffic"]>,
  podAnnotations: Record<string, string> = {},
  localProxyMode?: "PodIP",
): string {
  const base = defaultMeshConfig();
  const meshConfig: MeshConfig = {
    ...base,
    spec: {
      ...base.spec,
      traffic: { ...base.spec.traffic, ...traffic },
      sidecar: { ...base.spec.sidecar, ...(localProxyMode ? { localProxyMode } : {}) },
    },
  };
  return canonicalPolicyText(buildEffectivePolicy(meshConfig, { podAnnotations }));
}

test("identical policies have an empty diff", () => {
  const text = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  const diff = diffPolicyText(text, text);
  assert.ok(isEmptyDiff(diff));
  assert.deepEqual(formatPolicyDiff(diff), []);
});

test("an exclusion added to the MeshConfig and one removed show as bare +CIDR and -CIDR", () => {
  const recorded = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8"] });
  const current = textFor({ outboundIPRangeExclusionList: ["203.0.113.10/32"] });
  assert.deepEqual(formatPolicyDiff(diffPolicyText(recorded, current)), ["-10.0.0.0/8", "+203.0.113.10/32"]);
});

test("the same exclusions written in another order or spelling are no difference", () => {
  const recorded = textFor({ outboundIPRangeExclusionList: ["203.0.113.10/32", "10.0.0.0/8"] });
  const current = textFor({ outboundIPRangeExclusionList: ["10.0.0.0/8", "203.0.113.10/32", "10.0.0.0/8"] });
  assert.ok(isEmptyDiff(diffPolicyText(recorded, current)));
});

test("other fields are named: inclusions, ports, IPv6 exclusions and localProxyMode", () => {
  const recorded = textFor({});
  const current = textFor(
    {
      outboundIPRangeInclusionList: ["198.51.100.0/24"],
      outboundPortExclusionList: [8080],
      inboundPortExclusionList: [9090],
    },
    { "openservicemesh.io/outbound-ip-range-exclusion-list": "2001:db8::/32" },
    "PodIP",
  );
  const formatted = formatPolicyDiff(diffPolicyText(recorded, current));
  assert.deepEqual(formatted.toSorted(), [
    "+2001:db8::/32",
    "+inboundPortExclusions:9090",
    "+localProxyMode:PodIP",
    "+outboundIPRangeInclusions:198.51.100.0/24",
    "+outboundPortExclusions:8080",
    "-localProxyMode:Localhost",
  ]);
});

test("the format marker is not an entry", () => {
  assert.ok(!policyEntries(textFor({})).some((e) => e.includes("osm-ts/interception-policy")));
});

test("a text that is not JSON is compared line by line, ignoring blanks, spaces and repeats", () => {
  assert.deepEqual(policyEntries(" x \r\n\nx\ny"), ["x", "y"]);
  assert.deepEqual(diffPolicyText("c\nb\na\n", "a\nd\nc\ne\n"), { added: ["d", "e"], removed: ["b"] });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  type EffectiveTrafficPolicy,
  policyHash,
  validateMeshConfig,
} from "../../../src/config/index.ts";
import {
  ANNOTATION_INBOUND_PORT_EXCLUSION_LIST as IN_PORTS,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST as IP_EXCL,
  ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST as IP_INCL,
  ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST as OUT_PORTS,
} from "../../../src/constants.ts";
import { ErrorCode } from "../../../src/errors.ts";
import { traffic } from "./bad-input-cases.ts";

const texts = (list: readonly { given: string }[]) => list.map((e) => e.given);
const ports = (list: readonly { port: number }[]) => list.map((e) => e.port);

const mc = (t: Record<string, unknown>, sidecar: Record<string, unknown> = {}) =>
  validateMeshConfig({ ...traffic(t), spec: { traffic: t, sidecar } });

const codes = (p: EffectiveTrafficPolicy) => p.warnings.map((w) => w.code);

describe("merge order (docs/osm-behaviour.md §1.6, OSM exclusions.go)", () => {
  test("IP ranges: pod entries first, then global; exact-string dedup keeps the first", () => {
    const p = buildEffectivePolicy(
      mc({ outboundIPRangeExclusionList: ["1.1.1.1/32", "10.0.0.0/8", "10.0.0.1/8"] }),
      {
        podAnnotations: { [IP_EXCL]: "10.0.0.0/8, 2.2.2.2/32" },
      },
    );
    assert.deepEqual(texts(p.asGiven.outboundIPRangeExclusionList), [
      "10.0.0.0/8",
      "2.2.2.2/32",
      "1.1.1.1/32",
      "10.0.0.1/8",
    ]);
    // Each item keeps where it came from.
    assert.deepEqual(
      p.asGiven.outboundIPRangeExclusionList.map((e) => e.provenance.source),
      ["annotation", "annotation", "meshconfig", "meshconfig"],
    );
  });
  test("inclusions merge the same way", () => {
    const p = buildEffectivePolicy(mc({ outboundIPRangeInclusionList: ["10.0.0.0/8"] }), {
      podAnnotations: { [IP_INCL]: "192.0.2.0/24" },
    });
    assert.deepEqual(texts(p.asGiven.outboundIPRangeInclusionList), ["192.0.2.0/24", "10.0.0.0/8"]);
  });
  test("ports: global entries first, then pod; dedup by value keeps the first", () => {
    const p = buildEffectivePolicy(
      mc({ outboundPortExclusionList: [443, 80], inboundPortExclusionList: [8080] }),
      {
        podAnnotations: { [OUT_PORTS]: "6379, 443, 080", [IN_PORTS]: "9090,8080" },
      },
    );
    assert.deepEqual(ports(p.asGiven.outboundPortExclusionList), [443, 80, 6379]);
    assert.deepEqual(ports(p.asGiven.inboundPortExclusionList), [8080, 9090]);
  });
  test("interfaces and localProxyMode come from the MeshConfig only", () => {
    const p = buildEffectivePolicy(
      mc({ networkInterfaceExclusionList: ["eth1", "eth0"] }, { localProxyMode: "PodIP" }),
    );
    assert.deepEqual(p.asGiven.networkInterfaceExclusionList, ["eth1", "eth0"]);
    assert.deepEqual(p.canonical.networkInterfaceExclusions, ["eth0", "eth1"]);
    assert.equal(p.localProxyMode, "PodIP");
  });
  test("property: the merge is pod-then-global for IPs and global-then-pod for ports, first occurrence kept", () => {
    const cidr = fc.constantFrom(
      "10.0.0.0/8",
      "10.0.0.1/8",
      "192.0.2.0/24",
      "192.0.2.1/32",
      "fd00::/8",
      "2001:db8::/32",
    );
    const port = fc.integer({ min: 1, max: 20 });
    fc.assert(
      fc.property(
        fc.array(cidr),
        fc.array(cidr, { minLength: 1 }),
        fc.array(port),
        fc.array(port, { minLength: 1 }),
        (g, pod, gp, pp) => {
          const p = buildEffectivePolicy(
            mc({ outboundIPRangeExclusionList: g, outboundPortExclusionList: gp }),
            {
              podAnnotations: { [IP_EXCL]: pod.join(","), [OUT_PORTS]: pp.join(",") },
            },
          );
          assert.deepEqual(texts(p.asGiven.outboundIPRangeExclusionList), [...new Set([...pod, ...g])]);
          assert.deepEqual(ports(p.asGiven.outboundPortExclusionList), [...new Set([...gp, ...pp])]);
          // The canonical view covers exactly the merged prefixes' addresses and carries provenance.
          for (const e of [
            ...p.canonical.outboundIPRangeExclusions.v4,
            ...p.canonical.outboundIPRangeExclusions.v6,
          ]) {
            assert.ok(e.sources && e.sources.length > 0);
            assert.equal(e.given, e.sources[0]!.given);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("canonical view", () => {
  test("masked, deduplicated, aggregated, split by family, sorted, with provenance", () => {
    const p = buildEffectivePolicy(
      mc({
        outboundIPRangeExclusionList: ["203.0.113.10/32", "10.0.0.1/8", "fd00::/9"],
        outboundPortExclusionList: [443, 80],
      }),
      { podAnnotations: { [IP_EXCL]: "203.0.113.11/32,fd80::/9,10.1.0.0/16", [OUT_PORTS]: "22" } },
    );
    const ex = p.canonical.outboundIPRangeExclusions;
    assert.deepEqual(
      ex.v4.map((e) => e.cidr.toString()),
      ["10.0.0.0/8", "203.0.113.10/31"],
    );
    assert.deepEqual(
      ex.v6.map((e) => e.cidr.toString()),
      ["fd00::/8"],
    );
    // 10.0.0.0/8: the first contributor in merge order is the pod's 10.1.0.0/16.
    assert.equal(ex.v4[0]!.given, "10.1.0.0/16");
    assert.deepEqual(ex.v4[0]!.provenance, { source: "annotation", key: IP_EXCL });
    assert.deepEqual(
      ex.v4[0]!.sources?.map((s) => s.given),
      ["10.1.0.0/16", "10.0.0.1/8"],
    );
    assert.deepEqual(
      ex.v4[1]!.sources?.map((s) => [s.given, s.provenance.source]),
      [
        ["203.0.113.11/32", "annotation"],
        ["203.0.113.10/32", "meshconfig"],
      ],
    );
    assert.deepEqual(
      p.canonical.outboundPortExclusions.map((e) => [e.port, e.provenance.source]),
      [
        [22, "annotation"],
        [80, "meshconfig"],
        [443, "meshconfig"],
      ],
    );
  });
});

describe("warnings for footguns", () => {
  test("excluding 0.0.0.0/0 or ::/0", () => {
    const p = buildEffectivePolicy(mc({ outboundIPRangeExclusionList: ["0.0.0.0/0", "::/0"] }));
    assert.deepEqual(codes(p), ["exclude-everything", "exclude-everything"]);
    assert.match(
      p.warnings[0]!.message,
      /^exclusion 0\.0\.0\.0\/0 \(MeshConfig spec\.traffic\.outboundIPRangeExclusionList\) covers every IPv4 destination/,
    );
  });
  test("exclusions that together cover everything", () => {
    const p = buildEffectivePolicy(mc({ outboundIPRangeExclusionList: ["0.0.0.0/1", "128.0.0.0/1"] }));
    assert.deepEqual(codes(p), ["exclude-everything"]);
  });
  test("host bits set", () => {
    const p = buildEffectivePolicy(mc({}), { podAnnotations: { [IP_EXCL]: "10.0.0.1/8" } });
    assert.deepEqual(p.warnings, [
      {
        code: "host-bits-set",
        message:
          "exclusion 10.0.0.1/8 (pod annotation openservicemesh.io/outbound-ip-range-exclusion-list) has host bits set: it means 10.0.0.0/8 (2^24 addresses); write 10.0.0.1/32 for that one address",
      },
    ]);
  });
  test("an exclusion inside an inclusion, one covering an inclusion, and one outside every inclusion", () => {
    const p = buildEffectivePolicy(
      mc({
        outboundIPRangeInclusionList: ["10.0.0.0/16", "192.0.2.0/28"],
        outboundIPRangeExclusionList: ["10.0.5.0/24", "192.0.2.0/24", "198.51.100.0/24"],
      }),
    );
    assert.deepEqual(codes(p), [
      "exclusion-inside-inclusion",
      "exclusion-covers-inclusion",
      "exclusion-outside-inclusions",
    ]);
  });
  test("an exclusion with egress disabled (the guide's case)", () => {
    const p = buildEffectivePolicy(
      mc({ enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] }),
    );
    assert.deepEqual(p.warnings, [
      {
        code: "egress-disabled-bypassed",
        message:
          "enableEgress is false, but traffic to 203.0.113.10/32 (MeshConfig spec.traffic.outboundIPRangeExclusionList) bypasses the sidecar and goes out directly: egress is not blocked there",
      },
    ]);
  });
  test("an inclusion list with egress disabled", () => {
    const p = buildEffectivePolicy(mc({ enableEgress: false, outboundIPRangeInclusionList: ["10.0.0.0/8"] }));
    assert.deepEqual(codes(p), ["egress-disabled-bypassed"]);
  });
  test("redundant entries, more than 15 ports, exclusion annotations on a namespace", () => {
    const ports = Array.from({ length: 16 }, (_, i) => 1000 + i);
    const p = buildEffectivePolicy(
      mc({ outboundIPRangeExclusionList: ["10.0.0.0/8", "10.1.0.0/16"], outboundPortExclusionList: ports }),
      {
        namespaceAnnotations: { [IP_EXCL]: "192.0.2.0/24" },
      },
    );
    assert.deepEqual(codes(p), ["redundant-entry", "too-many-ports", "namespace-annotation-ignored"]);
    assert.deepEqual(texts(p.asGiven.outboundIPRangeExclusionList), ["10.0.0.0/8", "10.1.0.0/16"]); // the namespace's is ignored
  });
  test("no warnings for the OSM defaults", () => {
    assert.deepEqual(buildEffectivePolicy(mc({})).warnings, []);
  });
});

describe("annotation errors surface from buildEffectivePolicy with OSM's text", () => {
  test("an invalid pod annotation", () => {
    assert.throws(() => buildEffectivePolicy(mc({}), { podAnnotations: { [IP_EXCL]: "10.0.0.0/33" } }), {
      code: ErrorCode.InvalidAnnotation,
      message: `Invalid IP range '10.0.0.0/33' specified for annotation '${IP_EXCL}'`,
    });
  });
  test("an invalid namespace annotation", () => {
    assert.throws(
      () =>
        buildEffectivePolicy(mc({}), {
          namespaceAnnotations: { "openservicemesh.io/sidecar-injection": "maybe" },
        }),
      { message: 'Invalid annotation value for key "openservicemesh.io/sidecar-injection": maybe' },
    );
  });
});

describe("canonical text and hash", () => {
  test("the same interception in another order or spelling gives the same text and hash", () => {
    const a = buildEffectivePolicy(
      mc({
        outboundIPRangeExclusionList: ["10.0.0.1/8", "192.0.2.0/25", "192.0.2.128/25"],
        outboundPortExclusionList: [80, 443],
      }),
    );
    const b = buildEffectivePolicy(mc({ outboundIPRangeExclusionList: ["192.0.2.0/24", "10.0.0.0/8"] }), {
      podAnnotations: { [OUT_PORTS]: "443,80" },
    });
    assert.equal(canonicalPolicyText(a), canonicalPolicyText(b));
    assert.equal(policyHash(a), policyHash(b));
    assert.equal(
      canonicalPolicyText(a),
      '{"format":"osm-ts/interception-policy/v1","inboundPortExclusions":[],"localProxyMode":"Localhost","networkInterfaceExclusions":[],"outboundIPRangeExclusions":{"v4":["10.0.0.0/8","192.0.2.0/24"],"v6":[]},"outboundIPRangeInclusions":{"v4":[],"v6":[]},"outboundPortExclusions":[80,443]}',
    );
    assert.match(policyHash(a), /^[0-9a-f]{64}$/);
  });
  test("any interception change changes the hash, disabling egress too (the non-TCP filter)", () => {
    const base = policyHash(buildEffectivePolicy(mc({})));
    const variants = [
      mc({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }),
      mc({ outboundIPRangeInclusionList: ["203.0.113.0/24"] }),
      mc({ outboundPortExclusionList: [22] }),
      mc({ inboundPortExclusionList: [22] }),
      mc({ networkInterfaceExclusionList: ["eth1"] }),
      mc({}, { localProxyMode: "PodIP" }),
    ];
    const hashes = variants.map((v) => policyHash(buildEffectivePolicy(v)));
    assert.equal(new Set([base, ...hashes]).size, 7);
    assert.equal(policyHash(buildEffectivePolicy(mc({ enableEgress: true }))), base);
    assert.notEqual(policyHash(buildEffectivePolicy(mc({ enableEgress: false }))), base);
  });
});

describe("scale", () => {
  test("50,000 exclusions validate, merge and aggregate quickly (no quadratic step)", {
    timeout: 30_000,
  }, () => {
    const list: string[] = [];
    for (let i = 0; i < 50_000; i++) list.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
    for (let i = 0; i < 1000; i++) list.push(`2001:db8::${i.toString(16)}/128`);
    const config = mc({
      enableEgress: false,
      outboundIPRangeExclusionList: list,
      outboundIPRangeInclusionList: ["10.0.0.0/8"],
    });
    const p = buildEffectivePolicy(config, { podAnnotations: { [IP_EXCL]: list.slice(0, 5000).join(",") } });
    assert.equal(p.asGiven.outboundIPRangeExclusionList.length, 51_000);
    // 10.0.0.0 .. 10.0.195.79 (50,000 addresses) as the minimal prefixes:
    assert.deepEqual(
      p.canonical.outboundIPRangeExclusions.v4.map((e) => e.cidr.toString()),
      ["10.0.0.0/17", "10.0.128.0/18", "10.0.192.0/23", "10.0.194.0/24", "10.0.195.0/26", "10.0.195.64/28"],
    );
    assert.equal(p.canonical.outboundIPRangeExclusions.v4[0]!.sources?.length, 32_768);
    // Warnings are capped per code: 10 listed, then a count.
    const inside = p.warnings.filter((w) => w.code === "exclusion-inside-inclusion");
    assert.equal(inside.length, 11);
    assert.equal(
      inside[10]!.message,
      "... and 49990 more exclusion-inside-inclusion warnings like the above",
    );
  });
});

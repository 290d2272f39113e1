import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildPlan, describeDecidingRule, explain } from "../../../src/interception/index.ts";
import { parseIp } from "../../../src/net/index.ts";
import { buildTestPolicy } from "../../golden/interception/policy-builder.ts";

const plan = buildPlan(
  buildTestPolicy({
    outboundIPRangeExclusionList: ["203.0.113.10/32"],
    podOutboundIPRangeExclusions: ["198.51.100.0/24"],
    outboundPortExclusionList: [6379],
    inboundPortExclusionList: [8080],
    networkInterfaceExclusionList: ["net1"],
  }),
);
const at = (ip: string, port: number) => ({ destination: parseIp(ip), port });

describe("explain", () => {
  for (const backend of ["iptables", "nftables"] as const) {
    it(`sends a non-excluded destination to the outbound sidecar (${backend})`, () => {
      const e = explain(plan, at("203.0.113.11", 80), backend);
      assert.equal(e.verdict, "outbound-sidecar");
      assert.equal(e.port, 15001);
      assert.deepEqual(e.provenance, []);
    });

    it(`names the MeshConfig field of an excluded address (${backend})`, () => {
      const e = explain(plan, at("203.0.113.10", 80), backend);
      assert.equal(e.verdict, "direct");
      assert.deepEqual(e.provenance, [
        { source: "meshconfig", field: "spec.traffic.outboundIPRangeExclusionList" },
      ]);
    });

    it(`names the pod annotation of an excluded range (${backend})`, () => {
      const e = explain(plan, at("198.51.100.9", 443), backend);
      assert.equal(e.verdict, "direct");
      assert.equal(e.matchedEntry, "198.51.100.0/24");
      assert.deepEqual(e.provenance, [
        { source: "annotation", key: "openservicemesh.io/outbound-ip-range-exclusion-list" },
      ]);
    });

    it(`lets an excluded port go direct and names it (${backend})`, () => {
      const e = explain(plan, at("203.0.113.11", 6379), backend);
      assert.equal(e.verdict, "direct");
      assert.deepEqual(e.provenance, [
        { source: "meshconfig", field: "spec.traffic.outboundPortExclusionList" },
      ]);
    });

    it(`never redirects the sidecar's own traffic (uid 1500) (${backend})`, () => {
      const e = explain(plan, { ...at("203.0.113.11", 80), uid: 1500 }, backend);
      assert.equal(e.verdict, "direct");
      assert.match(e.decidingRule?.slug ?? "", /outbound-sidecar-uid/);
    });

    it(`skips an excluded interface (${backend})`, () => {
      assert.equal(
        explain(plan, { ...at("203.0.113.11", 80), outInterface: "net1" }, backend).verdict,
        "direct",
      );
    });

    it(`sends inbound traffic to 15003 except excluded and probe ports (${backend})`, () => {
      const inbound = (port: number) =>
        explain(plan, { ...at("192.0.2.1", port), direction: "inbound" }, backend);
      assert.equal(inbound(80).verdict, "inbound-sidecar");
      assert.equal(inbound(8080).verdict, "direct");
      assert.equal(inbound(15901).verdict, "direct");
    });
  }

  it("does not intercept IPv6 with the iptables backend when the policy has no IPv6 entry, and does with nft", () => {
    assert.equal(explain(plan, at("2001:db8::1", 80), "iptables").verdict, "direct");
    assert.equal(explain(plan, at("2001:db8::1", 80), "nftables").verdict, "outbound-sidecar");
  });

  it("keeps an excluded address inside an included range direct, and redirects the rest of the range only", () => {
    const p = buildPlan(
      buildTestPolicy({
        outboundIPRangeInclusionList: ["203.0.113.0/24"],
        outboundIPRangeExclusionList: ["203.0.113.10/32"],
      }),
    );
    for (const backend of ["iptables", "nftables"] as const) {
      assert.equal(explain(p, at("203.0.113.10", 80), backend).verdict, "direct");
      assert.equal(explain(p, at("203.0.113.11", 80), backend).verdict, "outbound-sidecar");
      assert.equal(explain(p, at("198.51.100.1", 80), backend).verdict, "direct");
    }
  });

  it("DNATs the sidecar's loopback traffic to the pod IP in PodIP mode", () => {
    const p = buildPlan(buildTestPolicy({ localProxyMode: "PodIP" }));
    const e = explain(p, { ...at("127.0.0.1", 8080), uid: 1500 }, "iptables");
    assert.equal(e.verdict, "dnat-pod-ip");
    assert.deepEqual(e.provenance, [{ source: "meshconfig", field: "spec.sidecar.localProxyMode" }]);
  });
});

describe("explain: the non-TCP egress filter (egress disabled)", () => {
  const disabled = buildPlan(
    buildTestPolicy({
      enableEgress: false,
      outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
    }),
    { ipv6: true, resolvers: [parseIp("203.0.113.53"), parseIp("2001:db8::53")] },
  );
  const q = (ip: string, port: number, protocol: "tcp" | "udp" | "icmp") => ({
    destination: parseIp(ip),
    port,
    protocol,
  });
  for (const backend of ["iptables", "nftables"] as const) {
    it(`drops UDP and ICMP to non-excluded destinations, v4 and v6 (${backend})`, () => {
      for (const [ip, protocol] of [
        ["203.0.113.11", "udp"],
        ["2001:db8::11", "udp"],
        ["203.0.113.11", "icmp"],
        ["2001:db8::11", "icmp"],
        ["203.0.113.11", "udp"],
      ] as const) {
        const e = explain(disabled, q(ip, 53, protocol), backend);
        assert.equal(e.verdict, "dropped", `${ip} ${protocol}`);
        assert.match(e.decidingRule?.slug ?? "", /^egress-drop$/);
      }
    });

    it(`lets excluded destinations, DNS to the resolvers and the sidecar uid through; TCP is unchanged (${backend})`, () => {
      const excluded = explain(disabled, q("2001:db8::10", 5353, "udp"), backend);
      assert.equal(excluded.verdict, "direct");
      assert.deepEqual(excluded.provenance, [
        { source: "meshconfig", field: "spec.traffic.outboundIPRangeExclusionList" },
      ]);
      const dns = explain(disabled, q("203.0.113.53", 53, "udp"), backend);
      assert.equal(dns.verdict, "direct");
      assert.deepEqual(dns.provenance, [{ source: "resolv.conf" }]);
      assert.equal(explain(disabled, q("2001:db8::53", 53, "udp"), backend).verdict, "direct");
      assert.equal(explain(disabled, q("203.0.113.53", 5353, "udp"), backend).verdict, "dropped");
      assert.equal(
        explain(disabled, { ...q("203.0.113.11", 53, "udp"), uid: 1500 }, backend).verdict,
        "direct",
      );
      assert.equal(explain(disabled, q("203.0.113.11", 80, "tcp"), backend).verdict, "outbound-sidecar");
      assert.equal(explain(disabled, q("2001:db8::11", 80, "tcp"), backend).verdict, "outbound-sidecar");
    });

    it(`with egress enabled, UDP goes out as before (${backend})`, () => {
      const enabled = buildPlan(buildTestPolicy({}), { ipv6: true });
      assert.equal(enabled.egressFilter, undefined);
      assert.equal(explain(enabled, q("203.0.113.11", 53, "udp"), backend).verdict, "direct");
    });
  }

  it("in inclusion mode only the included destinations are dropped (elsewhere TCP goes out directly too)", () => {
    const inclusion = buildPlan(
      buildTestPolicy({ enableEgress: false, outboundIPRangeInclusionList: ["203.0.113.0/28"] }),
      { ipv6: true },
    );
    for (const backend of ["iptables", "nftables"] as const) {
      assert.equal(explain(inclusion, q("203.0.113.5", 53, "udp"), backend).verdict, "dropped");
      assert.equal(explain(inclusion, q("203.0.113.200", 53, "udp"), backend).verdict, "direct");
    }
  });
});

it("says in one wording that no rule matched, and prints the deciding rule's text otherwise", () => {
  const plan = buildPlan(buildTestPolicy({}));
  const destination = parseIp("203.0.113.11");
  const udp = explain(plan, { destination, port: 53, protocol: "udp" }, "nftables");
  assert.equal(describeDecidingRule(udp), "none matched (the default: not intercepted)");
  const tcp = explain(plan, { destination, port: 80 }, "iptables");
  assert.equal(describeDecidingRule(tcp), "-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-port 15001");
});

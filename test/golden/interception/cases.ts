/**
 * The one case table: golden files (`<name>.restore`, `<name>.nft`) and the network-namespace tests run the
 * same cases. Addresses are documentation ranges, except where OSM's own test inputs are reproduced.
 */
import type { PolicyInput } from "./policy-builder.ts";

export interface InterceptionCase {
  readonly name: string;
  readonly input: PolicyInput;
  /** Force the ip6tables payload even without IPv6 entries. */
  readonly ipv6?: boolean;
}

const ports = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

/** 10,000 distinct, non-adjacent /32s in the benchmarking range 198.18.0.0/15 (never contacted). */
function manyCidrs(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const v = i * 2;
    return `198.${18 + (v >> 16)}.${(v >> 8) & 255}.${v & 255}/32`;
  });
}

export const INTERCEPTION_CASES: readonly InterceptionCase[] = [
  { name: "osm-no-exclusions-or-inclusions", input: {} },
  {
    name: "osm-with-exclusions-and-inclusions",
    input: {
      outboundIPRangeExclusionList: ["1.1.1.1/32", "2.2.2.2/24"],
      outboundIPRangeInclusionList: ["3.3.3.3/32", "4.4.4.4/24"],
      outboundPortExclusionList: [10, 20],
      inboundPortExclusionList: [30, 40],
      networkInterfaceExclusionList: ["eth0", "eth1"],
    },
  },
  { name: "osm-proxy-mode-pod-ip", input: { localProxyMode: "PodIP" } },
  {
    name: "outbound-ip-exclusions",
    input: { outboundIPRangeExclusionList: ["203.0.113.10/32", "198.51.100.0/25"] },
  },
  {
    name: "outbound-ip-inclusions",
    input: { outboundIPRangeInclusionList: ["203.0.113.0/28", "198.51.100.20/32"] },
  },
  { name: "outbound-port-exclusions", input: { outboundPortExclusionList: [8081, 9090, 6379] } },
  { name: "inbound-port-exclusions", input: { inboundPortExclusionList: [80, 443] } },
  { name: "interface-exclusions", input: { networkInterfaceExclusionList: ["osmt-ic-x1", "net1"] } },
  {
    name: "pod-annotation-ip-exclusions-merge-pod-first",
    input: {
      outboundIPRangeExclusionList: ["203.0.113.10/32"],
      podOutboundIPRangeExclusions: ["203.0.113.11/32", "203.0.113.10/32"],
    },
  },
  {
    name: "pod-annotation-port-exclusions-merge-global-first",
    input: {
      outboundPortExclusionList: [7000],
      podOutboundPortExclusions: [7001, 7000],
      inboundPortExclusionList: [8000],
      podInboundPortExclusions: [8001],
    },
  },
  {
    name: "pod-ip-mode-with-exclusions",
    input: {
      localProxyMode: "PodIP",
      outboundIPRangeExclusionList: ["203.0.113.10/32"],
      outboundPortExclusionList: [7070],
    },
  },
  {
    name: "ipv6-exclusions-only",
    input: { outboundIPRangeExclusionList: ["2001:db8:10::/48", "2001:db8::10/128"] },
  },
  { name: "ipv6-inclusions-only", input: { outboundIPRangeInclusionList: ["2001:db8:20::/64"] } },
  {
    name: "dual-stack-exclusions",
    input: { outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128", "198.51.100.128/25"] },
  },
  {
    name: "dual-stack-inclusions-and-exclusions",
    input: {
      outboundIPRangeInclusionList: ["203.0.113.0/24", "2001:db8::/64"],
      outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
    },
  },
  { name: "outbound-16-ports", input: { outboundPortExclusionList: ports(7000, 16) } },
  { name: "inbound-16-ports", input: { inboundPortExclusionList: ports(8000, 16) } },
  {
    name: "outbound-and-inbound-100-ports",
    input: { outboundPortExclusionList: ports(7000, 100), inboundPortExclusionList: ports(8000, 100) },
  },
  {
    name: "ten-thousand-cidrs",
    input: { outboundIPRangeExclusionList: manyCidrs(10_000) },
  },
  {
    name: "overlapping-exclusions",
    input: { outboundIPRangeExclusionList: ["203.0.113.0/24", "203.0.113.10/32", "203.0.113.0/25"] },
  },
  {
    name: "unsorted-exclusions",
    input: {
      outboundIPRangeExclusionList: ["203.0.113.200/32", "198.51.100.7/32", "203.0.113.9/32", "192.0.2.0/26"],
    },
  },
  { name: "host-bits-set", input: { outboundIPRangeExclusionList: ["203.0.113.77/28", "2001:db8::1/64"] } },
  {
    name: "excluded-inside-included",
    input: {
      outboundIPRangeInclusionList: ["203.0.113.0/24"],
      outboundIPRangeExclusionList: ["203.0.113.10/32"],
      outboundPortExclusionList: [7070],
    },
  },
  {
    name: "all-lists-combined",
    input: {
      outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
      outboundIPRangeInclusionList: ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/64"],
      outboundPortExclusionList: [7070, 7071],
      inboundPortExclusionList: [8080],
      networkInterfaceExclusionList: ["net1"],
      podOutboundIPRangeExclusions: ["198.51.100.5/32"],
      podOutboundPortExclusions: [7072],
    },
  },
  {
    name: "duplicates-across-global-and-pod",
    input: {
      outboundIPRangeExclusionList: ["203.0.113.10/32", "203.0.113.10/32"],
      podOutboundIPRangeExclusions: ["203.0.113.10/32"],
      outboundPortExclusionList: [7070, 7070],
      podOutboundPortExclusions: [7070],
    },
  },
  {
    name: "interface-exclusions-with-inclusions",
    input: { networkInterfaceExclusionList: ["net1"], outboundIPRangeInclusionList: ["203.0.113.0/28"] },
  },
  {
    name: "ipv4-policy-with-ipv6-forced",
    input: { outboundIPRangeExclusionList: ["203.0.113.10/32"] },
    ipv6: true,
  },
  {
    name: "egress-disabled-non-tcp-filter",
    input: {
      enableEgress: false,
      outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
      networkInterfaceExclusionList: ["net1"],
    },
  },
  {
    name: "egress-disabled-with-inclusions",
    input: { enableEgress: false, outboundIPRangeInclusionList: ["203.0.113.0/28", "2001:db8::/64"] },
  },
];

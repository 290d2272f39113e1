import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mergeCidr, parseCidr as oracleParse } from "cidr-tools";
import fc from "fast-check";
import {
  aggregateCidrs,
  type Cidr,
  cidrRange,
  cidrsOverlap,
  compareCidrs,
  makeCidr,
  maskAddress,
  parseCidr,
  rangeToCidrs,
} from "../../../src/net/index.ts";

describe("aggregateCidrs examples", () => {
  const cases: [input: string[], output: string[]][] = [
    [[], []],
    [["10.0.0.0/25", "10.0.0.128/25"], ["10.0.0.0/24"]],
    [["10.0.0.0/8", "10.1.0.0/16"], ["10.0.0.0/8"]],
    [["10.0.0.1/32", "10.0.0.1/32"], ["10.0.0.1/32"]],
    [["10.0.0.1/8", "10.0.0.0/8"], ["10.0.0.0/8"]],
    [
      ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"],
      ["10.0.0.0/23", "10.0.2.0/24"],
    ],
    [
      ["10.0.1.0/24", "10.0.2.0/24"],
      ["10.0.1.0/24", "10.0.2.0/24"],
    ], // adjacent but not alignable
    [["0.0.0.0/1", "128.0.0.0/1"], ["0.0.0.0/0"]],
    [
      ["fd00::/9", "fd80::/9", "192.0.2.0/24"],
      ["192.0.2.0/24", "fd00::/8"],
    ],
    [["2001:db8::/33", "2001:db8:8000::/33", "::/0"], ["::/0"]],
    [["203.0.113.11/32", "203.0.113.10/32"], ["203.0.113.10/31"]],
    [["255.255.255.255/32", "255.255.255.254/32"], ["255.255.255.254/31"]],
    [["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"], ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"]],
  ];
  for (const [input, output] of cases) {
    test(`[${input.join(", ")}] aggregates to [${output.join(", ")}]`, () => {
      assert.deepEqual(aggregateCidrs(input.map(parseCidr)).map(String), output);
    });
  }
  test("rangeToCidrs splits an unaligned range into the minimal prefixes", () => {
    assert.deepEqual(rangeToCidrs(4, 0x0a000001n, 0x0a000006n).map(String), [
      "10.0.0.1/32",
      "10.0.0.2/31",
      "10.0.0.4/31",
      "10.0.0.6/32",
    ]);
  });
});

/** Brute force: the set of addresses (offsets within a /24-sized space) that the prefixes cover. */
function covered(cidrs: readonly Cidr[], base: bigint): Set<number> {
  const set = new Set<number>();
  for (const c of cidrs) {
    const { first, last } = cidrRange(c);
    for (let a = first; a <= last; a++) set.add(Number(a - base));
  }
  return set;
}

function isMinimal(cidrs: readonly Cidr[]): boolean {
  for (let i = 0; i < cidrs.length; i++) {
    for (let j = i + 1; j < cidrs.length; j++) {
      const a = cidrs[i]!;
      const b = cidrs[j]!;
      if (cidrsOverlap(a, b)) return false;
      // Two sibling prefixes (same length, same parent) should have been merged.
      if (
        a.family === b.family &&
        a.prefixLength === b.prefixLength &&
        a.prefixLength > 0 &&
        maskAddress(a.family, a.address, a.prefixLength - 1) ===
          maskAddress(b.family, b.address, b.prefixLength - 1)
      ) {
        return false;
      }
    }
  }
  return true;
}

const spaces = [
  { name: "IPv4 198.51.100.0/24", family: 4 as const, base: 0xc6336400n, bits: 32 },
  { name: "IPv6 2001:db8::/120", family: 6 as const, base: 0x20010db8n << 96n, bits: 128 },
];

describe("aggregation covers exactly the same addresses (brute force on /24-sized spaces)", () => {
  for (const space of spaces) {
    const prefix = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: space.bits - 8, max: space.bits }))
      .map(([offset, length]) => makeCidr(space.family, space.base + BigInt(offset), length));
    test(`${space.name}: same addresses, sorted, no overlap, no mergeable siblings`, () => {
      fc.assert(
        fc.property(fc.array(prefix, { maxLength: 24 }), (input) => {
          const output = aggregateCidrs(input);
          assert.deepEqual([...covered(output, space.base)].sort(), [...covered(input, space.base)].sort());
          assert.ok(isMinimal(output), `not minimal: ${output.join(", ")}`);
          for (let i = 1; i < output.length; i++) assert.ok(compareCidrs(output[i - 1]!, output[i]!) < 0);
          // Idempotent: aggregating again changes nothing.
          assert.deepEqual(aggregateCidrs(output).map(String), output.map(String));
        }),
        { numRuns: 500 },
      );
    });
  }
});

describe("oracle: cidr-tools mergeCidr", () => {
  const anyV4 = fc
    .tuple(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 }))
    .map(([a, p]) => makeCidr(4, a, p));
  // Clustered v6 prefixes, so that merges actually happen.
  const clusteredV6 = fc
    .tuple(fc.bigInt({ min: 0n, max: (1n << 16n) - 1n }), fc.integer({ min: 100, max: 128 }))
    .map(([a, p]) => makeCidr(6, (0x20010db8n << 96n) | (a << 12n), p));
  const clusteredV4 = fc
    .tuple(fc.bigInt({ min: 0n, max: (1n << 12n) - 1n }), fc.integer({ min: 18, max: 32 }))
    .map(([a, p]) => makeCidr(4, 0x0a000000n | (a << 4n), p));
  test("the merged ranges agree with cidr-tools for mixed IPv4/IPv6 input", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(anyV4, clusteredV4, clusteredV6), { maxLength: 30 }), (input) => {
        const ours = aggregateCidrs(input).map((c) => {
          const { first, last } = cidrRange(c);
          return `${c.family}:${first}-${last}`;
        });
        const theirs = (input.length === 0 ? [] : mergeCidr(input.map(String))).flatMap((n) => {
          const p = oracleParse(n);
          // cidr-tools merges into ranges it then prints as prefixes; compare address ranges, ours split minimal.
          return rangeToCidrs(p.version, p.start, p.end).map((c) => {
            const { first, last } = cidrRange(c);
            return `${c.family}:${first}-${last}`;
          });
        });
        assert.deepEqual([...ours].sort(), [...theirs].sort());
      }),
      { numRuns: 300 },
    );
  });
});

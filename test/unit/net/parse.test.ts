import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ErrorCode, MeshError } from "../../../src/errors.ts";
import {
  cidrContains,
  cidrRange,
  cidrsOverlap,
  ipFromBigint,
  makeCidr,
  maskAddress,
  parseCidr,
  parseIp,
  splitByFamily,
  tryParseCidr,
  tryParseIp,
} from "../../../src/net/index.ts";

describe("parseCidr accepts what Go's net.ParseCIDR accepts for well-formed input", () => {
  const cases: [input: string, canonical: string, hostBitsSet: boolean][] = [
    ["10.0.0.0/8", "10.0.0.0/8", false],
    ["10.0.0.1/8", "10.0.0.0/8", true], // docs/osm-behaviour.md §1.6: host bits set are accepted and masked
    ["203.0.113.10/32", "203.0.113.10/32", false],
    ["0.0.0.0/0", "0.0.0.0/0", false],
    ["255.255.255.255/32", "255.255.255.255/32", false],
    ["1.1.1.1/32", "1.1.1.1/32", false],
    ["54.91.118.50/32", "54.91.118.50/32", false],
    ["fd00::/8", "fd00::/8", false], // docs/osm-behaviour.md §1.6: IPv6 accepted
    ["::/0", "::/0", false],
    ["2001:DB8::/32", "2001:db8::/32", false],
    ["2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128", false],
    ["2001:db8::1/64", "2001:db8::/64", true],
    ["1:0:0:2:0:0:0:3/128", "1:0:0:2::3/128", false],
    ["2001:0db8:0000:0000:0000:0000:0000:0001/128", "2001:db8::1/128", false],
    ["::1/128", "::1/128", false],
    ["1::/16", "1::/16", false],
    ["1:2:3:4:5:6:1.2.3.4/128", "1:2:3:4:5:6:102:304/128", false],
    ["::/80", "::/80", false], // contains the IPv4-mapped block but is not itself mapped
    ["10.0.0.0/1", "0.0.0.0/1", true],
  ];
  for (const [input, canonical, hostBitsSet] of cases) {
    test(`${input} parses as ${canonical}${hostBitsSet ? " with host bits set" : ""}`, () => {
      const r = tryParseCidr(input);
      assert.ok(r.ok, r.ok ? "" : r.reason);
      assert.equal(r.cidr.toString(), canonical);
      assert.equal(r.hostBitsSet, hostBitsSet);
      assert.equal(parseCidr(input).toString(), canonical);
      assert.equal(JSON.stringify(r.cidr), JSON.stringify(canonical));
    });
  }
});

describe("parseCidr rejects bad input with the reason", () => {
  const cases: [input: string, reason: string][] = [
    ["10.0.0.0/33", "prefix length 33 exceeds 32 for IPv4"],
    ["54.91.118.50/33", "prefix length 33 exceeds 32 for IPv4"],
    ["fd00::/129", "prefix length 129 exceeds 128 for IPv6"],
    ["300.1.1.1/8", "IPv4 octet 300 exceeds 255"],
    ["999.1.1.1/99", "IPv4 octet 999 exceeds 255"],
    ["999.999.999.999/99", "IPv4 octet 999 exceeds 255"],
    ["1.2.3.4/", 'has no prefix length after "/"'],
    ["/8", 'has no address before "/"'],
    ["1.2.3", "has no prefix length"],
    ["1.1.1.1", "has no prefix length"],
    ["1.2.3/8", 'IPv4 address "1.2.3" has 3 parts, needs 4 octets'],
    ["010.0.0.1/8", 'IPv4 octet "010" has a leading zero'],
    ["10.0.0.0/08", 'prefix length "08" has a leading zero'],
    ["fe80::1%eth0/64", 'has a zone identifier ("%eth0"), which is not allowed here'],
    ["1.2.3.4 /8", "contains whitespace"],
    [" 1.2.3.4/8", "contains whitespace"],
    ["1.1.1.1/32 ", "contains whitespace"],
    ["10.0.0.0/8,1.1.1.1/32", 'contains ","; a list item holds one CIDR'],
    ["foo1.1.1.1/32", 'address "foo1.1.1.1" is neither IPv4 nor IPv6'],
    ["1.2.3.4/5x", 'prefix length "5x" is not a decimal number'],
    ["1.2.3.4/-1", 'prefix length "-1" is not a decimal number'],
    ["1.2.3.4/8/8", 'has more than one "/"'],
    ["", "is empty"],
    ["1..2.3/8", 'IPv4 address "1..2.3" has an empty octet'],
    ["::ffff:1.2.3.4/120", "is an IPv4-mapped IPv6 prefix (inside ::ffff:0:0/96)"],
    ["::ffff:0:0/96", "is an IPv4-mapped IPv6 prefix (inside ::ffff:0:0/96)"],
    ["::ffff:1.2.3.4/24", "uses an IPv4-mapped address with an IPv6 prefix length: it would mean ::/24"],
    ["1:2:3:4:5:6:7:8:9/64", 'IPv6 address "1:2:3:4:5:6:7:8:9" has 9 groups, needs 8 (or "::")'],
    ["1::2::3/64", 'IPv6 address "1::2::3" has more than one "::"'],
    ["12345::/16", 'IPv6 address "12345::" has group "12345" with more than 4 hex digits'],
    ["1.2.3.4::/64", 'IPv6 address "1.2.3.4::" has an embedded IPv4 address that is not at the end'],
    ["g::/16", 'IPv6 address "g::" has group "g" that is not hexadecimal'],
    [
      "1:2:3:4:5:6:7:8::/64",
      'IPv6 address "1:2:3:4:5:6:7:8::" has 8 groups besides "::", which must stand for at least one',
    ],
    [":1::/64", 'IPv6 address ":1::" has an empty group'],
  ];
  for (const [input, reason] of cases) {
    test(`${JSON.stringify(input)} is rejected: ${reason}`, () => {
      const r = tryParseCidr(input);
      assert.equal(r.ok, false);
      assert.equal(r.ok ? "" : r.reason, reason);
      assert.throws(
        () => parseCidr(input),
        (e: unknown) =>
          e instanceof MeshError && e.code === ErrorCode.InvalidArgument && e.message === reason,
      );
    });
  }

  test("the IPv4-mapped rejection hints at the equivalent IPv4 prefix", () => {
    const r = tryParseCidr("::ffff:1.2.3.4/120");
    assert.ok(!r.ok);
    assert.equal(r.hint, "the kernel sends this traffic as IPv4; write the IPv4 form 1.2.3.0/24");
  });

  test("a mapped address with a short length hints at the IPv4 range", () => {
    const r = tryParseCidr("::ffff:1.2.3.4/24");
    assert.ok(!r.ok);
    assert.equal(r.hint, "for the IPv4 range write 1.2.3.0/24");
  });

  test("a missing prefix length hints at /32 or /128 for a single address", () => {
    const v4 = tryParseCidr("1.1.1.1");
    const v6 = tryParseCidr("2001:db8::1");
    assert.ok(!v4.ok && !v6.ok);
    assert.equal(v4.hint, "write 1.1.1.1/32 for a single address");
    assert.equal(v6.hint, "write 2001:db8::1/128 for a single address");
  });
});

describe("parseIp", () => {
  const good: [string, string, 4 | 6][] = [
    ["192.0.2.1", "192.0.2.1", 4],
    ["0.0.0.0", "0.0.0.0", 4],
    ["2001:db8::1", "2001:db8::1", 6],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1", 6],
    ["0:0:0:0:0:0:0:0", "::", 6],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 6], // RFC 5952 §4.2.2: one zero group is not compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1", 6], // the longest run is compressed
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6], // a tie goes to the first run
  ];
  for (const [input, text, family] of good) {
    test(`${input} prints as ${text}`, () => {
      const ip = parseIp(input);
      assert.equal(ip.family, family);
      assert.equal(ip.toString(), text);
    });
  }
  const bad: [string, string][] = [
    ["1.2.3", 'IPv4 address "1.2.3" has 3 parts, needs 4 octets'],
    ["256.0.0.1", "IPv4 octet 256 exceeds 255"],
    ["01.2.3.4", 'IPv4 octet "01" has a leading zero'],
    ["fe80::1%eth0", 'has a zone identifier ("%eth0"), which is not allowed here'],
    ["::ffff:1.2.3.4", "is an IPv4-mapped IPv6 address (inside ::ffff:0:0/96)"],
    ["example.com", 'address "example.com" is neither IPv4 nor IPv6'],
    ["1.2.3.4/32", 'address "1.2.3.4/32" is neither IPv4 nor IPv6'],
  ];
  for (const [input, reason] of bad) {
    test(`${input} is rejected: ${reason}`, () => {
      const r = tryParseIp(input);
      assert.ok(!r.ok);
      assert.equal(r.reason, reason);
      assert.throws(() => parseIp(input), { message: reason });
    });
  }
  test("ipFromBigint builds addresses and rejects out-of-range values", () => {
    assert.equal(ipFromBigint(4, 0xc0000201n).toString(), "192.0.2.1");
    assert.equal(ipFromBigint(6, 1n).toString(), "::1");
    assert.throws(() => ipFromBigint(4, 1n << 32n), { code: ErrorCode.InvalidArgument });
    assert.throws(() => ipFromBigint(6, -1n), { code: ErrorCode.InvalidArgument });
  });
});

describe("contains, overlap, range, split", () => {
  test("cidrContains checks membership within the same family only", () => {
    const net = parseCidr("203.0.113.0/24");
    assert.equal(cidrContains(net, parseIp("203.0.113.10")), true);
    assert.equal(cidrContains(net, parseIp("203.0.114.1")), false);
    assert.equal(cidrContains(parseCidr("::/0"), parseIp("203.0.113.10")), false);
    assert.equal(cidrContains(parseCidr("0.0.0.0/0"), parseIp("2001:db8::1")), false);
  });
  test("cidrsOverlap: nested prefixes overlap, disjoint ones do not", () => {
    assert.equal(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")), true);
    assert.equal(cidrsOverlap(parseCidr("10.1.0.0/16"), parseCidr("10.0.0.0/8")), true);
    assert.equal(cidrsOverlap(parseCidr("10.0.0.0/9"), parseCidr("10.128.0.0/9")), false);
    assert.equal(cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")), false);
  });
  test("cidrRange gives the first and last address", () => {
    assert.deepEqual(cidrRange(parseCidr("10.0.0.0/8")), { first: 0x0a000000n, last: 0x0affffffn });
    assert.deepEqual(cidrRange(parseCidr("::/0")), { first: 0n, last: (1n << 128n) - 1n });
  });
  test("splitByFamily keeps order within each family", () => {
    const cidrs = ["fd00::/8", "10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"].map(parseCidr);
    const { v4, v6 } = splitByFamily(cidrs);
    assert.deepEqual(v4.map(String), ["10.0.0.0/8", "192.0.2.0/24"]);
    assert.deepEqual(v6.map(String), ["fd00::/8", "2001:db8::/32"]);
  });
  test("makeCidr masks and validates", () => {
    assert.equal(makeCidr(4, 0x0a0000ffn, 24).toString(), "10.0.0.0/24");
    assert.throws(() => makeCidr(4, 0n, 33), { code: ErrorCode.InvalidArgument });
  });
});

const v4Cidr = fc
  .tuple(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 }))
  .map(([a, p]) => makeCidr(4, a, p));
const v6Cidr = fc
  .tuple(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }))
  .filter(([a, p]) => !(p >= 96 && maskAddress(6, a, p) >> 32n === 0xffffn))
  .map(([a, p]) => makeCidr(6, a, p));

describe("properties", () => {
  test("parse ∘ print is the identity on canonical CIDRs (v4 and v6)", () => {
    fc.assert(
      fc.property(fc.oneof(v4Cidr, v6Cidr), (c) => {
        const back = parseCidr(c.toString());
        return back.family === c.family && back.address === c.address && back.prefixLength === c.prefixLength;
      }),
      { numRuns: 2000 },
    );
  });
  test("print ∘ parse is the identity on printed addresses, and uppercase/expanded IPv6 prints canonically", () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        const r = tryParseIp(text);
        if (!r.ok) return r.reason.includes("IPv4-mapped"); // fast-check may produce ::ffff:a.b.c.d
        return (
          parseIp(r.value.toString()).value === r.value.value &&
          parseIp(text.toUpperCase()).value === r.value.value
        );
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.ipV4(), (text) => parseIp(text).toString() === text),
      { numRuns: 1000 },
    );
  });
  test("masking is idempotent, and the masked address is the prefix's first address", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
        fc.integer({ min: 0, max: 128 }),
        (a, p) => {
          const once = maskAddress(6, a, p);
          return (
            maskAddress(6, once, p) === once &&
            once <= a &&
            cidrContains(makeCidr(6, a, p), ipFromBigint(6, a))
          );
        },
      ),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 }), (a, p) => {
        const once = maskAddress(4, a, p);
        return maskAddress(4, once, p) === once && cidrRange(makeCidr(4, a, p)).first === once;
      }),
    );
  });
  test("host bits are reported exactly when masking changes the address", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 32 }), (a, p) => {
        const text = `${ipFromBigint(4, a).toString()}/${p}`;
        const r = tryParseCidr(text);
        return r.ok && r.hostBitsSet === (maskAddress(4, a, p) !== a);
      }),
    );
  });
});

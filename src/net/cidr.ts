/**
 * CIDR prefixes: strict parsing (Go `net.ParseCIDR` semantics, minus what Go gets wrong for us), canonical
 * printing, masking, containment, overlap, aggregation and family split. Pure; no I/O.
 */
import { ErrorCode, MeshError } from "../errors.ts";
import { familyBits, familyMax, formatIp, formatV4Value, tryParseAddressText } from "./ip.ts";
import type { Cidr, IpAddress, IpFamily } from "./types.ts";

class CidrValue implements Cidr {
  readonly family: IpFamily;
  readonly address: bigint;
  readonly prefixLength: number;
  constructor(family: IpFamily, address: bigint, prefixLength: number) {
    this.family = family;
    this.address = address;
    this.prefixLength = prefixLength;
    Object.freeze(this);
  }
  toString(): string {
    return `${formatIp(this.family, this.address)}/${this.prefixLength}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

/** The netmask of a prefix length, as an integer (e.g. /8 in IPv4 → 0xff000000). */
export function prefixMask(family: IpFamily, prefixLength: number): bigint {
  const bits = BigInt(familyBits(family));
  const host = bits - BigInt(prefixLength);
  return familyMax(family) ^ ((1n << host) - 1n);
}

/** Clears the host bits of `value` for a prefix length. Idempotent. */
export function maskAddress(family: IpFamily, value: bigint, prefixLength: number): bigint {
  return value & prefixMask(family, prefixLength);
}

/**
 * Builds a CIDR from parts; host bits are masked. Throws InvalidArgument on an out-of-range value or
 * prefix length.
 */
export function makeCidr(family: IpFamily, address: bigint, prefixLength: number): Cidr {
  if (family !== 4 && family !== 6) {
    throw new MeshError(ErrorCode.InvalidArgument, `IP family must be 4 or 6, got ${String(family)}`);
  }
  const bits = familyBits(family);
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      `prefix length ${prefixLength} is out of range 0..${bits} for IPv${family}`,
    );
  }
  if (address < 0n || address > familyMax(family)) {
    throw new MeshError(ErrorCode.InvalidArgument, `address ${address} is out of range for IPv${family}`);
  }
  return new CidrValue(family, maskAddress(family, address, prefixLength), prefixLength);
}

export type CidrParseResult =
  | { ok: true; cidr: Cidr; hostBitsSet: boolean }
  | { ok: false; reason: string; hint?: string };

/**
 * Parses `address/length` strictly. Accepts what Go's `net.ParseCIDR` accepts for well-formed input —
 * IPv4 and IPv6, host bits set (masked here, reported in `hostBitsSet`) — and rejects, with a reason:
 * missing or malformed prefix length, out-of-range octets or lengths, leading zeros, whitespace, zone ids,
 * several CIDRs in one string, and IPv4-mapped IPv6 prefixes of /96 or longer (`::ffff:1.2.3.4/120`: the
 * kernel sends that traffic as IPv4, so only the IPv4 form, given in the hint, would match it).
 */
export function tryParseCidr(text: string): CidrParseResult {
  if (typeof text !== "string") return { ok: false, reason: `must be a string, got ${typeof text}` };
  if (text === "") return { ok: false, reason: "is empty", hint: "write a CIDR such as 192.0.2.0/24" };
  if (/\s/.test(text)) return { ok: false, reason: "contains whitespace", hint: "remove the spaces" };
  if (text.includes(",")) {
    return {
      ok: false,
      reason: 'contains ","; a list item holds one CIDR',
      hint: `split it into separate items: ${text
        .split(",")
        .map((s) => JSON.stringify(s))
        .join(", ")}`,
    };
  }
  const slash = text.indexOf("/");
  if (slash < 0) {
    const asIp = tryParseAddressText(text);
    const single = asIp.ok ? `${text}/${asIp.value.family === 4 ? 32 : 128}` : "192.0.2.1/32";
    return {
      ok: false,
      reason: "has no prefix length",
      hint: `write ${single} for a single address`,
    };
  }
  if (text.indexOf("/", slash + 1) >= 0) return { ok: false, reason: 'has more than one "/"' };
  const addressText = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  if (addressText === "") return { ok: false, reason: 'has no address before "/"' };
  const parsed = tryParseAddressText(addressText);
  if (!parsed.ok) return parsed;
  const { family, value } = parsed.value;
  const bits = familyBits(family);
  if (lengthText === "") {
    return { ok: false, reason: 'has no prefix length after "/"', hint: `write a length from 0 to ${bits}` };
  }
  if (!/^[0-9]+$/.test(lengthText)) {
    return { ok: false, reason: `prefix length "${lengthText}" is not a decimal number` };
  }
  if (lengthText.length > 1 && lengthText.startsWith("0")) {
    return {
      ok: false,
      reason: `prefix length "${lengthText}" has a leading zero`,
      hint: `write /${String(Number(lengthText))}`,
    };
  }
  const prefixLength = Number(lengthText);
  if (prefixLength > bits) {
    return {
      ok: false,
      reason: `prefix length ${lengthText} exceeds ${bits} for IPv${family}`,
      hint: `IPv${family} prefix lengths go from 0 to ${bits}; /${bits} is a single address`,
    };
  }
  const masked = maskAddress(family, value, prefixLength);
  if (family === 6 && value >> 32n === 0xffffn) {
    if (prefixLength >= 96) {
      return {
        ok: false,
        reason: "is an IPv4-mapped IPv6 prefix (inside ::ffff:0:0/96)",
        hint: `the kernel sends this traffic as IPv4; write the IPv4 form ${formatV4Value(masked)}/${prefixLength - 96}`,
      };
    }
    // `::ffff:1.2.3.4/24` (accepted by OSM's CRD regex) counts 24 of 128 bits: it would mean ::/24.
    return {
      ok: false,
      reason: `uses an IPv4-mapped address with an IPv6 prefix length: it would mean ${formatIp(6, masked)}/${prefixLength}`,
      hint: `for the IPv4 range write ${formatV4Value(maskAddress(4, value & 0xffffffffn, Math.min(prefixLength, 32)))}/${Math.min(prefixLength, 32)}`,
    };
  }
  return { ok: true, cidr: new CidrValue(family, masked, prefixLength), hostBitsSet: masked !== value };
}

/** Parses a CIDR strictly (see tryParseCidr). Throws MeshError InvalidArgument whose message is the reason. */
export function parseCidr(text: string): Cidr {
  const r = tryParseCidr(text);
  if (!r.ok) throw new MeshError(ErrorCode.InvalidArgument, r.reason, r.hint ? { hint: r.hint } : {});
  return r.cidr;
}

/** The first and last address of a prefix, inclusive. */
export function cidrRange(cidr: Cidr): { first: bigint; last: bigint } {
  const host = (1n << BigInt(familyBits(cidr.family) - cidr.prefixLength)) - 1n;
  return { first: cidr.address, last: cidr.address | host };
}

/** True when `ip` lies inside `cidr` (same family only). */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  return maskAddress(cidr.family, ip.value, cidr.prefixLength) === cidr.address;
}

/** True when prefix `outer` contains every address of prefix `inner` (same family only). */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefixLength <= inner.prefixLength &&
    maskAddress(outer.family, inner.address, outer.prefixLength) === outer.address
  );
}

/** True when the two prefixes share at least one address. Prefixes either nest or are disjoint. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

/** Same family, address and length. */
export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.address === b.address && a.prefixLength === b.prefixLength;
}

/** Total order: IPv4 before IPv6, then by address, then shorter prefix first. */
export function compareCidrs(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.prefixLength - b.prefixLength;
}

/** The minimal list of prefixes covering exactly [first, last] (inclusive), in ascending order. */
export function rangeToCidrs(family: IpFamily, first: bigint, last: bigint): Cidr[] {
  const bits = familyBits(family);
  const out: Cidr[] = [];
  let start = first;
  while (start <= last) {
    // Largest block aligned at `start` that does not pass `last`.
    let size = bits;
    while (size > 0) {
      const block = 1n << BigInt(bits - size + 1);
      if ((start & (block - 1n)) !== 0n || start + block - 1n > last) break;
      size--;
    }
    out.push(new CidrValue(family, start, size));
    const next = start + (1n << BigInt(bits - size));
    if (next > familyMax(family)) break;
    start = next;
  }
  return out;
}

/**
 * Aggregates prefixes: merges contained, overlapping and adjacent ones into the minimal list covering exactly
 * the same addresses, sorted (IPv4 first, ascending). Families are never mixed.
 */
export function aggregateCidrs(cidrs: readonly Cidr[]): Cidr[] {
  const out: Cidr[] = [];
  for (const family of [4, 6] as const) {
    const ranges = cidrs
      .filter((c) => c.family === family)
      .map(cidrRange)
      .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    let current: { first: bigint; last: bigint } | undefined;
    for (const r of ranges) {
      if (current && r.first <= current.last + 1n) {
        if (r.last > current.last) current.last = r.last;
      } else {
        if (current) out.push(...rangeToCidrs(family, current.first, current.last));
        current = { ...r };
      }
    }
    if (current) out.push(...rangeToCidrs(family, current.first, current.last));
  }
  return out;
}

/** Splits prefixes by family, keeping their order. */
export function splitByFamily<T extends { readonly family: IpFamily }>(
  items: readonly T[],
): { v4: T[]; v6: T[] } {
  return { v4: items.filter((c) => c.family === 4), v6: items.filter((c) => c.family === 6) };
}

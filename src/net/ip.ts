/**
 * Strict IPv4/IPv6 address parsing and canonical printing. Pure; no I/O.
 *
 * Why hand-written: Node's `net.isIP` accepts zone ids and says nothing about *why* a value is wrong, and the
 * npm parsers accept leading zeros (octal ambiguity) or bare integers. We need a reason for every rejection,
 * because the reason is what the user reads.
 */
import { ErrorCode, MeshError } from "../errors.ts";
import type { IpAddress, IpFamily } from "./types.ts";

export const IPV4_BITS = 32;
export const IPV6_BITS = 128;
const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;
/** ::ffff:0:0/96, the IPv4-mapped IPv6 block (RFC 4291 §2.5.5.2). */
const V4_MAPPED_PREFIX = 0xffffn << 32n;

/** Number of address bits of a family. */
export function familyBits(family: IpFamily): number {
  return family === 4 ? IPV4_BITS : IPV6_BITS;
}

/** The largest address value of a family (all ones). */
export function familyMax(family: IpFamily): bigint {
  return family === 4 ? V4_MAX : V6_MAX;
}

/** A parse result: the value, or the reason the text is not one. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string; hint?: string };

class IpAddressValue implements IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
  constructor(family: IpFamily, value: bigint) {
    this.family = family;
    this.value = value;
    Object.freeze(this);
  }
  toString(): string {
    return formatIp(this.family, this.value);
  }
  toJSON(): string {
    return this.toString();
  }
}

/** Builds an address from its integer value. Throws InvalidArgument when the value is out of range. */
export function ipFromBigint(family: IpFamily, value: bigint): IpAddress {
  if (family !== 4 && family !== 6) {
    throw new MeshError(ErrorCode.InvalidArgument, `IP family must be 4 or 6, got ${String(family)}`);
  }
  if (value < 0n || value > familyMax(family)) {
    throw new MeshError(ErrorCode.InvalidArgument, `value ${value} is out of range for IPv${family}`);
  }
  return new IpAddressValue(family, value);
}

/** Canonical text of an address: dotted quad, or RFC 5952 for IPv6 (IPv4-mapped as `::ffff:a.b.c.d`). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) return formatV4(value);
  return formatV6(value);
}

function formatV4(value: bigint): string {
  const n = Number(value);
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function formatV6(value: bigint): string {
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & V4_MAX)}`; // RFC 5952 §5
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of two or more zero groups; the first one wins a tie (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** True when the IPv6 value lies in ::ffff:0:0/96 (an IPv4 address in IPv6 clothing). */
export function isV4MappedValue(value: bigint): boolean {
  return value >> 32n === 0xffffn;
}

export { V4_MAPPED_PREFIX };

/** Formats the low 32 bits as a dotted quad. */
export function formatV4Value(value: bigint): string {
  return formatV4(value & V4_MAX);
}

const WHITESPACE = /\s/;

/**
 * Parses address text without the IPv4-mapped check (shared with the CIDR parser, which reports mapped
 * prefixes in its own words).
 */
export function tryParseAddressText(text: string): ParseResult<{ family: IpFamily; value: bigint }> {
  if (typeof text !== "string") return { ok: false, reason: `must be a string, got ${typeof text}` };
  if (text === "") return { ok: false, reason: "is empty" };
  if (WHITESPACE.test(text)) {
    return { ok: false, reason: "contains whitespace", hint: "remove the spaces" };
  }
  if (text.includes("%")) {
    return {
      ok: false,
      reason: `has a zone identifier ("${text.slice(text.indexOf("%"))}"), which is not allowed here`,
      hint: "remove the %zone suffix; interception rules apply to every interface",
    };
  }
  if (text.includes(":")) {
    const r = parseV6(text);
    return r.ok ? { ok: true, value: { family: 6, value: r.value } } : r;
  }
  if (/^[0-9.]+$/.test(text)) {
    const r = parseV4(text);
    return r.ok ? { ok: true, value: { family: 4, value: r.value } } : r;
  }
  return {
    ok: false,
    reason: `address "${text}" is neither IPv4 nor IPv6`,
    hint: "write a dotted quad such as 192.0.2.1 or an IPv6 address such as 2001:db8::1; host names are not allowed",
  };
}

/**
 * Parses an address strictly, returning the reason on failure. IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`)
 * are rejected with a hint to write the IPv4 form: the kernel sends such traffic as IPv4, so only the IPv4
 * form matches it in iptables/nft.
 */
export function tryParseIp(text: string): ParseResult<IpAddress> {
  const r = tryParseAddressText(text);
  if (!r.ok) return r;
  const { family, value } = r.value;
  if (family === 6 && isV4MappedValue(value)) {
    return {
      ok: false,
      reason: "is an IPv4-mapped IPv6 address (inside ::ffff:0:0/96)",
      hint: `the kernel sends it as IPv4; write the IPv4 form ${formatV4(value & V4_MAX)}`,
    };
  }
  return { ok: true, value: new IpAddressValue(family, value) };
}

/** Parses an address strictly. Throws MeshError InvalidArgument whose message is the reason. */
export function parseIp(text: string): IpAddress {
  const r = tryParseIp(text);
  if (!r.ok) throw new MeshError(ErrorCode.InvalidArgument, r.reason, r.hint ? { hint: r.hint } : {});
  return r.value;
}

/** Dotted quad: exactly 4 decimal octets 0–255, no leading zeros (Go ≥1.17 rejects them too: octal ambiguity). */
function parseV4(text: string): ParseResult<bigint> {
  const parts = text.split(".");
  if (parts.length !== 4) {
    return {
      ok: false,
      reason: `IPv4 address "${text}" has ${parts.length} part${parts.length === 1 ? "" : "s"}, needs 4 octets`,
    };
  }
  let value = 0n;
  for (const part of parts) {
    if (part === "") return { ok: false, reason: `IPv4 address "${text}" has an empty octet` };
    if (!/^[0-9]+$/.test(part)) return { ok: false, reason: `IPv4 octet "${part}" is not a decimal number` };
    if (part.length > 1 && part.startsWith("0")) {
      return {
        ok: false,
        reason: `IPv4 octet "${part}" has a leading zero`,
        hint: `leading zeros are ambiguous (octal or decimal); write ${String(Number(part))}`,
      };
    }
    const n = Number(part);
    if (n > 255)
      return { ok: false, reason: `IPv4 octet ${part} exceeds 255`, hint: "each IPv4 octet is 0 to 255" };
    value = (value << 8n) | BigInt(n);
  }
  return { ok: true, value };
}

/** RFC 4291 §2.2 text: up to 8 groups of 1–4 hex digits, one `::`, an optional trailing dotted quad. */
function parseV6(text: string): ParseResult<bigint> {
  const bad = (why: string): ParseResult<bigint> => ({ ok: false, reason: `IPv6 address "${text}" ${why}` });
  const doubles = text.split("::").length - 1;
  if (doubles > 1) return bad('has more than one "::"');
  if (text.includes(":::")) return bad('has ":::"');
  let head: string[];
  let tail: string[];
  if (doubles === 1) {
    const [h, t] = text.split("::") as [string, string];
    head = h === "" ? [] : h.split(":");
    tail = t === "" ? [] : t.split(":");
  } else {
    head = text.split(":");
    tail = [];
  }
  const groups: number[][] = [[], []];
  const sides = [head, tail];
  // The group that ends the whole address: the only place a dotted quad may appear.
  const lastSide = doubles === 1 ? 1 : 0;
  for (let s = 0; s < 2; s++) {
    const side = sides[s]!;
    for (let i = 0; i < side.length; i++) {
      const g = side[i]!;
      if (g.includes(".")) {
        if (s !== lastSide || i !== side.length - 1) {
          return bad("has an embedded IPv4 address that is not at the end");
        }
        const v4 = parseV4(g);
        if (!v4.ok) return v4;
        const n = Number(v4.value);
        groups[s]!.push((n >>> 16) & 0xffff, n & 0xffff);
        continue;
      }
      if (g === "") return bad("has an empty group");
      if (!/^[0-9a-fA-F]+$/.test(g)) return bad(`has group "${g}" that is not hexadecimal`);
      if (g.length > 4) return bad(`has group "${g}" with more than 4 hex digits`);
      groups[s]!.push(Number.parseInt(g, 16));
    }
  }
  const count = groups[0]!.length + groups[1]!.length;
  if (doubles === 1) {
    if (count > 7) return bad('has 8 groups besides "::", which must stand for at least one');
  } else if (count !== 8) {
    return bad(`has ${count} group${count === 1 ? "" : "s"}, needs 8 (or "::")`);
  }
  const all = [...groups[0]!, ...new Array<number>(8 - count).fill(0), ...groups[1]!];
  let value = 0n;
  for (const g of all) value = (value << 16n) | BigInt(g);
  return { ok: true, value };
}

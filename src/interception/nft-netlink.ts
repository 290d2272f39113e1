/**
 * nf_tables netlink messages for the live updates, built once for every pod (pure: bytes in, bytes out).
 *
 * - An element sync of host sets as one netlink batch (one transaction): what libnftables would send for the
 *   same `flush set` / `delete element` / `add element` text, without parsing 50,000 addresses once per pod.
 *   Host sets only: an interval set's kernel form depends on what it holds (nft reads the set first to place
 *   the interval-end markers), so its changes stay with libnftables.
 * - The digest of each address set the plan expects, to compare with what the helper's `d` mode dumps from
 *   the kernel: the elements that do not end an interval (a host, a prefix's first address), counted, and
 *   their FNV-1a 64 key hashes summed modulo 2^64. A deleted or added element changes it; a listing is not
 *   needed to see that.
 */

import { tryParseAddressText } from "../net/ip.ts";
import type { IpFamily } from "../net/types.ts";
import type { ElementSync } from "./live-update.ts";
import type { InterceptionPlan } from "./types.ts";

const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NFPROTO_INET = 1;
const NLA_F_NESTED = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_DATA_VALUE = 1;
/** An attribute's length is 16 bits: the elements of one message stay well under it. */
const ELEMENT_BYTES_PER_MESSAGE = 60_000;

const align4 = (n: number) => (n + 3) & ~3;

/** Appends netlink messages to a growing buffer (host byte order: little-endian, as on every target). */
class Writer {
  #buf = Buffer.alloc(1 << 16);
  #len = 0;
  #seq = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(grown, 0, 0, this.#len);
    this.#buf = grown;
  }

  /** A message: header, nfgenmsg, then what `body` appends. */
  message(type: number, flags: number, family: number, resId: number, body: () => void): void {
    this.#room(20);
    const start = this.#len;
    this.#buf.writeUInt16LE(type, start + 4);
    this.#buf.writeUInt16LE(flags, start + 6);
    this.#buf.writeUInt32LE(this.#seq++, start + 8);
    this.#buf.writeUInt32LE(0, start + 12);
    this.#buf.writeUInt8(family, start + 16);
    this.#buf.writeUInt8(0, start + 17);
    this.#buf.writeUInt16BE(resId, start + 18);
    this.#len += 20;
    body();
    this.#buf.writeUInt32LE(this.#len - start, start);
  }

  attr(type: number, data: Uint8Array): void {
    const padded = align4(4 + data.length);
    this.#room(padded);
    this.#buf.writeUInt16LE(4 + data.length, this.#len);
    this.#buf.writeUInt16LE(type, this.#len + 2);
    this.#buf.set(data, this.#len + 4);
    this.#buf.fill(0, this.#len + 4 + data.length, this.#len + padded);
    this.#len += padded;
  }

  nested(type: number, body: () => void): void {
    this.#room(4);
    const start = this.#len;
    this.#len += 4;
    body();
    this.#buf.writeUInt16LE(this.#len - start, start);
    this.#buf.writeUInt16LE(type | NLA_F_NESTED, start + 2);
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

const cString = (s: string) => Buffer.from(`${s}\0`);

/** An address as a set key: its bytes in network order. */
function keyBytes(family: IpFamily, value: bigint): Uint8Array {
  const out = new Uint8Array(family === 4 ? 4 : 16);
  let v = value;
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** An nft host element's text as key bytes (IPv4 without BigInt: 50,000 of them are the common case). */
function addressBytes(text: string): Uint8Array {
  const quad = DOTTED_QUAD.exec(text);
  if (quad) {
    const bytes = quad.slice(1).map(Number);
    if (bytes.every((b) => b <= 255)) return Uint8Array.from(bytes);
  }
  const parsed = tryParseAddressText(text);
  if (!parsed.ok) throw new Error(`not an address: ${text}`);
  return keyBytes(parsed.value.family, parsed.value.value);
}

/** The names of the plan's host (hash) sets: the only ones whose changes go as netlink batches. */
function hostSets(plan: InterceptionPlan): Set<string> {
  return new Set(plan.nft.addressSets.filter((s) => s.kind === "hosts").map((s) => s.name));
}

/**
 * The netlink batch of an element sync (flushes and removals first, then additions, one transaction), or
 * undefined when it touches a set that is not one of the plan's host sets. Pure.
 */
export function encodeElementSyncBatch(
  sync: ElementSync,
  plan: InterceptionPlan,
  table = plan.nft.table,
): Uint8Array | undefined {
  const hosts = hostSets(plan);
  if ([...sync.keys()].some((set) => !hosts.has(set))) return undefined;
  const w = new Writer();
  const subsystem = (msg: number) => (NFNL_SUBSYS_NFTABLES << 8) | msg;
  const elements = (set: string, msg: number, flags: number, items: readonly string[] | undefined) => {
    const header = () => {
      w.attr(NFTA_SET_ELEM_LIST_TABLE, cString(table));
      w.attr(NFTA_SET_ELEM_LIST_SET, cString(set));
    };
    if (items === undefined) {
      w.message(subsystem(msg), flags, NFPROTO_INET, 0, header);
      return;
    }
    const keys = items.map(addressBytes);
    for (let i = 0; i < keys.length; ) {
      w.message(subsystem(msg), flags, NFPROTO_INET, 0, () => {
        header();
        w.nested(NFTA_SET_ELEM_LIST_ELEMENTS, () => {
          for (let bytes = 0; i < keys.length && bytes < ELEMENT_BYTES_PER_MESSAGE; i++) {
            const key = keys[i]!;
            w.nested(NFTA_LIST_ELEM, () => w.nested(NFTA_SET_ELEM_KEY, () => w.attr(NFTA_DATA_VALUE, key)));
            bytes += 12 + key.length;
          }
        });
      });
    }
  };
  w.message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, () => {});
  for (const [set, { remove, flush }] of sync)
    if (flush) elements(set, NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK, undefined);
    else if (remove.length > 0) elements(set, NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK, remove);
  for (const [set, { add }] of sync)
    if (add.length > 0) elements(set, NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, add);
  w.message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, () => {});
  return w.bytes();
}

/** A set's digest: element count and hash sum, as the helper prints them ("<count> <16 hex digits>"). */
export type SetDigest = string;

/**
 * Sums FNV-1a 64 hashes of keys modulo 2^64 in two 32-bit halves (numbers, not BigInt: 50,000 keys in a
 * few milliseconds).
 */
class DigestSum {
  #hi = 0;
  #lo = 0;
  count = 0;

  add(key: Uint8Array): void {
    let hi = 0xcbf29ce4;
    let lo = 0x84222325;
    for (const b of key) {
      lo = (lo ^ b) >>> 0;
      // × 0x100000001b3 = × 2^40 + × 0x1b3, modulo 2^64
      const low = lo * 0x1b3;
      const carry = Math.floor(low / 2 ** 32);
      hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0;
      lo = low >>> 0;
    }
    const sum = this.#lo + lo;
    this.#lo = sum >>> 0;
    this.#hi = (this.#hi + hi + (sum >= 2 ** 32 ? 1 : 0)) >>> 0;
    this.count++;
  }

  toString(): SetDigest {
    return `${this.count} ${this.#hi.toString(16).padStart(8, "0")}${this.#lo.toString(16).padStart(8, "0")}`;
  }
}

const digestCache = new WeakMap<InterceptionPlan, ReadonlyMap<string, SetDigest>>();

/** Per address set of the plan, the digest the kernel's copy has when it holds exactly the plan. Cached. */
export function expectedSetDigests(plan: InterceptionPlan): ReadonlyMap<string, SetDigest> {
  let digests = digestCache.get(plan);
  if (!digests) {
    const map = new Map<string, SetDigest>();
    for (const set of plan.nft.addressSets) {
      const sum = new DigestSum();
      for (const { cidr } of set.entries) sum.add(keyBytes(set.family, cidr.address));
      map.set(set.name, sum.toString());
    }
    digests = map;
    digestCache.set(plan, digests);
  }
  return digests;
}

/** The helper's digest lines ("<set> <count> <sum>") by set. Pure. */
export function parseSetDigests(text: string): Map<string, SetDigest> {
  const out = new Map<string, SetDigest>();
  for (const line of text.split("\n")) {
    const [set, count, sum] = line.split(" ");
    if (set && count && sum) out.set(set, `${count} ${sum}`);
  }
  return out;
}

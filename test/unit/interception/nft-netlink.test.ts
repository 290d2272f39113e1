import assert from "node:assert/strict";
import { test } from "node:test";
import {
  buildPlan,
  ElementSyncCache,
  encodeElementSyncBatch,
  expectedSetDigests,
  parseSetDigests,
} from "../../../src/interception/index.ts";
import { buildTestPolicy } from "../../golden/interception/policy-builder.ts";

const planOf = (list: string[]) =>
  buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: list }), { ipv6: true });

/** The messages of a batch: type, flags, and for element messages the set and element keys (hex). */
function decode(batch: Uint8Array) {
  const b = Buffer.from(batch);
  const out: { type: number; flags: number; set?: string; keys?: string[] }[] = [];
  const attrs = (from: number, to: number) => {
    const found = new Map<number, [number, number]>();
    for (let p = from; p + 4 <= to; p += (b.readUInt16LE(p) + 3) & ~3)
      found.set(b.readUInt16LE(p + 2) & 0x7fff, [p + 4, p + b.readUInt16LE(p)]);
    return found;
  };
  const listed = (from: number, to: number) => {
    const items: [number, number][] = [];
    for (let p = from; p + 4 <= to; p += (b.readUInt16LE(p) + 3) & ~3)
      items.push([p + 4, p + b.readUInt16LE(p)]);
    return items;
  };
  for (let off = 0; off < b.length; off += b.readUInt32LE(off)) {
    const len = b.readUInt32LE(off);
    const msg: (typeof out)[number] = { type: b.readUInt16LE(off + 4), flags: b.readUInt16LE(off + 6) };
    const top = attrs(off + 20, off + len);
    const set = top.get(2);
    if (set) msg.set = b.subarray(set[0], set[1] - 1).toString();
    const elements = top.get(3);
    if (elements)
      msg.keys = listed(...elements).map(([s, e]) => {
        const key = attrs(...attrs(s, e).get(1)!).get(1)!;
        return b.subarray(...key).toString("hex");
      });
    out.push(msg);
  }
  return out;
}

test("an element sync of host sets is one batch: begin, flush/removals, additions (acked), end; chunked under 64 KiB per message", () => {
  const from = planOf(["192.0.2.1/32", "192.0.2.2/32"]);
  const to = planOf(["192.0.2.2/32", "198.51.100.7/32", "2001:db8::1/128"]);
  const cache = new ElementSyncCache();
  const batch = cache.batchBetween(from, to);
  assert.ok(batch);
  assert.equal(cache.batchBetween(from, to), batch, "built once");
  const msgs = decode(batch);
  assert.deepEqual(
    msgs.map((m) => [m.type, m.set, m.keys]),
    [
      [0x10, undefined, undefined],
      [0x0a0e, "out_ex4_hosts", ["c0000201"]],
      [0x0a0c, "out_ex4_hosts", ["c6336407"]],
      [0x0a0c, "out_ex6_hosts", ["20010db8000000000000000000000001"]],
      [0x11, undefined, undefined],
    ],
  );
  // Element messages ask for an ack (the helper counts them); additions create, never replace.
  assert.deepEqual(
    msgs.map((m) => m.flags),
    [0x1, 0x5, 0x405, 0x405, 0x1],
  );

  const big = planOf(Array.from({ length: 10_000 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`));
  const empty = planOf([]);
  const fill = decode(encodeElementSyncBatch(cache.between(empty, big)!, big)!);
  assert.ok(fill.length > 3, "several element messages");
  assert.equal(fill.flatMap((m) => m.keys ?? []).length, 10_000);
  const back = decode(encodeElementSyncBatch(cache.between(big, empty)!, empty)!);
  assert.deepEqual(
    back.map((m) => [m.type, m.set, m.keys]),
    [
      [0x10, undefined, undefined],
      [0x0a0e, "out_ex4_hosts", undefined],
      [0x11, undefined, undefined],
    ],
    "every element removed: one flush, no element listed",
  );
});

test("a sync touching an interval (prefix) set has no batch: it goes to nft as text", () => {
  const from = planOf(["192.0.2.1/32"]);
  const to = planOf(["192.0.2.1/32", "198.51.100.0/24"]);
  assert.equal(new ElementSyncCache().batchBetween(from, to), undefined);
});

test("set digests: count and the sum of FNV-1a 64 key hashes modulo 2^64, as the helper prints them", () => {
  const fnv = (bytes: number[]) => {
    let h = 0xcbf29ce484222325n;
    for (const byte of bytes) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
    return h;
  };
  const plan = planOf(["192.0.2.1/32", "192.0.2.255/32", "198.51.100.0/24", "2001:db8::/32"]);
  const digests = expectedSetDigests(plan);
  const hex = (h: bigint) => h.toString(16).padStart(16, "0");
  const sum = (fnv([192, 0, 2, 1]) + fnv([192, 0, 2, 255])) & 0xffffffffffffffffn;
  assert.equal(digests.get("out_ex4_hosts"), `2 ${hex(sum)}`);
  // A prefix counts by its first address (the kernel's interval-end elements are left out on both sides).
  assert.equal(digests.get("out_ex4_nets"), `1 ${hex(fnv([198, 51, 100, 0]))}`);
  assert.equal(digests.get("out_ex6_nets"), `1 ${hex(fnv([0x20, 0x01, 0x0d, 0xb8, ...Array(12).fill(0)]))}`);
  assert.equal(digests.get("out_in4_hosts"), "0 0000000000000000");
  assert.deepEqual(
    parseSetDigests("out_ex4_hosts 2 00000000000000ff\nout_ex6_hosts 0 0000000000000000\n"),
    new Map([
      ["out_ex4_hosts", "2 00000000000000ff"],
      ["out_ex6_hosts", "0 0000000000000000"],
    ]),
  );
});

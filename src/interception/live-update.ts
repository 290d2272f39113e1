/**
 * Live updates of a running pod's interception. nft: adding or removing exclusion/inclusion entries is a
 * set-element change in one `nft -f` transaction (host entries in the hash sets, prefixes in the interval
 * sets), with no rule touched — so the cost does not depend on the list size, unlike one iptables rule per
 * CIDR. Anything else that differs (a chain, a hand-deleted rule, a missing table) and the iptables backend:
 * the backend's atomic replace of our own rules. Either way one transaction: the pod never runs half a change,
 * and a rejected one leaves the previous rules in place.
 */

import type { CommandResult, CommandRunner } from "../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { Cidr } from "../net/types.ts";
import { applyInterception, type EngineOptions, verifyInterception } from "./apply.ts";
import { diffNft, expectedTable, listTable, type ParsedTable, parseNftTable } from "./backend-nft.ts";
import { encodeElementSyncBatch, expectedSetDigests, parseSetDigests } from "./nft-netlink.ts";
import { addressSetName, NFT_TABLE } from "./plan-nft.ts";
import { nftCidrText, renderNftTable } from "./render-nft.ts";
import type { InterceptionPlan } from "./types.ts";

export interface ElementChanges {
  readonly list: "exclusions" | "inclusions";
  readonly add?: readonly Cidr[];
  readonly remove?: readonly Cidr[];
}

function setOf(list: "exclusions" | "inclusions", cidr: Cidr): string {
  const full = cidr.family === 4 ? 32 : 128;
  return addressSetName(
    list === "exclusions" ? "ex" : "in",
    cidr.family,
    cidr.prefixLength === full ? "hosts" : "prefixes",
  );
}

/** The `nft -f` text of one element transaction (removals first, then additions). Pure. */
export function renderNftElementUpdate(changes: ElementChanges, table = NFT_TABLE): string {
  const lines: string[] = [];
  const group = (verb: "add" | "delete", cidrs: readonly Cidr[]) => {
    const bySet = new Map<string, string[]>();
    for (const c of cidrs) {
      const set = setOf(changes.list, c);
      bySet.set(set, [...(bySet.get(set) ?? []), nftCidrText(c)]);
    }
    for (const [set, items] of bySet)
      lines.push(`${verb} element inet ${table} ${set} { ${items.join(", ")} }`);
  };
  group("delete", changes.remove ?? []);
  group("add", changes.add ?? []);
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** Applies the element changes atomically; nothing changes when any element is rejected. */
export async function updateNftElements(
  runner: CommandRunner,
  changes: ElementChanges,
  table = NFT_TABLE,
): Promise<void> {
  const text = renderNftElementUpdate(changes, table);
  if (text === "") return;
  const r = await runner.run(["nft", "-f", "-"], { stdin: text });
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `nft rejected the element update (exit ${r.code}): ${r.stderr.trim()}`,
    );
  }
}

/**
 * Per set: the elements (in the kernel's listing form) to add and to remove; `flush` when every element the
 * set held goes (a full replacement: `flush set` costs nothing per element, `delete element` parses each).
 */
export type ElementSync = ReadonlyMap<
  string,
  { readonly add: readonly string[]; readonly remove: readonly string[]; readonly flush: boolean }
>;

/**
 * The element changes that turn the listed table into the plan's, or undefined when anything besides set
 * elements differs (a chain rule, a set declaration, a set missing or extra): that needs the table replaced.
 * Pure.
 */
export function planElementSync(expected: ParsedTable, actual: ParsedTable): ElementSync | undefined {
  const sameKeys = (a: Map<string, unknown>, b: Map<string, unknown>) =>
    a.size === b.size && [...a.keys()].every((k) => b.has(k));
  if (!sameKeys(expected.sets, actual.sets) || !sameKeys(expected.chains, actual.chains)) return undefined;
  for (const [name, rules] of expected.chains) {
    if (rules.join("\n") !== actual.chains.get(name)!.join("\n")) return undefined;
  }
  const sync = new Map<string, { add: string[]; remove: string[]; flush: boolean }>();
  for (const [name, want] of expected.sets) {
    const have = actual.sets.get(name)!;
    if (want.header.join("; ") !== have.header.join("; ")) return undefined;
    const change = elementChange(have.elements, want.elements);
    if (change) sync.set(name, change);
  }
  return sync;
}

/**
 * The element changes from one plan's table to another's, computed from the plans (no rendering of the
 * elements: cheap whatever the list size), or undefined when anything but address-set elements differs. Pure.
 */
export function planElementSyncBetween(
  from: InterceptionPlan,
  to: InterceptionPlan,
): ElementSync | undefined {
  const skeleton = (p: InterceptionPlan) =>
    renderNftTable({ ...p.nft, addressSets: p.nft.addressSets.map((a) => ({ ...a, entries: [] })) });
  if (skeleton(from) !== skeleton(to)) return undefined;
  const sync = new Map<string, { add: string[]; remove: string[]; flush: boolean }>();
  for (const want of to.nft.addressSets) {
    const had = new Set(
      from.nft.addressSets.find((a) => a.name === want.name)?.entries.map((e) => nftCidrText(e.cidr)),
    );
    const change = elementChange(had, new Set(want.entries.map((e) => nftCidrText(e.cidr))));
    if (change) sync.set(want.name, change);
  }
  return sync;
}

/** One set's change from `had` to `has`, or undefined when equal. Pure. */
function elementChange(
  had: ReadonlySet<string>,
  has: ReadonlySet<string>,
): { add: string[]; remove: string[]; flush: boolean } | undefined {
  const add = [...has].filter((e) => !had.has(e));
  const remove = [...had].filter((e) => !has.has(e));
  if (add.length === 0 && remove.length === 0) return undefined;
  return { add, remove, flush: remove.length > 0 && remove.length === had.size };
}

/**
 * planElementSyncBetween per pair of plan objects, for a caller that moves many pods between the same two
 * plans (one computation for all of them: it is linear in the list size). Held by the caller; weak keys.
 */
export class ElementSyncCache {
  readonly #byFrom = new WeakMap<InterceptionPlan, WeakMap<InterceptionPlan, CachedSync>>();

  between(from: InterceptionPlan, to: InterceptionPlan): ElementSync | undefined {
    return this.#entry(from, to).sync;
  }

  /** The sync's netlink batch (built once, on first use), undefined when it cannot go as one. */
  batchBetween(from: InterceptionPlan, to: InterceptionPlan): Uint8Array | undefined {
    const entry = this.#entry(from, to);
    if (entry.batch === null) entry.batch = entry.sync && encodeElementSyncBatch(entry.sync, to);
    return entry.batch;
  }

  #entry(from: InterceptionPlan, to: InterceptionPlan): CachedSync {
    let byTo = this.#byFrom.get(from);
    if (!byTo) {
      byTo = new WeakMap();
      this.#byFrom.set(from, byTo);
    }
    let hit = byTo.get(to);
    if (!hit) {
      hit = { sync: planElementSyncBetween(from, to), batch: null };
      byTo.set(to, hit);
    }
    return hit;
  }
}

interface CachedSync {
  readonly sync: ElementSync | undefined;
  /** null: not built yet. */
  batch: Uint8Array | undefined | null;
}

/**
 * The `nft -f` text of an element sync: every removal (a set losing all its elements is flushed), then every
 * addition, one transaction. Pure.
 */
export function renderElementSync(sync: ElementSync, table = NFT_TABLE): string {
  const lines: string[] = [];
  for (const [set, { remove, flush }] of sync)
    if (flush) lines.push(`flush set inet ${table} ${set}`);
    else if (remove.length > 0) lines.push(`delete element inet ${table} ${set} { ${remove.join(", ")} }`);
  for (const [set, { add }] of sync)
    if (add.length > 0) lines.push(`add element inet ${table} ${set} { ${add.join(", ")} }`);
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/**
 * What a live sync did: nothing, an element transaction (nft), address sets found changed by someone else
 * and restored (nft), or an atomic replace of our rules.
 */
export type LiveSyncOutcome =
  | { readonly how: "unchanged" }
  | { readonly how: "elements"; readonly added: number; readonly removed: number }
  | { readonly how: "restored"; readonly diff: readonly string[] }
  | { readonly how: "replaced"; readonly diff: readonly string[] };

async function readBack(plan: InterceptionPlan, o: EngineOptions): Promise<void> {
  const after = await verifyInterception(plan, o);
  if (after.length > 0) {
    throw new MeshError(
      ErrorCode.VerifyFailed,
      `rules read back differ from the plan after the live update:\n${after.join("\n")}`,
    );
  }
}

/** The `table inet <table> { … }` block of a ruleset listing, or undefined when it has none. Pure. */
export function tableBlock(ruleset: string, table: string): string | undefined {
  const head = `table inet ${table} {\n`;
  const start = ruleset.startsWith(head) ? 0 : ruleset.indexOf(`\n${head}`) + 1;
  if (start === 0 && !ruleset.startsWith(head)) return undefined;
  const end = ruleset.indexOf("\n}", start);
  return end < 0 ? undefined : ruleset.slice(start, end + 2);
}

/**
 * Drift in everything but the set elements, for a frequent check whose cost does not depend on the list size:
 * nft lists tersely (`nft -t`: chains and set declarations, no elements) and our table is compared with the
 * plan's; iptables compares everything (`verifyInterception`). The whole ruleset, not the table: nft 1.0.6
 * fetches a table's set elements from the kernel even with `-t` (0.8 s at 50,000), the ruleset's not (30 ms).
 * Empty = in sync.
 */
export async function skeletonDrift(plan: InterceptionPlan, o: EngineOptions): Promise<string[]> {
  if (o.variant !== "nftables") return verifyInterception(plan, o);
  const r = await o.runner.run(["nft", "-t", "list", "ruleset"]);
  if (r.code !== 0) return [`table inet ${plan.nft.table}: ${r.stderr.trim() || `nft exit ${r.code}`}`];
  const block = tableBlock(r.stdout, plan.nft.table);
  if (block === undefined) return [`table inet ${plan.nft.table}: missing`];
  const expected = expectedTable(plan, o.podIp);
  for (const set of expected.sets.values()) set.elements.clear();
  return diffNft(expected, parseNftTable(block));
}

/**
 * The frequent drift check of a pod brought to `plan`, cheap whatever the list size: the skeleton (`nft -t`)
 * and the address sets' digests. Sets whose elements differ (a hand-deleted or added element) are restored in
 * one transaction; undefined when something else differs or the sets cannot be digested here (no netlink
 * path): then the caller reads everything back (syncInterception without `known`).
 */
export async function checkDriftCheaply(
  plan: InterceptionPlan,
  o: EngineOptions,
): Promise<LiveSyncOutcome | undefined> {
  if (o.variant !== "nftables" || !o.netlink || (await skeletonDrift(plan, o)).length > 0) return undefined;
  const sets = await setDigestDrift(plan, o);
  if (sets === undefined) return undefined;
  if (sets.size === 0) return { how: "unchanged" };
  await restoreSets(plan, o, [...sets.keys()]);
  return { how: "restored", diff: [...sets.values()] };
}

/**
 * The fast path when the plan last applied is known: its element difference to the new plan in one
 * transaction, without listing the table (whose size is the list's). `add element` of a present element is
 * a no-op and `delete element` of a missing one fails the whole transaction, so when the kernel no longer
 * holds `applied` nothing changes and undefined sends the caller to the read-back path.
 */
async function elementsFrom(
  applied: InterceptionPlan,
  plan: InterceptionPlan,
  o: EngineOptions,
  cache: ElementSyncCache,
): Promise<LiveSyncOutcome | undefined> {
  const sync = cache.between(applied, plan);
  if (sync === undefined) return undefined;
  if (sync.size === 0) return { how: "unchanged" };
  const batch = o.netlink && cache.batchBetween(applied, plan);
  const r = await sendElementSync(sync, plan, o, batch);
  if (r.code !== 0) return undefined;
  const count = (k: "add" | "remove") => [...sync.values()].reduce((n, s) => n + s[k].length, 0);
  return { how: "elements", added: count("add"), removed: count("remove") };
}

/**
 * One element transaction: the netlink batch when there is one and the helper can send it (no parse per
 * pod), else the text through nft.
 */
function sendElementSync(
  sync: ElementSync,
  plan: InterceptionPlan,
  o: EngineOptions,
  batch = o.netlink && encodeElementSyncBatch(sync, plan),
): Promise<CommandResult> {
  if (batch && o.netlink) return o.netlink.send(batch);
  return o.runner.run(["nft", "-f", "-"], { stdin: renderElementSync(sync, plan.nft.table) });
}

/**
 * The address sets whose elements differ from the plan's, found without listing them (their digests, see
 * nft-netlink.ts), each with what differs; undefined when they cannot be digested here (no netlink path, or
 * the dump failed). Empty = in sync.
 */
export async function setDigestDrift(
  plan: InterceptionPlan,
  o: EngineOptions,
): Promise<ReadonlyMap<string, string> | undefined> {
  if (!o.netlink || o.variant !== "nftables") return undefined;
  const expected = expectedSetDigests(plan);
  const r = await o.netlink.digests(plan.nft.table, [...expected.keys()]);
  if (r.code !== 0) return undefined;
  const actual = parseSetDigests(r.stdout);
  const drift = new Map<string, string>();
  for (const [set, want] of expected) {
    const have = actual.get(set);
    if (have === want) continue;
    const haveCount = have?.split(" ")[0] ?? "no";
    const wantCount = want.split(" ")[0];
    drift.set(
      set,
      haveCount === wantCount
        ? `set ${set}: ${wantCount} elements, not the plan's`
        : `set ${set}: ${haveCount} elements (the plan: ${wantCount})`,
    );
  }
  return drift;
}

/**
 * Brings the named address sets back to the plan's elements in one transaction (each flushed and filled
 * again: whatever was added or deleted by hand), without listing them. Throws ApplyFailed when the kernel
 * rejects it (nothing changed).
 */
export async function restoreSets(
  plan: InterceptionPlan,
  o: EngineOptions,
  sets: readonly string[],
): Promise<void> {
  const sync: ElementSync = new Map(
    plan.nft.addressSets
      .filter((s) => sets.includes(s.name))
      .map((s) => [s.name, { add: s.entries.map((e) => nftCidrText(e.cidr)), remove: [], flush: true }]),
  );
  const r = await sendElementSync(sync, plan, o);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `restoring the sets ${sets.join(", ")} failed (exit ${r.code}); nothing was applied: ${r.stderr.trim()}`,
    );
  }
}

/**
 * Brings a running pod's interception to the plan in one transaction: set elements only when nothing else
 * differs (nft), else the backend's atomic replace of our own table or chains. Throws (ApplyFailed,
 * VerifyFailed) with the previous rules still in place when the kernel rejects the change. With
 * `known.applied` (the plan this pod was last brought to) an nft element change skips the read-back (see
 * elementsFrom); drift is then found by the next call without it.
 */
export async function syncInterception(
  plan: InterceptionPlan,
  o: EngineOptions,
  known?: { readonly applied: InterceptionPlan; readonly cache?: ElementSyncCache },
): Promise<LiveSyncOutcome> {
  if (o.variant === "nftables" && known !== undefined) {
    const fast = await elementsFrom(known.applied, plan, o, known.cache ?? new ElementSyncCache());
    if (fast !== undefined) return fast;
  }
  if (o.variant === "nftables") {
    const listed = await listTable(o.runner, plan.nft.table);
    if (listed !== undefined) {
      const expected = expectedTable(plan, o.podIp);
      const actual = parseNftTable(listed);
      if (diffNft(expected, actual).length === 0) return { how: "unchanged" };
      const sync = planElementSync(expected, actual);
      if (sync !== undefined) {
        const r = await o.runner.run(["nft", "-f", "-"], { stdin: renderElementSync(sync, plan.nft.table) });
        if (r.code !== 0) {
          throw new MeshError(
            ErrorCode.ApplyFailed,
            `nft rejected the element update (exit ${r.code}); nothing was applied: ${r.stderr.trim()}`,
          );
        }
        await readBack(plan, o);
        const count = (k: "add" | "remove") => [...sync.values()].reduce((n, s) => n + s[k].length, 0);
        return { how: "elements", added: count("add"), removed: count("remove") };
      }
    }
  } else if ((await verifyInterception(plan, o)).length === 0) {
    return { how: "unchanged" };
  }
  const outcome = await applyInterception(plan, o);
  return outcome.changed ? { how: "replaced", diff: outcome.diff } : { how: "unchanged" };
}

/**
 * Live updates of the nft backend: adding or removing exclusion/inclusion entries is a set-element change in
 * one `nft -f` transaction (host entries in the hash sets, prefixes in the interval sets), with no rule
 * touched — so the cost does not depend on the list size, unlike one iptables rule per CIDR.
 */

import type { CommandRunner } from "../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { Cidr } from "../net/types.ts";
import { addressSetName, NFT_TABLE } from "./plan-nft.ts";
import { nftCidrText } from "./render-nft.ts";

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

/**
 * nftables backend: our table `inet osm_proxy` is the only thing we touch. Apply replaces it in one `nft -f`
 * transaction; verify parses `nft list table` back (sets compared as sets, chains rule by rule); cleanup
 * deletes the table.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CommandRunner } from "../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { ApplyOutcome } from "./backend-iptables.ts";
import { POD_IP_PLACEHOLDER } from "./plan-rules.ts";
import { renderNftTable } from "./render-nft.ts";
import { renderNftJson } from "./render-nft-json.ts";
import type { InterceptionPlan } from "./types.ts";

export interface ParsedTable {
  readonly sets: Map<string, { header: string[]; elements: Set<string> }>;
  readonly chains: Map<string, string[]>;
}

/** Parses `nft list table` output (or our rendering of it) into sets and chains; whitespace-insensitive. */
export function parseNftTable(text: string): ParsedTable {
  const sets = new Map<string, { header: string[]; elements: Set<string> }>();
  const chains = new Map<string, string[]>();
  // Join wrapped element lists: nft breaks long `elements = { a, b,\n c }` over lines.
  const lines = text
    .replace(/,\s*\n\s*/g, ", ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  let current: { kind: "set" | "chain"; name: string } | undefined;
  for (const line of lines) {
    const open = /^(set|chain) (\S+) \{$/.exec(line);
    if (open) {
      current = { kind: open[1] as "set" | "chain", name: open[2]! };
      if (current.kind === "set") sets.set(current.name, { header: [], elements: new Set() });
      else chains.set(current.name, []);
      continue;
    }
    if (line === "}") {
      current = undefined;
      continue;
    }
    if (!current) continue;
    if (current.kind === "set") {
      const set = sets.get(current.name)!;
      const el = /^elements = \{ (.*) \}$/.exec(line);
      if (el) for (const e of el[1]!.split(",")) set.elements.add(e.trim());
      else set.header.push(line);
    } else {
      chains.get(current.name)!.push(line.replace(/ # handle \d+$/, ""));
    }
  }
  return { sets, chains };
}

/** Differences between the plan's table and the listed one; empty = in sync. */
export function diffNft(expected: ParsedTable, actual: ParsedTable): string[] {
  const diff: string[] = [];
  for (const [name, want] of expected.sets) {
    const have = actual.sets.get(name);
    if (!have) {
      diff.push(`set ${name}: missing`);
      continue;
    }
    if (want.header.join("; ") !== have.header.join("; "))
      diff.push(`set ${name}: declared as ${have.header.join("; ")}`);
    for (const e of want.elements) if (!have.elements.has(e)) diff.push(`set ${name}: missing element ${e}`);
    for (const e of have.elements)
      if (!want.elements.has(e)) diff.push(`set ${name}: unexpected element ${e}`);
  }
  for (const name of actual.sets.keys()) if (!expected.sets.has(name)) diff.push(`set ${name}: unexpected`);
  for (const [name, want] of expected.chains) {
    const have = actual.chains.get(name);
    if (!have) {
      diff.push(`chain ${name}: missing`);
      continue;
    }
    const n = Math.max(want.length, have.length);
    for (let i = 0; i < n; i++) {
      if (want[i] === have[i]) continue;
      if (want[i] !== undefined) diff.push(`chain ${name} rule ${i + 1}: expected ${want[i]}`);
      if (have[i] !== undefined) diff.push(`chain ${name} rule ${i + 1}: found    ${have[i]}`);
    }
  }
  for (const name of actual.chains.keys())
    if (!expected.chains.has(name)) diff.push(`chain ${name}: unexpected`);
  return diff;
}

/** Our table as `nft list table` prints it; undefined when it does not exist. */
export async function listTable(runner: CommandRunner, table: string): Promise<string | undefined> {
  const r = await runner.run(["nft", "list", "table", "inet", table]);
  if (r.code === 0) return r.stdout;
  if (/No such file or directory/.test(r.stderr)) return undefined;
  throw new MeshError(
    ErrorCode.ApplyFailed,
    `nft list table inet ${table} failed (exit ${r.code}): ${r.stderr.trim()}`,
  );
}

/** The plan's table in the kernel's listing form (what verify compares with). */
export function expectedTable(plan: InterceptionPlan, podIp: string | undefined): ParsedTable {
  let text = renderNftTable(plan.nft);
  if (podIp) text = text.replaceAll(POD_IP_PLACEHOLDER, podIp);
  return parseNftTable(text);
}

export async function verifyNft(
  runner: CommandRunner,
  plan: InterceptionPlan,
  podIp: string | undefined,
): Promise<string[]> {
  const listed = await listTable(runner, plan.nft.table);
  if (listed === undefined) return [`table inet ${plan.nft.table}: missing`];
  return diffNft(expectedTable(plan, podIp), parseNftTable(listed));
}

/** Replaces our table atomically; a no-op when it already matches the plan. */
export async function applyNft(
  runner: CommandRunner,
  plan: InterceptionPlan,
  podIp: string | undefined,
): Promise<ApplyOutcome> {
  if (plan.podIpMode && !podIp) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "localProxyMode PodIP needs the pod IP: --pod-ip or env POD_IP is empty",
    );
  }
  const before = await verifyNft(runner, plan, podIp);
  if (before.length === 0) return { changed: false, diff: [] };
  // JSON loads large sets faster than text; verify (above and in apply.ts) checks it against the text form.
  // `nft -j -f -` opens /dev/stdin, which fails on the socketpair Node gives a child: use a private file.
  const dir = mkdtempSync(join(tmpdir(), "osm-nft-"));
  const file = join(dir, "ruleset.json");
  let r: Awaited<ReturnType<CommandRunner["run"]>>;
  try {
    writeFileSync(file, renderNftJson(plan, podIp), { mode: 0o600 });
    r = await runner.run(["nft", "-j", "-f", file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (r.code !== 0) {
    // JSON errors carry no location; a check-only run of the text form names the offending rule or element.
    const text = renderNftTable(plan.nft).replaceAll(POD_IP_PLACEHOLDER, podIp ?? "127.0.0.1");
    const check = await runner.run(["nft", "-c", "-f", "-"], { stdin: text });
    const why = check.code !== 0 && check.stderr.trim() !== "" ? check.stderr.trim() : r.stderr.trim();
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `nft rejected the ruleset (exit ${r.code}); nothing was applied: ${why}`,
    );
  }
  return { changed: true, diff: before };
}

/** Deletes our table (only ours). Returns whether there was one. */
export async function cleanupNft(runner: CommandRunner, table: string): Promise<boolean> {
  if ((await listTable(runner, table)) === undefined) return false;
  const r = await runner.run(["nft", "delete", "table", "inet", table]);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `nft delete table inet ${table} failed (exit ${r.code}): ${r.stderr.trim()}`,
    );
  }
  return true;
}

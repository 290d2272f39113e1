/**
 * iptables backend (legacy or nft variant): apply, verify, cleanup through `*-save` / `*-restore`.
 *
 * Ours = the four OSM_PROXY_* chains in the nat table, the jumps into them from PREROUTING/OUTPUT, the PodIP
 * DNAT rule, and (egress disabled) OSM_PROXY_EGRESS in the filter table with its jump from OUTPUT.
 * Every change is one `iptables-restore --noflush` transaction per family (atomic in the kernel), tested with
 * `--test` first for every family, so a failure leaves nothing half-applied.
 */
import { ENVOY_UID } from "../constants.ts";
import type { CommandRunner } from "../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import type { IpAddress } from "../net/types.ts";
import { OSM_CHAINS } from "./plan-iptables.ts";
import { CHAIN_EGRESS, POD_IP_PLACEHOLDER } from "./plan-rules.ts";
import { renderSaveRules, restoreLines } from "./render-iptables.ts";
import type { InterceptionPlan, IptablesPayload } from "./types.ts";

export type IptablesVariant = "legacy" | "nft";

function tool(variant: IptablesVariant, family: 4 | 6, what: "save" | "restore"): string {
  return `${family === 4 ? "iptables" : "ip6tables"}-${variant}-${what}`;
}

export interface OurIptablesState {
  /** Rules of our chains, in order, as iptables-save prints them (`-A CHAIN ...`). */
  readonly chains: Map<string, string[]>;
  /** Our rules in PREROUTING / OUTPUT (jumps into our chains, the PodIP DNAT), in order. */
  readonly hooks: string[];
}

type Table = IptablesPayload["table"];

/** Our chains and the built-in chains that jump into them, per table. */
const OURS: Record<Table, { chains: readonly string[]; hooks: readonly string[] }> = {
  nat: { chains: OSM_CHAINS, hooks: ["PREROUTING", "OUTPUT"] },
  filter: { chains: [CHAIN_EGRESS], hooks: ["OUTPUT"] },
};

/** Whether a built-in chain's rule is ours: a jump to one of our chains, or OSM's PodIP DNAT shape. */
function isOurHookRule(line: string, chains: readonly string[]): boolean {
  if (chains.some((c) => line.endsWith(` -j ${c}`))) return true;
  return (
    line.startsWith("-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner ") &&
    line.includes(`--uid-owner ${ENVOY_UID} -j DNAT --to-destination `)
  );
}

/** Extracts our part of `iptables-save -t <table>` output. */
export function parseOurState(save: string, table: Table = "nat"): OurIptablesState {
  const ours = OURS[table];
  const chains = new Map<string, string[]>();
  const hooks: string[] = [];
  for (const line of save.split("\n")) {
    const decl = /^:(\S+) /.exec(line);
    if (decl && ours.chains.includes(decl[1]!)) chains.set(decl[1]!, chains.get(decl[1]!) ?? []);
    const m = /^-A (\S+) /.exec(line);
    if (!m) continue;
    const chain = m[1]!;
    if (ours.chains.includes(chain)) {
      const rules = chains.get(chain);
      if (rules) rules.push(line);
      else chains.set(chain, [line]);
    } else if (ours.hooks.includes(chain) && isOurHookRule(line, ours.chains)) hooks.push(line);
  }
  return { chains, hooks };
}

/** Differences between what the payload should have programmed and what is there; empty = in sync. */
export function diffIptables(
  payload: IptablesPayload,
  state: OurIptablesState,
  podIp: string | undefined,
  resolvers: readonly IpAddress[] = [],
): string[] {
  const expected = renderSaveRules(payload, podIp ? { [POD_IP_PLACEHOLDER]: podIp } : {}, resolvers);
  const diff: string[] = [];
  const family = payload.family === 4 ? "IPv4" : "IPv6";
  const compare = (what: string, want: readonly string[], have: readonly string[]) => {
    if (want.length === have.length && want.every((l, i) => l === have[i])) return;
    const found = diff.length;
    const haveSet = new Set(have);
    const wantSet = new Set(want);
    for (const l of want) if (!haveSet.has(l)) diff.push(`${family} ${what}: missing   ${l}`);
    for (const l of have) if (!wantSet.has(l)) diff.push(`${family} ${what}: unexpected ${l}`);
    if (want.length === have.length && diff.length === found)
      diff.push(`${family} ${what}: rules out of order`);
    else if (want.length !== have.length && diff.length === found) {
      diff.push(`${family} ${what}: ${have.length} rules, expected ${want.length} (duplicates)`);
    }
  };
  const ours = OURS[payload.table];
  for (const chain of ours.chains) {
    if (!state.chains.has(chain)) diff.push(`${family} chain ${chain}: missing`);
    else compare(`chain ${chain}`, expected.get(chain) ?? [], state.chains.get(chain) ?? []);
  }
  const wantHooks = ours.hooks.flatMap((c) => expected.get(c) ?? []);
  compare(ours.hooks.join("/"), wantHooks, state.hooks);
  return diff;
}

async function save(
  runner: CommandRunner,
  variant: IptablesVariant,
  family: 4 | 6,
  table: Table,
): Promise<string> {
  const argv = [tool(variant, family, "save"), "-t", table];
  const r = await runner.run(argv);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `${argv.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`,
      {
        hint: `the ${table} table may be unavailable for this iptables variant; try --backend with the other one`,
      },
    );
  }
  return r.stdout;
}

async function restore(
  runner: CommandRunner,
  variant: IptablesVariant,
  family: 4 | 6,
  input: string,
  test: boolean,
): Promise<void> {
  const argv = [tool(variant, family, "restore"), "--noflush", ...(test ? ["--test"] : [])];
  const r = await runner.run(argv, { stdin: input });
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `${argv.join(" ")} rejected the rules (exit ${r.code}): ${r.stderr.trim()}${lineHint(r.stderr, input)}`,
    );
  }
}

/** iptables-restore reports `line N failed`: quote that line, so the message names the rule. */
function lineHint(stderr: string, input: string): string {
  const m = /line:? (\d+)/i.exec(stderr);
  if (!m) return "";
  const line = input.split("\n")[Number(m[1]) - 1];
  return line ? ` (rule: ${line})` : "";
}

/** Every (family, table) slot of ours, with the plan's payload for it (undefined: nothing of ours belongs there). */
function slots(
  plan: InterceptionPlan,
): { family: 4 | 6; table: Table; payload: IptablesPayload | undefined }[] {
  return [
    { family: 4, table: "nat", payload: plan.iptables.v4 },
    { family: 6, table: "nat", payload: plan.iptables.v6 },
    { family: 4, table: "filter", payload: plan.egressFilter?.v4 },
    { family: 6, table: "filter", payload: plan.egressFilter?.v6 },
  ];
}

const slotName = (s: { family: 4 | 6; table: Table }) => `${s.family === 4 ? "IPv4" : "IPv6"} ${s.table}`;

/** Restore input: flush our chains, delete our old hook rules, add the plan (all in one transaction). */
function replaceInput(
  payload: IptablesPayload,
  state: OurIptablesState,
  podIp: string | undefined,
  resolvers: readonly IpAddress[],
): string {
  const lines = [`*${payload.table}`, ...payload.chains.map((c) => `:${c} - [0:0]`)];
  for (const h of state.hooks) lines.push(`-D${h.slice(2)}`);
  for (const r of payload.rules) {
    for (const text of restoreLines(r, resolvers)) {
      lines.push(podIp ? text.replaceAll(POD_IP_PLACEHOLDER, podIp) : text);
    }
  }
  lines.push("COMMIT");
  return `${lines.join("\n")}\n`;
}

export interface ApplyOutcome {
  readonly changed: boolean;
  readonly diff: readonly string[];
}

function requirePodIp(plan: InterceptionPlan, podIp: string | undefined): void {
  if (plan.podIpMode && !podIp) {
    throw new MeshError(
      ErrorCode.InvalidArgument,
      "localProxyMode PodIP needs the pod IP: --pod-ip or env POD_IP is empty",
    );
  }
}

const hasState = (s: OurIptablesState) => s.chains.size > 0 || s.hooks.length > 0;

/** Applies the plan; a no-op when the kernel already holds exactly it. */
export async function applyIptables(
  runner: CommandRunner,
  variant: IptablesVariant,
  plan: InterceptionPlan,
  podIp: string | undefined,
): Promise<ApplyOutcome> {
  requirePodIp(plan, podIp);
  const work: { payload: IptablesPayload; input: string; diff: string[]; before: OurIptablesState }[] = [];
  // A previous apply's rules in a slot the plan no longer uses (IPv6, the egress filter) are removed.
  const stale: { family: 4 | 6; table: Table }[] = [];
  for (const slot of slots(plan)) {
    const state = parseOurState(await save(runner, variant, slot.family, slot.table), slot.table);
    if (!slot.payload) {
      if (hasState(state)) stale.push(slot);
      continue;
    }
    const diff = diffIptables(slot.payload, state, podIp, plan.resolvers);
    if (diff.length > 0) {
      work.push({
        payload: slot.payload,
        input: replaceInput(slot.payload, state, podIp, plan.resolvers),
        diff,
        before: state,
      });
    }
  }
  if (work.length === 0 && stale.length === 0) return { changed: false, diff: [] };
  for (const w of work) await restore(runner, variant, w.payload.family, w.input, true);
  const done: (typeof work)[number][] = [];
  try {
    for (const w of work) {
      await restore(runner, variant, w.payload.family, w.input, false);
      done.push(w);
    }
  } catch (error) {
    // A slot already replaced gets its previous rules back (none: cleaned), so the pod never runs half of a
    // change: at pod start it has no interception and does not start; a running pod keeps what it had.
    for (const w of done) await rollbackSlot(runner, variant, w.payload, w.before);
    throw error;
  }
  for (const s of stale) await cleanupSlot(runner, variant, s.family, s.table);
  return {
    changed: true,
    diff: [
      ...work.flatMap((w) => w.diff),
      ...stale.map((s) => `${slotName(s)}: rules present but the plan has none there`),
    ],
  };
}

/** Reads the kernel back and compares with the plan; empty = in sync. */
export async function verifyIptables(
  runner: CommandRunner,
  variant: IptablesVariant,
  plan: InterceptionPlan,
  podIp: string | undefined,
): Promise<string[]> {
  const diff: string[] = [];
  for (const slot of slots(plan)) {
    const state = parseOurState(await save(runner, variant, slot.family, slot.table), slot.table);
    if (slot.payload) diff.push(...diffIptables(slot.payload, state, podIp, plan.resolvers));
    else if (hasState(state)) diff.push(`${slotName(slot)}: rules present but the plan has none there`);
  }
  return diff;
}

/**
 * Puts a slot's previous rules of ours back in one transaction: our chains flushed and refilled, the hook
 * rules added since removed and the previous ones appended (their order among other tools' rules is not
 * kept), chains that did not exist removed.
 */
async function rollbackSlot(
  runner: CommandRunner,
  variant: IptablesVariant,
  payload: IptablesPayload,
  previous: OurIptablesState,
): Promise<void> {
  if (!hasState(previous)) {
    await cleanupSlot(runner, variant, payload.family, payload.table);
    return;
  }
  const current = parseOurState(await save(runner, variant, payload.family, payload.table), payload.table);
  const lines = [`*${payload.table}`];
  for (const c of new Set([...current.chains.keys(), ...previous.chains.keys()])) lines.push(`:${c} - [0:0]`);
  for (const h of current.hooks) lines.push(`-D${h.slice(2)}`);
  for (const c of current.chains.keys()) if (!previous.chains.has(c)) lines.push(`-X ${c}`);
  for (const rules of previous.chains.values()) lines.push(...rules);
  lines.push(...previous.hooks);
  lines.push("COMMIT");
  await restore(runner, variant, payload.family, `${lines.join("\n")}\n`, false);
}

async function cleanupSlot(
  runner: CommandRunner,
  variant: IptablesVariant,
  family: 4 | 6,
  table: Table,
): Promise<boolean> {
  const state = parseOurState(await save(runner, variant, family, table), table);
  if (!hasState(state)) return false;
  const lines = [`*${table}`];
  for (const h of state.hooks) lines.push(`-D${h.slice(2)}`);
  for (const c of state.chains.keys()) lines.push(`:${c} - [0:0]`);
  for (const c of state.chains.keys()) lines.push(`-X ${c}`);
  lines.push("COMMIT");
  await restore(runner, variant, family, `${lines.join("\n")}\n`, false);
  return true;
}

/** Removes only our chains and our hook rules (other tools' rules stay), both families, both tables. */
export async function cleanupIptables(runner: CommandRunner, variant: IptablesVariant): Promise<boolean> {
  let removed = false;
  for (const table of ["filter", "nat"] as const) {
    for (const family of [4, 6] as const)
      removed = (await cleanupSlot(runner, variant, family, table)) || removed;
  }
  return removed;
}

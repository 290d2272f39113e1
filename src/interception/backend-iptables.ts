/**
 * iptables backend (legacy or nft variant): apply, verify, cleanup through `*-save` / `*-restore`.
 *
 * Ours = the four OSM_PROXY_* chains, the jumps into them from PREROUTING/OUTPUT, and the PodIP DNAT rule.
 * Every change is one `iptables-restore --noflush` transaction per family (atomic in the kernel), tested with
 * `--test` first for every family, so a failure leaves nothing half-applied.
 */
import { ENVOY_UID } from "../constants.ts";
import { ErrorCode, MeshError } from "../errors.ts";
import { OSM_CHAINS, POD_IP_PLACEHOLDER } from "./plan.ts";
import { renderOsmRule, renderSaveRules } from "./render-iptables.ts";
import type { CommandRunner } from "./runner.ts";
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

const HOOK_CHAINS = ["PREROUTING", "OUTPUT"];

/** Whether a built-in chain's rule is ours: a jump to an OSM chain, or OSM's PodIP DNAT shape. */
function isOurHookRule(line: string): boolean {
  if (OSM_CHAINS.some((c) => line.endsWith(` -j ${c}`))) return true;
  return (
    line.startsWith("-A OUTPUT -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner ") &&
    line.includes(`--uid-owner ${ENVOY_UID} -j DNAT --to-destination `)
  );
}

/** Extracts our part of `iptables-save -t nat` output. */
export function parseOurState(save: string): OurIptablesState {
  const chains = new Map<string, string[]>();
  const hooks: string[] = [];
  for (const line of save.split("\n")) {
    const decl = /^:(\S+) /.exec(line);
    if (decl && OSM_CHAINS.includes(decl[1]!)) chains.set(decl[1]!, chains.get(decl[1]!) ?? []);
    const m = /^-A (\S+) /.exec(line);
    if (!m) continue;
    const chain = m[1]!;
    if (OSM_CHAINS.includes(chain)) {
      const rules = chains.get(chain);
      if (rules) rules.push(line);
      else chains.set(chain, [line]);
    } else if (HOOK_CHAINS.includes(chain) && isOurHookRule(line)) hooks.push(line);
  }
  return { chains, hooks };
}

/** Differences between what the payload should have programmed and what is there; empty = in sync. */
export function diffIptables(
  payload: IptablesPayload,
  state: OurIptablesState,
  podIp: string | undefined,
): string[] {
  const expected = renderSaveRules(payload, podIp ? { [POD_IP_PLACEHOLDER]: podIp } : {});
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
  for (const chain of OSM_CHAINS) {
    if (!state.chains.has(chain)) diff.push(`${family} chain ${chain}: missing`);
    else compare(`chain ${chain}`, expected.get(chain) ?? [], state.chains.get(chain) ?? []);
  }
  const wantHooks = HOOK_CHAINS.flatMap((c) => expected.get(c) ?? []);
  compare("PREROUTING/OUTPUT", wantHooks, state.hooks);
  return diff;
}

async function save(runner: CommandRunner, variant: IptablesVariant, family: 4 | 6): Promise<string> {
  const argv = [tool(variant, family, "save"), "-t", "nat"];
  const r = await runner.run(argv);
  if (r.code !== 0) {
    throw new MeshError(
      ErrorCode.ApplyFailed,
      `${argv.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`,
      {
        hint: "the nat table may be unavailable for this iptables variant; try --backend with the other one",
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

function payloads(plan: InterceptionPlan): IptablesPayload[] {
  return plan.iptables.v6 ? [plan.iptables.v4, plan.iptables.v6] : [plan.iptables.v4];
}

/** Restore input: flush our chains, delete our old hook rules, add the plan (all in one transaction). */
function replaceInput(payload: IptablesPayload, state: OurIptablesState, podIp: string | undefined): string {
  const lines = ["*nat", ...payload.chains.map((c) => `:${c} - [0:0]`)];
  for (const h of state.hooks) lines.push(`-D${h.slice(2)}`);
  for (const r of payload.rules) {
    const text = renderOsmRule(r);
    lines.push(podIp ? text.replaceAll(POD_IP_PLACEHOLDER, podIp) : text);
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

/** Applies the plan; a no-op when the kernel already holds exactly it. */
export async function applyIptables(
  runner: CommandRunner,
  variant: IptablesVariant,
  plan: InterceptionPlan,
  podIp: string | undefined,
): Promise<ApplyOutcome> {
  requirePodIp(plan, podIp);
  const work: { payload: IptablesPayload; input: string; diff: string[] }[] = [];
  for (const payload of payloads(plan)) {
    const state = parseOurState(await save(runner, variant, payload.family));
    const diff = diffIptables(payload, state, podIp);
    if (diff.length > 0) work.push({ payload, input: replaceInput(payload, state, podIp), diff });
  }
  // A previous apply's IPv6 rules, when the plan has no IPv6 payload any more, are removed with the rest.
  let staleV6 = false;
  if (!plan.iptables.v6) {
    const v6 = parseOurState(await save(runner, variant, 6));
    staleV6 = v6.chains.size > 0 || v6.hooks.length > 0;
  }
  if (work.length === 0 && !staleV6) return { changed: false, diff: [] };
  for (const w of work) await restore(runner, variant, w.payload.family, w.input, true);
  const done: IptablesPayload[] = [];
  try {
    for (const w of work) {
      await restore(runner, variant, w.payload.family, w.input, false);
      done.push(w.payload);
    }
  } catch (error) {
    // A family already replaced is cleaned so the pod does not run with half of its interception.
    for (const p of done) await cleanupFamily(runner, variant, p.family);
    throw error;
  }
  if (staleV6) await cleanupFamily(runner, variant, 6);
  return {
    changed: true,
    diff: [
      ...work.flatMap((w) => w.diff),
      ...(staleV6 ? ["IPv6: rules present but the plan has no IPv6 payload"] : []),
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
  for (const payload of payloads(plan)) {
    diff.push(...diffIptables(payload, parseOurState(await save(runner, variant, payload.family)), podIp));
  }
  if (!plan.iptables.v6) {
    const v6 = parseOurState(await save(runner, variant, 6));
    if (v6.chains.size > 0 || v6.hooks.length > 0)
      diff.push("IPv6: rules present but the plan has no IPv6 payload");
  }
  return diff;
}

async function cleanupFamily(
  runner: CommandRunner,
  variant: IptablesVariant,
  family: 4 | 6,
): Promise<boolean> {
  const state = parseOurState(await save(runner, variant, family));
  if (state.chains.size === 0 && state.hooks.length === 0) return false;
  const lines = ["*nat"];
  for (const h of state.hooks) lines.push(`-D${h.slice(2)}`);
  for (const c of state.chains.keys()) lines.push(`:${c} - [0:0]`);
  for (const c of state.chains.keys()) lines.push(`-X ${c}`);
  lines.push("COMMIT");
  await restore(runner, variant, family, `${lines.join("\n")}\n`, false);
  return true;
}

/** Removes only our chains and our hook rules (other tools' rules stay), both families. */
export async function cleanupIptables(runner: CommandRunner, variant: IptablesVariant): Promise<boolean> {
  const v4 = await cleanupFamily(runner, variant, 4);
  const v6 = await cleanupFamily(runner, variant, 6);
  return v4 || v6;
}

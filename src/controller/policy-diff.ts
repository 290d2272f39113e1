/**
 * What differs between the interception policy a pod was given at admission and the policy it would get
 * now. Pure: works on the canonical policy text (one entry per line), so it needs no knowledge of the
 * policy's fields beyond the line format `canonicalPolicyText` prints.
 */

export interface PolicyDiff {
  /** Entries the pod would get now but does not have (`+`). */
  readonly added: readonly string[];
  /** Entries the pod has but would not get now (`-`). */
  readonly removed: readonly string[];
}

/** The entries of a canonical policy text: non-empty trimmed lines, in order, without duplicates. */
export function policyEntries(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const entry = line.trim();
    if (entry !== "") seen.add(entry);
  }
  return [...seen];
}

/** Entry-wise difference, `recorded` → `current`, each side in the order its text lists them. */
export function diffPolicyText(recorded: string, current: string): PolicyDiff {
  const before = policyEntries(recorded);
  const after = policyEntries(current);
  const beforeSet = new Set(before);
  const afterSet = new Set(after);
  return {
    added: after.filter((entry) => !beforeSet.has(entry)),
    removed: before.filter((entry) => !afterSet.has(entry)),
  };
}

/** True when nothing differs. */
export function isEmptyDiff(diff: PolicyDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0;
}

/** The diff as `["-10.0.0.0/8", "+203.0.113.10/32"]`: removals first, then additions. */
export function formatPolicyDiff(diff: PolicyDiff, display: (entry: string) => string = (e) => e): string[] {
  return [...diff.removed.map((e) => `-${display(e)}`), ...diff.added.map((e) => `+${display(e)}`)];
}

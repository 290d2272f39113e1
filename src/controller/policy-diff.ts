/**
 * What differs between the interception policy a pod was given at admission and the policy it would get
 * now. Pure. Works on the canonical policy text (config/'s `canonicalPolicyText`: stable JSON), flattened
 * into entries people can read:
 *   - outbound IP range exclusions, the common case, bare: `203.0.113.10/32`;
 *   - every other field as `<field>:<value>`: `outboundIPRangeInclusions:10.0.0.0/8`,
 *     `outboundPortExclusions:8080`, `localProxyMode:PodIP`.
 * A text that is not JSON (another format) falls back to one entry per non-empty line.
 */

export interface PolicyDiff {
  /** Entries the pod would get now but does not have (`+`). */
  readonly added: readonly string[];
  /** Entries the pod has but would not get now (`-`). */
  readonly removed: readonly string[];
}

/** The field shown without a prefix: the list users change most (docs/osm-behaviour.md §5.2, the guide's step 5). */
const BARE_FIELD = "outboundIPRangeExclusions";
/** Fields that describe the text, not the policy. */
const IGNORED_FIELDS = new Set(["format"]);

function flatten(value: unknown, label: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) flatten(item, label, out);
  } else if (value !== null && typeof value === "object") {
    // Nested groupings (`{v4: [...], v6: [...]}`) add nothing the values do not show.
    for (const key of Object.keys(value).sort()) flatten((value as Record<string, unknown>)[key], label, out);
  } else {
    const text = String(value);
    out.push(label === "" ? text : `${label}:${text}`);
  }
}

/** The entries of a canonical policy text, in order, without duplicates. */
export function policyEntries(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const out: string[] = [];
  if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
    for (const key of Object.keys(parsed).sort()) {
      if (IGNORED_FIELDS.has(key)) continue;
      flatten((parsed as Record<string, unknown>)[key], key === BARE_FIELD ? "" : key, out);
    }
  } else {
    for (const line of text.split(/\r?\n/)) if (line.trim() !== "") out.push(line.trim());
  }
  return [...new Set(out)];
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
export function formatPolicyDiff(diff: PolicyDiff): string[] {
  return [...diff.removed.map((e) => `-${e}`), ...diff.added.map((e) => `+${e}`)];
}

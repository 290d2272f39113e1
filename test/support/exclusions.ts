/**
 * Large exclusion lists for tests and benchmarks: distinct `/32`s that never aggregate (every other address
 * from 10.0.0.0: 10.0.0.0, 10.0.0.2, ...), so the rules really hold that many entries. They are rules only:
 * no traffic goes there.
 */

/** The n-th rule-only exclusion (n < 2^23). */
export function ruleOnlyExclusion(n: number): string {
  const a = 0x0a000000 + 2 * n;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/32`;
}

/** `count` exclusions: `count - 1` rule-only ones, then `last` (an address a test really reaches), if given. */
export function exclusionList(count: number, last?: string): string[] {
  if (last === undefined) return Array.from({ length: count }, (_, i) => ruleOnlyExclusion(i));
  return [...Array.from({ length: count - 1 }, (_, i) => ruleOnlyExclusion(i)), last];
}

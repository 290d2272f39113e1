/**
 * Reconnect delays for the config watch: exponential with "full jitter" (a uniformly random delay between 0
 * and the exponential cap), so many sidecars that lost the controller together do not come back in step.
 */
export interface BackoffPolicy {
  /** First cap, milliseconds. */
  readonly baseMs: number;
  /** Largest cap, milliseconds. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 15_000 };

/** Delay before retry number `attempt` (0 = first retry); `random` returns [0, 1). Never below baseMs/2. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(cap, policy.baseMs / 2);
  return Math.round(floor + random() * (cap - floor));
}

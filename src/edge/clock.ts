/**
 * The clock, injected: logic that reads the time takes a `Clock` so tests control it (docs/conventions.md,
 * "No global state"); only the composition root and I/O loops (deadlines of a poll) read the real one.
 */

/** Milliseconds since the epoch, as `Date.now()`. */
export type Clock = () => number;

/** The machine's clock. */
export const systemClock: Clock = () => Date.now();

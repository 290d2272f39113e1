/**
 * Renders an argv array as a POSIX shell line for display, so the demo prints each command exactly as a
 * person would type it. Display only: commands are always spawned from the argv array, never a shell.
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quotes one argument: unchanged when it needs no quoting, else in single quotes ('\'' for a quote). */
export function quoteArg(arg: string): string {
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function formatCommand(argv: readonly string[]): string {
  return argv.map(quoteArg).join(" ");
}

import type { Command } from "commander";

/** Registers the `osm policy` command(s) on the program. */
export function registerPolicy(_program: Command): void {}

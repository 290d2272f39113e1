import type { Command } from "commander";

/** Registers the `osm interception` command(s) on the program. */
export function registerInterception(_program: Command): void {}

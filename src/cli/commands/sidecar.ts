import type { Command } from "commander";

/** Registers the `osm sidecar` command(s) on the program. */
export function registerSidecar(_program: Command): void {}

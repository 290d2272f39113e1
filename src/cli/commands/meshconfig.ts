import type { Command } from "commander";

/** Registers the `osm meshconfig` command(s) on the program. */
export function registerMeshConfig(_program: Command): void {}

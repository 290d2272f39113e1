import type { Command } from "commander";

/** Registers the `osm mesh` command(s) on the program. */
export function registerMesh(_program: Command): void {}

import type { Command } from "commander";

/** Registers the `osm explain` command(s) on the program. */
export function registerExplain(_program: Command): void {}

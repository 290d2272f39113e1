/**
 * The `osm` command. The only module that reads argv/env, prints, or exits: command modules register
 * themselves on the program and throw MeshError; this file turns errors into messages and exit codes.
 */
import { Command, CommanderError } from "commander";
import { isMeshError } from "../errors.ts";
import { registerController } from "./commands/controller.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerExplain } from "./commands/explain.ts";
import { registerInjector } from "./commands/injector.ts";
import { registerInstall } from "./commands/install.ts";
import { registerInterception } from "./commands/interception.ts";
import { registerMesh } from "./commands/mesh.ts";
import { registerMeshConfig } from "./commands/meshconfig.ts";
import { registerNamespace } from "./commands/namespace.ts";
import { registerPolicy } from "./commands/policy.ts";
import { registerProxy } from "./commands/proxy.ts";
import { registerSidecar } from "./commands/sidecar.ts";
import { registerVersion } from "./commands/version.ts";

export function buildProgram(): Command {
  const program = new Command("osm")
    .description("osm-ts: OSM-compatible sidecar traffic interception and egress control")
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  for (const register of [
    registerVersion,
    registerMeshConfig,
    registerPolicy,
    registerInterception,
    registerExplain,
    registerSidecar,
    registerMesh,
    registerNamespace,
    registerProxy,
    registerDemo,
    registerController,
    registerInstall,
    registerInjector,
  ]) {
    register(program);
  }
  return program;
}

/** Exit code for an error the user caused (bad input), as kubectl uses 1. */
const EXIT_ERROR = 1;

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (isMeshError(error)) {
      process.stderr.write(`Error: ${error.message}\n`);
      if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
      process.exitCode = EXIT_ERROR;
      return;
    }
    throw error;
  }
}

await main(process.argv);

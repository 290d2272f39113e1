/**
 * The `osm` command. The only module that reads argv/env, prints, or exits: command modules register
 * themselves on the program and throw MeshError; this file turns errors into messages and exit codes.
 *
 * Command modules are loaded lazily: `osm sidecar run` (one per pod) must not pay for the Kubernetes client
 * and everything else the other commands import (measured: ~60 MB of RSS and most of the start-up time).
 * `osm sidecar` goes to the sidecar's own entry point (src/sidecar/main.ts) before commander is even loaded.
 */
import type { Command } from "commander";
import { isMeshError } from "../errors.ts";

type Register = (program: Command) => void;

/** Top-level command name → the module that registers it. */
const commandModules: Record<string, () => Promise<Register>> = {
  meshconfig: async () => (await import("./commands/meshconfig.ts")).registerMeshConfig,
  policy: async () => (await import("./commands/policy.ts")).registerPolicy,
  interception: async () => (await import("./commands/interception.ts")).registerInterception,
  explain: async () => (await import("./commands/explain.ts")).registerExplain,
  // Listed for help only: `osm sidecar …` never reaches commander (see main).
  sidecar: async () => (program: Command) => {
    program
      .command("sidecar")
      .description("the transparent proxy injected next to each app (osm sidecar run --help)");
  },
  mesh: async () => (await import("./commands/mesh.ts")).registerMesh,
  namespace: async () => (await import("./commands/namespace.ts")).registerNamespace,
  ns: async () => (await import("./commands/namespace.ts")).registerNamespace,
  proxy: async () => (await import("./commands/proxy.ts")).registerProxy,
  demo: async () => (await import("./commands/demo.ts")).registerDemo,
  controller: async () => (await import("./commands/controller.ts")).registerController,
  install: async () => (await import("./commands/install.ts")).registerInstall,
  uninstall: async () => (await import("./commands/install.ts")).registerInstall,
  injector: async () => (await import("./commands/injector.ts")).registerInjector,
  "node-agent": async () => (await import("./commands/node-agent.ts")).registerNodeAgent,
  dashboard: async () => (await import("./commands/dashboard.ts")).registerDashboard,
};

/**
 * Builds the program with the modules `argv` needs: only the named command's when the first word is a known
 * command, otherwise all of them (so `--help`, `help` and did-you-mean suggestions see every command).
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const { Command } = await import("commander");
  const { registerVersion } = await import("./commands/version.ts");
  const program = new Command("osm")
    .description("osm-ts: OSM-compatible sidecar traffic interception and egress control")
    .showSuggestionAfterError(true)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerVersion(program);
  const first = argv.slice(2).find((word) => !word.startsWith("-"));
  const loaders =
    first === "version"
      ? [] // registered above
      : first !== undefined && commandModules[first]
        ? [commandModules[first]]
        : Object.values(commandModules);
  const registered = new Set<Register>();
  for (const register of await Promise.all(loaders.map((load) => load()))) {
    if (registered.has(register)) continue; // install.ts registers both install and uninstall
    registered.add(register);
    register(program);
  }
  return program;
}

/** Exit code for an error the user caused (bad input), as kubectl uses 1. */
const EXIT_ERROR = 1;

async function main(argv: string[]): Promise<void> {
  if (argv[2] === "sidecar") {
    const { sidecarMain } = await import("../sidecar/main.ts");
    process.exitCode = await sidecarMain(argv.slice(3));
    return;
  }
  const { CommanderError } = await import("commander");
  try {
    const program = await buildProgram(argv);
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

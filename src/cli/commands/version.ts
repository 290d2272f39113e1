import { readFileSync } from "node:fs";
import type { Command } from "commander";

const packageJson = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

/** `osm version`: the CLI's version, and the OSM API it is compatible with. */
export function registerVersion(program: Command): void {
  program.version(packageJson.version, "--version", "print the version and exit");
  program
    .command("version")
    .description("print the osm-ts version and the OSM API it speaks")
    .option("-o, --output <format>", "output format: text|json", "text")
    .action((options: { output: string }) => {
      const info = {
        version: packageJson.version,
        compatibleWith: "openservicemesh/osm v1.2.4 (config.openservicemesh.io/v1alpha2)",
        node: process.version,
      };
      if (options.output === "json") {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      } else {
        process.stdout.write(
          `osm-ts ${info.version}\ncompatible with ${info.compatibleWith}\nnode ${info.node}\n`,
        );
      }
    });
}

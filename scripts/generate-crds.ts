/**
 * Writes the generated CRDs to deploy/crds/. Run with the project's Node: `node scripts/generate-crds.ts`
 * (`--check` exits 1 when a file is stale instead of writing it).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { meshConfigCrdYaml } from "../src/config/crd.ts";
import { smiCrdsYaml } from "../src/smi/crd.ts";

const files: [URL, string][] = [
  [new URL("../deploy/crds/meshconfig.yaml", import.meta.url), meshConfigCrdYaml()],
  [new URL("../deploy/crds/smi.yaml", import.meta.url), smiCrdsYaml()],
];
for (const [target, text] of files) {
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write(`${target.pathname} is stale; run: node scripts/generate-crds.ts\n`);
      process.exitCode = 1;
    }
  } else {
    writeFileSync(target, text);
    process.stdout.write(`wrote ${target.pathname}\n`);
  }
}

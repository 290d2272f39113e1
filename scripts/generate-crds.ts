/**
 * Writes the generated CRDs to deploy/crds/. Run with the project's Node: `node scripts/generate-crds.ts`
 * (`--check` exits 1 when a file is stale instead of writing it).
 */
import { meshConfigCrdYaml } from "../src/config/crd.ts";
import { smiCrdsYaml } from "../src/smi/crd.ts";
import { writeOrCheck } from "./generated-file.ts";

const files: [string, string][] = [
  ["meshconfig.yaml", meshConfigCrdYaml()],
  ["smi.yaml", smiCrdsYaml()],
];
let fresh = true;
for (const [name, text] of files) {
  fresh =
    writeOrCheck(new URL(`../deploy/crds/${name}`, import.meta.url), text, "scripts/generate-crds.ts") &&
    fresh;
}
if (!fresh) process.exitCode = 1;

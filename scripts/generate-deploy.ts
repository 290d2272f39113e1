/**
 * Writes the kustomize base in deploy/ (everything but deploy/crds/, which generate-crds.ts owns) from
 * src/kube/manifests.ts. `node scripts/generate-deploy.ts` (`--check` exits 1 when a file is stale).
 */
import { readFileSync } from "node:fs";
import { renderDeployFiles } from "../src/kube/deploy-files.ts";
import { writeOrCheck } from "./generated-file.ts";

const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const dir = new URL("../deploy/", import.meta.url);
let fresh = true;
for (const [name, text] of renderDeployFiles(packageJson.version)) {
  fresh = writeOrCheck(new URL(name, dir), text, "scripts/generate-deploy.ts") && fresh;
}
if (!fresh) process.exitCode = 1;

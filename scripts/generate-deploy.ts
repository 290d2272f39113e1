/**
 * Writes the kustomize base in deploy/ (everything but deploy/crds/, which generate-crds.ts owns) from
 * src/kube/manifests.ts. `node scripts/generate-deploy.ts` (`--check` exits 1 when a file is stale).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { renderDeployFiles } from "../src/kube/deploy-files.ts";

const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const dir = new URL("../deploy/", import.meta.url);
let stale = 0;
for (const [name, text] of renderDeployFiles(packageJson.version)) {
  const target = new URL(name, dir);
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {
      // missing counts as stale
    }
    if (current !== text) {
      process.stderr.write(`${target.pathname} is stale; run: node scripts/generate-deploy.ts\n`);
      stale++;
    }
  } else {
    writeFileSync(target, text);
    process.stdout.write(`wrote ${target.pathname}\n`);
  }
}
if (stale > 0) process.exitCode = 1;

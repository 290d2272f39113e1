/**
 * What the generators share: write a generated file, or with `--check` only compare it and report it stale.
 * Returns false when `--check` found the file stale.
 */
import { readFileSync, writeFileSync } from "node:fs";

export function writeOrCheck(target: URL, text: string, generator: string): boolean {
  if (!process.argv.includes("--check")) {
    writeFileSync(target, text);
    process.stdout.write(`wrote ${target.pathname}\n`);
    return true;
  }
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // missing counts as stale
  }
  if (current === text) return true;
  process.stderr.write(`${target.pathname} is stale; run: node ${generator}\n`);
  return false;
}

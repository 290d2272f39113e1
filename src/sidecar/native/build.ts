/**
 * Builds the sidecar's Node-API addon with the system C compiler, straight into `build/`: no node-gyp, no
 * Python. Idempotent and fast: skips when the output is newer than every source. Run by `npm run build`
 * (scripts/setup runs that on every setup).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nativeAddonPath } from "./addon-path.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const output = nativeAddonPath();
const sources = readdirSync(here)
  .filter((name) => name.endsWith(".c"))
  .sort()
  .map((name) => join(here, name));
const inputs = [...sources, fileURLToPath(import.meta.url)];

function isUpToDate(): boolean {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return inputs.every((input) => statSync(input).mtimeMs <= built);
}

if (isUpToDate()) {
  process.stdout.write(`native addon up to date: ${output}\n`);
} else {
  const include = join(root, "node_modules", "node-api-headers", "include");
  if (!existsSync(include)) {
    process.stderr.write(`native addon: ${include} is missing; run: npm ci\n`);
    process.exit(1);
  }
  mkdirSync(dirname(output), { recursive: true });
  const compiler = process.env["CC"] ?? "cc";
  const temporary = `${output}.${process.pid}.tmp`;
  // Node-API symbols are resolved from the node binary at load time, hence no -lnode and undefined symbols allowed.
  const args = [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-shared",
    "-fPIC",
    "-fvisibility=hidden",
  ];
  args.push("-DNAPI_VERSION=8", "-I", include, "-o", temporary, ...sources, "-lpthread");
  try {
    execFileSync(compiler, args, { stdio: "inherit" });
  } catch (error) {
    process.stderr.write(`native addon: ${compiler} failed (install a C compiler: apt-get install gcc)\n`);
    throw error;
  }
  renameSync(temporary, output); // atomic: a running sidecar never sees a half-written file
  process.stdout.write(`native addon built: ${output}\n`);
}

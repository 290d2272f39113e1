/**
 * Builds the native parts with the system C compiler, straight into `build/`: no node-gyp, no Python.
 *   - the sidecar's Node-API addon (the `.c` files here) → `build/osm-sidecar-native.node`;
 *   - the node agent's nft helper (`src/edge/native/nft-batch.c`, libnftables loaded at run time) →
 *     `build/osm-nft-batch`.
 * Idempotent and fast: a target is skipped when its output is newer than every source. Run by
 * `npm run build` (scripts/setup runs that on every setup).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nftBatchPath } from "../../edge/nft-batch.ts";
import { nativeAddonPath } from "./addon-path.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const compiler = process.env["CC"] ?? "cc";

function build(
  name: string,
  output: string,
  sources: readonly string[],
  flags: readonly string[],
  libraries: readonly string[],
): void {
  const inputs = [...sources, fileURLToPath(import.meta.url)];
  if (existsSync(output) && inputs.every((input) => statSync(input).mtimeMs <= statSync(output).mtimeMs)) {
    process.stdout.write(`${name} up to date: ${output}\n`);
    return;
  }
  mkdirSync(dirname(output), { recursive: true });
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    const warnings = ["-Wall", "-Wextra", "-Wno-unused-parameter"];
    const args = ["-O2", ...warnings, ...flags, "-o", temporary, ...sources, ...libraries];
    execFileSync(compiler, args, { stdio: "inherit" });
  } catch (error) {
    process.stderr.write(`${name}: ${compiler} failed (install a C compiler: apt-get install gcc)\n`);
    throw error;
  }
  renameSync(temporary, output); // atomic: a running process never sees a half-written file
  process.stdout.write(`${name} built: ${output}\n`);
}

const include = join(root, "node_modules", "node-api-headers", "include");
if (!existsSync(include)) {
  process.stderr.write(`native addon: ${include} is missing; run: npm ci\n`);
  process.exit(1);
}
const addonSources = readdirSync(here)
  .filter((name) => name.endsWith(".c"))
  .sort()
  .map((name) => join(here, name));
// Node-API symbols are resolved from the node binary at load time, hence no -lnode and undefined symbols allowed.
build(
  "native addon",
  nativeAddonPath(),
  addonSources,
  ["-shared", "-fPIC", "-fvisibility=hidden", "-DNAPI_VERSION=8", "-I", include],
  ["-lpthread"],
);
build("nft helper", nftBatchPath(), [join(root, "src", "edge", "native", "nft-batch.c")], [], ["-ldl"]);

/**
 * Builds the sidecar's bundle, build/bundle/sidecar/main.cjs: its own modules (src/sidecar and what they
 * import from src/) in one plain-JavaScript file, npm packages left to node_modules. A pod runs that file, not
 * the TypeScript sources: Node strips types with a WebAssembly compiler that costs ~17 MB of RSS per process
 * (bench/README.md). CommonJS, not ESM: an ES import of a builtin evaluates every export, and node:fs's
 * `promises` alone loads readline and the REPL's history (~1 MB); `require()` takes only what is used.
 * Run by `npm run build`; bin/osm uses the bundle only while no source file is newer.
 */
import { renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { SIDECAR_BUNDLE } from "./bundle-path.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const output = join(root, SIDECAR_BUNDLE);
const temporary = `${output}.${process.pid}.tmp`;
await build({
  entryPoints: [join(root, "src", "sidecar", "bin.ts")],
  outfile: temporary,
  bundle: true,
  platform: "node",
  format: "cjs",
  // The sources find the addon and packages from import.meta.url (a bundle three folders deep, like them).
  define: { "import.meta.url": "__bundleUrl" },
  banner: { js: 'const __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  target: "node24",
  packages: "external",
  logLevel: "warning",
});
renameSync(temporary, output); // atomic: a starting sidecar never reads a half-written file
process.stdout.write(`sidecar bundle built: ${output}\n`);

/**
 * Bundles the dashboard's page (src/dashboard/app, Preact) with esbuild into build/dashboard/: index.html,
 * app.js, app.css. Run by `npm run build` (scripts/setup), so `osm dashboard` serves files of this checkout
 * and nothing is fetched at run time.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const app = `${root}src/dashboard/app/`;
const out = `${root}build/dashboard/`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: `${app}main.tsx`, "app-style": `${app}style.css` },
  outdir: out,
  entryNames: "[name]",
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  logLevel: "warning",
});
copyFileSync(`${app}index.html`, `${out}index.html`);

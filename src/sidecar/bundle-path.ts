/**
 * Where `npm run build` writes the sidecar's bundle, relative to the repository root (bin/osm spells it
 * too). Three folders deep, as src/sidecar/native/ is: addon-path.ts finds the addon from either.
 */
export const SIDECAR_BUNDLE = "build/bundle/sidecar/main.cjs";

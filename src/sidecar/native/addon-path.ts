import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where `npm run build` writes the addon: `<repo>/build/osm-sidecar-native.node` (git-ignored). Three folders
 * up from this module, in the sources (src/sidecar/native/) and in the sidecar bundle (build/bundle/sidecar/).
 */
export function nativeAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, "..", "..", "..", "build", "osm-sidecar-native.node");
}

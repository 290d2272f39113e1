/** The sidecar bundle's entry (build/bundle/sidecar/main.cjs): `node main.cjs run [options]`. */
import { sidecarMain } from "./main.ts";

void sidecarMain(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

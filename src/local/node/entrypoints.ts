/**
 * Images are never pulled: a container with a `command` runs that command from the host, and a container
 * without one runs the local entrypoint registered for its image. Pure registry; the built-in entries point at
 * scripts in this folder, run by this very Node binary (readable by every uid, unlike anything under /root).
 */
import { fileURLToPath } from "node:url";

/** Image reference without registry `docker.io/`, `library/`, tag or digest: `kennethreitz/httpbin`. */
export function normalizeImage(image: string): string {
  let ref = image.trim();
  const at = ref.indexOf("@");
  if (at >= 0) ref = ref.slice(0, at);
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) ref = ref.slice(0, colon);
  for (const prefix of ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]) {
    if (ref.startsWith(prefix)) ref = ref.slice(prefix.length);
  }
  if (ref.startsWith("library/")) ref = ref.slice("library/".length);
  return ref;
}

/** An image name → the argv its ENTRYPOINT/CMD would run (container `args` replace the CMD part). */
export interface Entrypoint {
  /** Like an image's ENTRYPOINT: always run. */
  readonly entrypoint: readonly string[];
  /** Like an image's CMD: replaced by the container's `args` when given. */
  readonly cmd: readonly string[];
}

export type EntrypointRegistry = ReadonlyMap<string, Entrypoint>;

/** The built-in registry: `kennethreitz/httpbin` (and `mccutchen/go-httpbin`) → our httpbin on port 80. */
export function builtinEntrypoints(nodeBinary: string = process.execPath): EntrypointRegistry {
  const httpbin: Entrypoint = {
    entrypoint: [nodeBinary, fileURLToPath(new URL("./httpbin.ts", import.meta.url))],
    cmd: ["--port", "80"],
  };
  return new Map([
    ["kennethreitz/httpbin", httpbin],
    ["mccutchen/go-httpbin", { entrypoint: httpbin.entrypoint, cmd: ["--port", "8080"] }],
  ]);
}

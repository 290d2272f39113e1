/**
 * Pods run commands from this checkout as non-root users (the sidecar as uid 1500, the control plane as
 * 65532), so they must be able to read it. A clone under /root (mode 700) is not readable by them: then the
 * daemon gives containers a mirror of the runtime files in a world-readable directory, made of hard links
 * (instant, no extra space) or, across file systems, a copy.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { ErrorCode, MeshError } from "../../errors.ts";

/** What a container needs of the checkout: the CLI, its code and dependencies, the addon, the CRDs. */
const RUNTIME_ENTRIES = ["bin", "src", "node_modules", "build", "deploy", "package.json"];
/** The least-privileged uid a pod runs our code as (the sidecar's). */
const PROBE_UID = 1500;

/** True when `uid` can reach and run this checkout's CLI, code and native addon. */
export function installReadableBy(root: string, uid: number = PROBE_UID): boolean {
  // The path goes in as a positional argument, never into the script text.
  const script =
    'test -x "$1/bin/osm" && test -x "$1/node_modules/node/bin/node" && test -r "$1/src/cli/main.ts"';
  const result = spawnSync("/bin/sh", ["-c", script, "sh", root], {
    uid,
    gid: uid,
    cwd: "/",
    timeout: 10_000,
  });
  return result.status === 0;
}

/** Where the mirror of an unreadable checkout goes: beside the state directory, which is root-only. */
export function mirrorDirFor(stateDir: string): string {
  return `${stateDir.replace(/\/+$/, "")}-runtime`;
}

/**
 * The `bin/` directory containers should find `osm` in: the checkout's own when pods can read it, else a
 * freshly made readable mirror's. Throws with a clear message when neither works.
 */
export function readableBinDir(root: string, stateDir: string): string {
  if (installReadableBy(root)) return join(root, "bin");
  const mirror = mirrorDirFor(stateDir);
  rmSync(mirror, { recursive: true, force: true });
  mkdirSync(mirror, { recursive: true, mode: 0o755 });
  for (const entry of RUNTIME_ENTRIES) {
    const source = join(root, entry);
    if (!existsSync(source)) continue;
    const linked = spawnSync("cp", ["-al", source, mirror], { stdio: "ignore" });
    if (linked.status !== 0) {
      const copied = spawnSync("cp", ["-a", source, mirror], { encoding: "utf8" });
      if (copied.status !== 0) {
        throw new MeshError(
          ErrorCode.Internal,
          `could not mirror ${source} to ${mirror}: ${copied.stderr.trim()}`,
        );
      }
    }
  }
  if (!installReadableBy(mirror)) {
    throw new MeshError(
      ErrorCode.Unavailable,
      `pods cannot read this checkout (${root}) nor its mirror (${mirror}) as uid ${PROBE_UID}`,
      {
        hint: `clone osm-ts under a directory every user can enter (e.g. /opt), or make ${dirname(mirror)} readable`,
      },
    );
  }
  return join(mirror, "bin");
}

/** Removes the mirror `readableBinDir` may have made (on `osm mesh down --purge`). */
export function removeMirror(stateDir: string): void {
  rmSync(mirrorDirFor(stateDir), { recursive: true, force: true });
}

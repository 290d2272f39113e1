/**
 * Can uid 1500 run this install? The sidecar runs as uid 1500 (runAsUser in the PodSpec), so its code,
 * node_modules, the addon and the Node binary must all be readable by that uid; a clone under /root is not
 * (mode 700). Whoever starts the sidecar as root (the node agent, the tests) asks here first, so the failure
 * is one clear sentence instead of a module-not-found stack trace from inside the pod.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nativeAddonPath } from "../../src/sidecar/native/addon-path.ts";

/** The repository root this module belongs to. */
export function installRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

/** The project's own Node.js 24 (the `node` npm package), as bin/osm uses. */
export function projectNode(root: string = installRoot()): string {
  return join(root, "node_modules", "node", "bin", "node");
}

export type InstallAccess = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/**
 * Runs the sidecar's own entry point (`bin/osm sidecar run --help`: the bundle, or the sources when they are
 * newer, either way every module it imports) and
 * loads the native addon, both as `uid`/`gid`. Must be called as root (it switches user).
 */
export function detectInstallAccess(uid: number, gid: number, root: string = installRoot()): InstallAccess {
  const node = projectNode(root);
  const addon = nativeAddonPath().replace(installRoot(), root);
  const checks: Array<{ what: string; argv: string[] }> = [
    {
      what: "the sidecar's code and node_modules",
      argv: [join(root, "bin/osm"), "sidecar", "run", "--help"],
    },
    {
      what: "the native addon",
      argv: [node, "-e", `require(${JSON.stringify(addon)})`],
    },
  ];
  for (const check of checks) {
    const result = spawnSync(check.argv[0]!, check.argv.slice(1), {
      uid,
      gid,
      cwd: "/",
      encoding: "utf8",
      timeout: 20_000,
    });
    if (result.status !== 0) {
      const detail = (result.error?.message ?? result.stderr ?? "").trim().split("\n").slice(0, 3).join(" ");
      return {
        ok: false,
        problem:
          `uid ${uid} cannot run ${check.what} from ${root} (${detail || `exit ${result.status}`}); ` +
          "every directory from / down to the install must be searchable (x) and its files readable by that uid " +
          "(a clone under /root is not)",
      };
    }
  }
  return { ok: true };
}

/**
 * What the node needs from the host, checked before anything is created, so `osm mesh up` fails with one
 * clear message (not root, `ip netns` missing...) instead of half a setup.
 */

import { type CommandRunner, createProcessRunner } from "../../edge/command-runner.ts";
import { ErrorCode, MeshError } from "../../errors.ts";

/** Checks what the runtime needs on this host: root, `ip netns`, nsenter, setpriv, unshare and mount. Throws MeshError. */
export async function checkHostPrerequisites(
  runner: CommandRunner = createProcessRunner(),
  uid: number | undefined = process.getuid?.(),
): Promise<void> {
  if (uid !== 0) {
    throw new MeshError(
      ErrorCode.NotRoot,
      "the local node agent must run as root (it creates network namespaces)",
      {
        hint: "run with sudo",
      },
    );
  }
  for (const [argv, pkg] of [
    [["ip", "netns", "list"], "iproute2"],
    [["nsenter", "--version"], "util-linux"],
    [["setpriv", "--version"], "util-linux"],
    // Each container's private mount namespace (kubelet-managed /etc/hosts, service account files).
    [["unshare", "--version"], "util-linux"],
    [["mount", "--version"], "mount"],
  ] as const) {
    const r = await runner.run(argv);
    if (r.error !== undefined) {
      throw new MeshError(ErrorCode.MissingTool, `\`${argv.join(" ")}\` is not available: ${r.error}`, {
        hint: `install ${pkg}`,
      });
    }
    if (r.code !== 0) {
      throw new MeshError(ErrorCode.MissingTool, `\`${argv.join(" ")}\` failed: ${r.stderr.trim()}`, {
        hint: `install ${pkg}`,
      });
    }
  }
}

/**
 * Where the Go-built control-plane binaries are: `scripts/kube-binaries` owns the cache layout and the pinned
 * versions, so this asks it (`--print`) rather than knowing them twice.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ErrorCode, MeshError } from "../../errors.ts";

const SCRIPT = fileURLToPath(new URL("../../../scripts/kube-binaries", import.meta.url));

/** The folder holding kube-apiserver, kube-controller-manager, kube-scheduler and etcd, or a MeshError. */
export function findKubeBinaries(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OSM_KUBE_BIN) return env.OSM_KUBE_BIN;
  const result = spawnSync("bash", [SCRIPT, "--print"], { encoding: "utf8", env });
  const dir = result.stdout.trim();
  if (result.status === 0 && dir !== "") return dir;
  throw new MeshError(
    ErrorCode.MissingTool,
    "the real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd) is not built on this machine",
    {
      hint: "build it with `bash scripts/kube-binaries` (about 10 minutes the first time, cached afterwards), or point OSM_KUBE_BIN at a folder that has them",
    },
  );
}

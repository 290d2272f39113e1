/**
 * One daemon per bridge: the node agent removes every netns with its prefix that its own IPAM does not know, so
 * two daemons (two state directories) on one bridge would tear down each other's pods. A claim file in /run
 * (tmpfs: gone after a reboot, like the bridge) names the state directory and pid that own a bridge.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ErrorCode, MeshError } from "../../errors.ts";

export const CLAIM_DIR = "/run/osm-ts";

interface Claim {
  readonly stateDir: string;
  readonly pid: number;
}

function claimPath(bridge: string, dir: string): string {
  return join(dir, `bridge-${bridge}.json`);
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The live owner of `bridge` other than `stateDir`, if any. */
export function otherOwner(bridge: string, stateDir: string, dir = CLAIM_DIR): Claim | undefined {
  try {
    const claim = JSON.parse(readFileSync(claimPath(bridge, dir), "utf8")) as Claim;
    if (resolve(claim.stateDir) !== resolve(stateDir) && running(claim.pid)) return claim;
  } catch {
    // No claim, or an unreadable one: nobody owns the bridge.
  }
  return undefined;
}

/** Claims `bridge` for this process; throws Conflict when a live daemon of another state directory holds it. */
export function claimBridge(bridge: string, stateDir: string, pid = process.pid, dir = CLAIM_DIR): void {
  const owner = otherOwner(bridge, stateDir, dir);
  if (owner) {
    throw new MeshError(
      ErrorCode.Conflict,
      `bridge ${bridge} is in use by the osm-local daemon of ${owner.stateDir} (pid ${owner.pid})`,
      {
        hint: `stop it with \`osm mesh down --state-dir ${owner.stateDir}\`, or use another --bridge and --name-prefix`,
      },
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(claimPath(bridge, dir), JSON.stringify({ stateDir: resolve(stateDir), pid }));
}

/** Drops the claim if this state directory holds it. */
export function releaseBridge(bridge: string, stateDir: string, dir = CLAIM_DIR): void {
  try {
    const claim = JSON.parse(readFileSync(claimPath(bridge, dir), "utf8")) as Claim;
    if (resolve(claim.stateDir) === resolve(stateDir)) rmSync(claimPath(bridge, dir), { force: true });
  } catch {
    // Nothing claimed.
  }
}

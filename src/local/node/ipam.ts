/**
 * A small persisted IPAM: slot N of the network plan belongs to one owner (a pod uid, or `external:<name>`).
 * The file is rewritten whole (write temp + fsync + rename), so a crash leaves the old or the new table, never
 * a torn one. One writer: the node agent of one state directory.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { ErrorCode, MeshError } from "../../errors.ts";

export interface SlotOwner {
  /** Pod uid, or `external:<name>` for an external host's bridge leg. */
  readonly owner: string;
  /** `namespace/name` of a pod, or the external host's name; for humans and orphan reports. */
  readonly label: string;
}

export interface Ipam {
  /** The slot already held by `owner`, or a free one now recorded for it. Throws Unavailable when full. */
  allocate(owner: SlotOwner): number;
  /** Frees every slot held by `owner` (no-op when none). */
  release(owner: string): void;
  slotOf(owner: string): number | undefined;
  entries(): ReadonlyMap<number, SlotOwner>;
}

/** Opens (or creates) the table at `path` for slots `first..last`. */
export function openIpam(path: string, first: number, last: number): Ipam {
  const slots = new Map<number, SlotOwner>();
  try {
    const data = JSON.parse(readFileSync(path, "utf8")) as { slots?: Record<string, SlotOwner> };
    for (const [k, v] of Object.entries(data.slots ?? {})) slots.set(Number(k), v);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new MeshError(
        ErrorCode.Internal,
        `IPAM table ${path} is unreadable: ${(error as Error).message}`,
        {
          cause: error,
          hint: "run `osm mesh down --purge` to reset the node state",
        },
      );
    }
  }
  const save = () => {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify({ version: 1, slots: Object.fromEntries(slots) }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  };
  // Lowest free slot after the last handed out, wrapping: a freed address is not reused at once, so a stale
  // connection or neighbour entry of a deleted pod does not reach its successor.
  let cursor = first;
  const slotOf = (owner: string) => {
    for (const [slot, o] of slots) if (o.owner === owner) return slot;
    return undefined;
  };
  return {
    allocate(owner) {
      const held = slotOf(owner.owner);
      if (held !== undefined) return held;
      const span = last - first + 1;
      for (let i = 0; i < span; i++) {
        const slot = first + ((cursor - first + i) % span);
        if (!slots.has(slot)) {
          slots.set(slot, owner);
          cursor = slot + 1 > last ? first : slot + 1;
          save();
          return slot;
        }
      }
      throw new MeshError(ErrorCode.Unavailable, `no free pod address: all ${span} slots are in use`, {
        hint: "delete pods you no longer need",
      });
    },
    release(owner) {
      let changed = false;
      for (const [slot, o] of slots) {
        if (o.owner === owner) {
          slots.delete(slot);
          changed = true;
        }
      }
      if (changed) save();
    },
    slotOf,
    entries: () => slots,
  };
}

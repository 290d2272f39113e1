/**
 * The embedded API server's store: every object in memory, every acknowledged write in a write-ahead log
 * (one JSON line per write, fdatasync before the call returns), compacted into a snapshot written as
 * temp file + fsync + rename. A crash (kill -9) at any point loses nothing that `put`/`remove` returned for:
 * on open, the snapshot is read, then every WAL record newer than it is replayed; a torn last line (a write
 * cut short by the crash, never acknowledged) is dropped and truncated away.
 *
 * One writer: the state directory holds a lock file with the owner's pid; a live owner refuses a second one.
 */
import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { ErrorCode, MeshError } from "../../errors.ts";

/** A stored Kubernetes object (JSON); metadata.resourceVersion is set by the store. */
export type KubeObject = Record<string, unknown> & {
  metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string };
};

export interface StoreEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** `group/resource`, e.g. `apps/deployments` or `/pods` for the core group. */
  readonly groupResource: string;
  readonly namespace: string;
  readonly object: KubeObject;
  /** The object before this write (MODIFIED and DELETED). */
  readonly previous: KubeObject | undefined;
  readonly resourceVersion: number;
}

interface WalRecord {
  rv: number;
  op: "put" | "del";
  gr: string;
  ns: string;
  name: string;
  o?: KubeObject;
}

interface Snapshot {
  rv: number;
  objects: { gr: string; ns: string; name: string; o: KubeObject }[];
}

export interface StoreOptions {
  readonly dir: string;
  readonly logger: Logger;
  /** Compact the WAL into a snapshot after this many records. */
  readonly compactEvery?: number;
}

const SNAPSHOT = "snapshot.json";
const WAL = "wal.jsonl";
const LOCK = "store.lock";

/** True while `pid` runs; a zombie (killed, not yet reaped by whoever adopted it) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export class Store {
  readonly dir: string;
  private readonly logger: Logger;
  private readonly compactEvery: number;
  /** groupResource → "ns/name" → object. */
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private rv = 0;
  private walFd: number;
  private walRecords = 0;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private closed = false;

  private constructor(options: StoreOptions) {
    this.dir = options.dir;
    this.logger = options.logger;
    this.compactEvery = options.compactEvery ?? 5000;
    // Secrets live here: the directory and its files are the owner's only.
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.takeLock();
    this.load();
    this.walFd = openSync(join(this.dir, WAL), "a", 0o600);
  }

  /** Opens (or creates) the store in `dir`; throws OSM_ERR_CONFLICT if another live process holds it. */
  static open(options: StoreOptions): Store {
    return new Store(options);
  }

  private takeLock(): void {
    const lockPath = join(this.dir, LOCK);
    if (existsSync(lockPath)) {
      const pid = Number.parseInt(readFileSync(lockPath, "utf8"), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new MeshError(ErrorCode.Conflict, `state directory ${this.dir} is in use by process ${pid}`, {
          hint: "stop that process, or use another state directory",
        });
      }
    }
    writeFileSync(lockPath, String(process.pid));
  }

  private load(): void {
    const snapPath = join(this.dir, SNAPSHOT);
    if (existsSync(snapPath)) {
      const snap = JSON.parse(readFileSync(snapPath, "utf8")) as Snapshot;
      this.rv = snap.rv;
      for (const entry of snap.objects) this.bucket(entry.gr).set(`${entry.ns}/${entry.name}`, entry.o);
    }
    const walPath = join(this.dir, WAL);
    if (!existsSync(walPath)) return;
    const text = readFileSync(walPath, "utf8");
    let offset = 0;
    let goodEnd = 0;
    while (offset < text.length) {
      const newline = text.indexOf("\n", offset);
      if (newline < 0) break; // torn tail: never acknowledged
      const line = text.slice(offset, newline);
      let record: WalRecord;
      try {
        record = JSON.parse(line) as WalRecord;
      } catch {
        break;
      }
      offset = newline + 1;
      goodEnd = Buffer.byteLength(text.slice(0, offset));
      this.walRecords++;
      if (record.rv <= this.rv) continue;
      this.rv = record.rv;
      const key = `${record.ns}/${record.name}`;
      if (record.op === "put" && record.o) this.bucket(record.gr).set(key, record.o);
      else this.bucket(record.gr).delete(key);
    }
    if (goodEnd < Buffer.byteLength(text)) {
      this.logger.warn({ walPath, kept: goodEnd }, "dropping a torn write-ahead log tail");
      const fd = openSync(walPath, "r+");
      ftruncateSync(fd, goodEnd);
      fsyncSync(fd);
      closeSync(fd);
    }
  }

  private bucket(gr: string): Map<string, KubeObject> {
    let map = this.data.get(gr);
    if (!map) {
      map = new Map();
      this.data.set(gr, map);
    }
    return map;
  }

  /** The resourceVersion of the latest write. */
  get resourceVersion(): number {
    return this.rv;
  }

  get(gr: string, namespace: string, name: string): KubeObject | undefined {
    return this.data.get(gr)?.get(`${namespace}/${name}`);
  }

  /** Objects of one kind, in one namespace or (namespace undefined) all; sorted by namespace then name. */
  list(gr: string, namespace?: string): KubeObject[] {
    const map = this.data.get(gr);
    if (!map) return [];
    const out: KubeObject[] = [];
    for (const [key, value] of map) {
      if (namespace === undefined || key.startsWith(`${namespace}/`)) out.push(value);
    }
    return out.sort((a, b) => {
      const ka = `${a.metadata.namespace ?? ""}/${a.metadata.name}`;
      const kb = `${b.metadata.namespace ?? ""}/${b.metadata.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }

  groupResources(): string[] {
    return [...this.data.keys()];
  }

  /** Stores `object` durably (fdatasync) with a new resourceVersion, and returns the stored copy. */
  put(gr: string, namespace: string, object: KubeObject): KubeObject {
    const name = object.metadata.name;
    const previous = this.get(gr, namespace, name);
    const rv = this.rv + 1;
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(rv);
    this.append({ rv, op: "put", gr, ns: namespace, name, o: stored });
    this.rv = rv;
    this.bucket(gr).set(`${namespace}/${name}`, stored);
    this.maybeCompact();
    this.emit({
      type: previous ? "MODIFIED" : "ADDED",
      groupResource: gr,
      namespace,
      object: stored,
      previous,
      resourceVersion: rv,
    });
    return stored;
  }

  /** Removes an object durably; returns the removed object with the deletion's resourceVersion. */
  remove(gr: string, namespace: string, name: string): KubeObject | undefined {
    const previous = this.get(gr, namespace, name);
    if (!previous) return undefined;
    const rv = this.rv + 1;
    this.append({ rv, op: "del", gr, ns: namespace, name });
    this.rv = rv;
    this.bucket(gr).delete(`${namespace}/${name}`);
    this.maybeCompact();
    const gone = structuredClone(previous);
    gone.metadata.resourceVersion = String(rv);
    this.emit({ type: "DELETED", groupResource: gr, namespace, object: gone, previous, resourceVersion: rv });
    return gone;
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: StoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error }, "store listener failed");
      }
    }
  }

  private append(record: WalRecord): void {
    if (this.closed) throw new MeshError(ErrorCode.Unavailable, "store is closed");
    writeSync(this.walFd, `${JSON.stringify(record)}\n`);
    fdatasyncSync(this.walFd);
    this.walRecords++;
  }

  /** Compacts once enough records piled up; called after a write is applied in memory, never before. */
  private maybeCompact(): void {
    if (this.walRecords >= this.compactEvery) this.compact();
  }

  /** Writes a snapshot (temp + fsync + rename + dir fsync), then empties the WAL. */
  compact(): void {
    const objects: Snapshot["objects"] = [];
    for (const [gr, map] of this.data) {
      for (const [key, o] of map) {
        const slash = key.indexOf("/");
        objects.push({ gr, ns: key.slice(0, slash), name: key.slice(slash + 1), o });
      }
    }
    const tmp = join(this.dir, `${SNAPSHOT}.tmp`);
    const fd = openSync(tmp, "w", 0o600);
    writeSync(fd, JSON.stringify({ rv: this.rv, objects } satisfies Snapshot));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(this.dir, SNAPSHOT));
    const dirFd = openSync(this.dir, "r");
    fsyncSync(dirFd);
    closeSync(dirFd);
    // Records at or below the snapshot's rv are skipped on replay, so a crash before this truncate is harmless.
    ftruncateSync(this.walFd, 0);
    fsyncSync(this.walFd);
    this.walRecords = 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.walFd);
    rmSync(join(this.dir, LOCK), { force: true });
    this.listeners.clear();
  }
}

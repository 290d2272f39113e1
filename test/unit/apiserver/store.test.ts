import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { type KubeObject, Store } from "../../../src/local/store/store.ts";

const logger = pino({ level: "silent" });
const obj = (name: string, data = "x"): KubeObject => ({
  metadata: { name, namespace: "ns" },
  data: { v: data },
});

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "osmt-api-store-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the embedded store", () => {
  it("replays the write-ahead log on reopen, with the same resourceVersions", () =>
    withDir((dir) => {
      const s = Store.open({ dir, logger });
      s.put("/configmaps", "ns", obj("a"));
      s.put("/configmaps", "ns", obj("b"));
      s.put("/configmaps", "ns", obj("a", "y"));
      s.remove("/configmaps", "ns", "b");
      s.close();
      const r = Store.open({ dir, logger });
      assert.deepEqual(
        r
          .list("/configmaps")
          .map((o) => [o.metadata.name, o.metadata.resourceVersion, (o.data as { v: string }).v]),
        [["a", "3", "y"]],
      );
      assert.equal(r.resourceVersion, 4);
      r.close();
    }));

  it("drops a torn last record (a write cut short by a crash) and keeps everything before it", () =>
    withDir((dir) => {
      const s = Store.open({ dir, logger });
      s.put("/configmaps", "ns", obj("a"));
      s.close();
      appendFileSync(
        join(dir, "wal.jsonl"),
        '{"rv":2,"op":"put","gr":"/configmaps","ns":"ns","name":"b","o":{"meta',
      );
      const r = Store.open({ dir, logger });
      assert.deepEqual(
        r.list("/configmaps").map((o) => o.metadata.name),
        ["a"],
      );
      r.put("/configmaps", "ns", obj("c"));
      r.close();
      assert.ok(readFileSync(join(dir, "wal.jsonl"), "utf8").endsWith("\n"));
      const again = Store.open({ dir, logger });
      assert.deepEqual(
        again.list("/configmaps").map((o) => o.metadata.name),
        ["a", "c"],
      );
      again.close();
    }));

  it("compacts into a snapshot and still reopens to the same state", () =>
    withDir((dir) => {
      const s = Store.open({ dir, logger, compactEvery: 3 });
      for (let i = 0; i < 10; i++) s.put("/configmaps", "ns", obj(`o${i}`));
      s.remove("/configmaps", "ns", "o0");
      s.close();
      assert.ok(readFileSync(join(dir, "snapshot.json"), "utf8").includes('"o5"'));
      const r = Store.open({ dir, logger });
      assert.equal(r.list("/configmaps").length, 9);
      assert.equal(r.resourceVersion, 11);
      r.close();
    }));

  it("refuses a second writer while the first one lives, and takes over a dead owner's lock", () =>
    withDir((dir) => {
      writeFileSync(join(dir, "store.lock"), "1");
      assert.throws(() => Store.open({ dir, logger }), /in use by process 1/);
      writeFileSync(join(dir, "store.lock"), "999999999");
      const s = Store.open({ dir, logger });
      s.close();
    }));

  it("takes over the lock of an owner that was killed but not yet reaped (a zombie)", async () => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    try {
      await new Promise((r) => child.once("spawn", r));
      const pid = child.pid as number;
      // libuv reaps children on the event loop: blocking it (execFileSync) keeps the killed child a zombie.
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "); i++) {
        execFileSync("sleep", ["0.01"]);
      }
      assert.match(readFileSync(`/proc/${pid}/stat`, "utf8"), /\) Z /);
      withDir((dir) => {
        writeFileSync(join(dir, "store.lock"), String(pid));
        Store.open({ dir, logger }).close();
      });
    } finally {
      child.kill("SIGKILL");
    }
  });
});

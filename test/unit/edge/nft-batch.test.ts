import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RecordingRunner } from "../../../src/edge/command-runner.ts";
import { BIG_BATCH_BYTES, NftBatch, nftBatchRunner } from "../../../src/edge/nft-batch.ts";

/** A batch helper stand-in that records what it is asked. */
function fakeBatch(available: boolean) {
  const calls: { netns: string; text: string; terse: boolean }[] = [];
  return {
    calls,
    available,
    run: (netns: string, text: string, options: { terse?: boolean } = {}) => {
      calls.push({ netns, text, terse: options.terse ?? false });
      return Promise.resolve({ code: 0, stdout: "listed", stderr: "" });
    },
  };
}

test("the nft helper takes `nft -f -` and `nft [-t] list …`; every other command runs as a process", async () => {
  const batch = fakeBatch(true);
  const fallback = new RecordingRunner(() => ({ code: 0, stdout: "", stderr: "" }));
  const runner = nftBatchRunner(batch, "/proc/42/ns/net", fallback);
  await runner.run(["nft", "-f", "-"], { stdin: "add element inet osm_proxy s { 192.0.2.1 }\n" });
  assert.equal((await runner.run(["nft", "-t", "list", "table", "inet", "osm_proxy"])).stdout, "listed");
  await runner.run(["nft", "list", "table", "inet", "osm_proxy"]);
  await runner.run(["nft", "-j", "-f", "/tmp/table.json"]);
  await runner.run(["iptables-save", "-t", "nat"]);
  assert.deepEqual(batch.calls, [
    { netns: "/proc/42/ns/net", text: "add element inet osm_proxy s { 192.0.2.1 }\n", terse: false },
    { netns: "/proc/42/ns/net", text: "list table inet osm_proxy", terse: true },
    { netns: "/proc/42/ns/net", text: "list table inet osm_proxy", terse: false },
  ]);
  assert.deepEqual(
    fallback.calls.map((c) => c.argv.join(" ")),
    ["nft -j -f /tmp/table.json", "iptables-save -t nat"],
  );
});

test("without the helper built, nft runs as a process", async () => {
  const batch = fakeBatch(false);
  const fallback = new RecordingRunner(() => ({ code: 0, stdout: "", stderr: "" }));
  await nftBatchRunner(batch, "/proc/42/ns/net", fallback).run(["nft", "-f", "-"], { stdin: "x" });
  assert.deepEqual(batch.calls, []);
  assert.equal(fallback.calls.length, 1);
  assert.equal(new NftBatch("/nonexistent/osm-nft-batch").available, false);
});

test("a helper that cannot load libnftables (exit 3) answers with a failure, then nft runs as processes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "osmt-nftb-"));
  try {
    const binary = join(dir, "osm-nft-batch");
    writeFileSync(binary, "#!/bin/sh\nexit 3\n", {
      mode: 0o755,
    });
    const batch = new NftBatch(binary);
    assert.equal(batch.available, true);
    const r = await batch.run("/proc/1/ns/net", "list tables");
    assert.equal(r.code, 127);
    assert.match(r.stderr, /osm-nft-batch exited \(3\)/);
    assert.equal(batch.available, false);
    batch.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a helper that cannot start answers every request with a failure instead of hanging", async () => {
  const batch = new NftBatch("/nonexistent/osm-nft-batch");
  const r = await batch.run("/proc/1/ns/net", "list tables");
  assert.equal(r.code, 127);
  assert.match(r.stderr, /osm-nft-batch/);
  batch.close();
});

test("big netlink batches go to one helper process, one at a time; small requests spread over all", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "osmt-nftb-"));
  try {
    // A stand-in that reads each request whole and answers with its own PID.
    const binary = join(dir, "osm-nft-batch");
    writeFileSync(
      binary,
      [
        "#!/bin/bash",
        "while IFS= read -r line; do",
        '  dd bs=65536 iflag=fullblock,count_bytes count="$(cut -f3 <<<"$line")" of=/dev/null status=none',
        '  printf "0 %d 0\\n%s" "$(printf %s $$ | wc -c)" "$$"',
        "done",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    const batch = new NftBatch(binary, 4);
    t.after(() => batch.close());
    const pids = async (sizes: number[]) =>
      new Set(
        (await Promise.all(sizes.map((n) => batch.send("/proc/1/ns/net", new Uint8Array(n))))).map((r) => {
          assert.equal(r.code, 0, r.stderr);
          return r.stdout;
        }),
      );
    assert.equal((await pids([BIG_BATCH_BYTES, BIG_BATCH_BYTES + 1, 200_000, BIG_BATCH_BYTES])).size, 1);
    assert.ok((await pids([100, 100, 100, 100])).size > 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

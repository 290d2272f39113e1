import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  installReadableBy,
  mirrorDirFor,
  readableBinDir,
  removeMirror,
} from "../../../src/local/daemon/readable-install.ts";

const root = process.getuid?.() === 0;
const base = mkdtempSync(join(tmpdir(), "osmt-ri-"));
chmodSync(base, 0o755);
after(() => rmSync(base, { recursive: true, force: true }));

/** A checkout with the files a pod needs, inside `parent`. */
function fakeCheckout(parent: string): string {
  const checkout = join(parent, "osm-ts");
  for (const dir of ["bin", "node_modules/node/bin", "src/cli", "build"])
    mkdirSync(join(checkout, dir), { recursive: true });
  writeFileSync(join(checkout, "bin/osm"), "#!/bin/sh\n", { mode: 0o755 });
  writeFileSync(join(checkout, "node_modules/node/bin/node"), "#!/bin/sh\n", { mode: 0o755 });
  writeFileSync(join(checkout, "src/cli/main.ts"), "export {};\n", { mode: 0o644 });
  writeFileSync(join(checkout, "package.json"), "{}\n", { mode: 0o644 });
  return checkout;
}

test("a checkout every user can enter is used as it is", {
  skip: !root && "needs root (switches to uid 1500)",
}, () => {
  const open = join(base, "open");
  mkdirSync(open, { mode: 0o755 });
  const checkout = fakeCheckout(open);
  assert.equal(installReadableBy(checkout), true);
  const state = join(base, "state-open");
  assert.equal(readableBinDir(checkout, state), join(checkout, "bin"));
  assert.equal(existsSync(mirrorDirFor(state)), false);
});

test("a checkout under a root-only directory gets a readable mirror, removed on purge", {
  skip: !root && "needs root (switches to uid 1500)",
}, () => {
  const closed = join(base, "closed");
  mkdirSync(closed, { mode: 0o700 });
  chmodSync(closed, 0o700);
  const checkout = fakeCheckout(closed);
  assert.equal(installReadableBy(checkout), false);
  const state = join(base, "state-closed");
  const bin = readableBinDir(checkout, state);
  assert.equal(bin, join(mirrorDirFor(state), "bin"));
  assert.equal(installReadableBy(mirrorDirFor(state)), true);
  // Hard links (same file system): the mirror's files are the checkout's own.
  assert.equal(statSync(join(bin, "osm")).ino, statSync(join(checkout, "bin/osm")).ino);
  removeMirror(state);
  assert.equal(existsSync(mirrorDirFor(state)), false);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { StaleAnnotator } from "../../../src/controller/stale-annotator.ts";

const logger = pino({ level: "silent" });

test("nothing is patched when the pod already carries the desired value", async () => {
  const calls: unknown[] = [];
  const annotator = new StaleAnnotator(async (...args) => {
    calls.push(args);
  }, logger);
  annotator.reconcile("ns", "p", "+203.0.113.10/32", "+203.0.113.10/32");
  annotator.reconcile("ns", "p", undefined, undefined);
  await annotator.idle();
  assert.deepEqual(calls, []);
});

test("one patch per pod is in flight at a time; others are skipped until it ends", async () => {
  const calls: [string, string, string | undefined][] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const results: string[] = [];
  const annotator = new StaleAnnotator(
    async (ns, name, value) => {
      calls.push([ns, name, value]);
      await gate;
    },
    logger,
    (r) => results.push(r),
  );
  annotator.reconcile("ns", "p", undefined, "+a");
  annotator.reconcile("ns", "p", undefined, "+a");
  annotator.reconcile("ns", "q", "+b", undefined);
  release();
  await annotator.idle();
  assert.deepEqual(calls, [
    ["ns", "p", "+a"],
    ["ns", "q", undefined],
  ]);
  assert.deepEqual(results, ["ok", "ok"]);
});

test("a pod that is gone counts as gone and another failure as an error, and a later reconcile retries", async () => {
  const results: string[] = [];
  let attempt = 0;
  const annotator = new StaleAnnotator(
    async (_ns, name) => {
      attempt += 1;
      if (name === "gone") throw Object.assign(new Error("not found"), { code: 404 });
      if (attempt < 3) throw Object.assign(new Error("conflict"), { code: 409 });
    },
    logger,
    (r) => results.push(r),
  );
  annotator.reconcile("ns", "gone", undefined, "+a");
  await annotator.idle();
  annotator.reconcile("ns", "p", undefined, "+a");
  await annotator.idle();
  annotator.reconcile("ns", "p", undefined, "+a");
  await annotator.idle();
  assert.deepEqual(results, ["gone", "error", "ok"]);
});

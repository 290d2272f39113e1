import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createJsonLog, MAX_PENDING_BYTES } from "../../../src/sidecar/log.ts";

const dir = mkdtempSync(join(tmpdir(), "osmt-sidecar-log-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function logFile(name: string): { fd: number; lines: () => Array<Record<string, unknown>> } {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  after(() => closeSync(fd));
  return {
    fd,
    lines: () =>
      readFileSync(path, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

test("lines are pino-shaped JSON: level number, time, base fields, the call's fields, msg; below the level nothing", async () => {
  const out = logFile("shape.log");
  const log = createJsonLog({
    level: "info",
    base: { component: "osm-sidecar" },
    fd: out.fd,
    clock: () => new Date("2026-01-02T03:04:05.000Z"),
  });
  log.debug({ hidden: true }, "not shown");
  log.info({ direction: "outbound", bytesUp: 64 }, "connection");
  const error = Object.assign(new Error("boom"), { code: "EADDRINUSE" });
  log.fatal({ err: error }, 'a "quoted" message');
  await log.flush(5000);
  const [first, second, ...rest] = out.lines();
  assert.deepEqual(rest, []);
  assert.deepEqual(first, {
    level: 30,
    time: "2026-01-02T03:04:05.000Z",
    component: "osm-sidecar",
    direction: "outbound",
    bytesUp: 64,
    msg: "connection",
  });
  assert.equal(second?.["level"], 60);
  assert.equal(second?.["msg"], 'a "quoted" message');
  const err = second?.["err"] as Record<string, unknown>;
  assert.equal(err["type"], "Error");
  assert.equal(err["message"], "boom");
  assert.equal(err["code"], "EADDRINUSE");
  assert.match(String(err["stack"]), /boom/);
});

test("the access log's connection lines are written at any level, as Envoy's; --access-log off writes none", async () => {
  const out = logFile("access.log");
  const log = createJsonLog({ level: "error", base: {}, fd: out.fd });
  log.info({ hidden: true }, "below the level");
  log.connection({ direction: "outbound", decision: "refuse" });
  await log.flush(5000);
  assert.deepEqual(
    out.lines().map(({ time: _time, ...line }) => line),
    [{ level: 30, direction: "outbound", decision: "refuse", msg: "connection" }],
  );
  const off = logFile("access-off.log");
  const quiet = createJsonLog({ level: "info", accessLog: false, base: {}, fd: off.fd });
  quiet.connection({ direction: "outbound" });
  quiet.info({}, "other lines still");
  await quiet.flush(5000);
  assert.deepEqual(
    off.lines().map((line) => line["msg"]),
    ["other lines still"],
  );
});

test("the log is bounded: past MAX_PENDING_BYTES waiting, lines are dropped and a line says how many", async () => {
  const out = logFile("bounded.log");
  const log = createJsonLog({ level: "info", base: {}, fd: out.fd });
  const padding = "x".repeat(1000);
  const total = Math.ceil((MAX_PENDING_BYTES * 1.5) / 1000);
  for (let i = 0; i < total; i++) log.info({ i, padding }, "line"); // all in one tick: nothing written yet
  await log.flush(10_000);
  const lines = out.lines();
  const written = lines.filter((line) => line["msg"] === "line");
  const dropped = lines.find((line) => line["msg"] === "log lines dropped (stdout too slow)");
  assert.ok(written.length < total && written.length > total / 2, `${written.length} of ${total}`);
  assert.equal(dropped?.["dropped"], total - written.length);
  assert.equal(dropped?.["level"], 40);
});

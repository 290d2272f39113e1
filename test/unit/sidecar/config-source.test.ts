/** The watch API client against a real HTTP server on loopback: long-poll, last good config, backoff. */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { buildWatchUrl, watchControlPlane } from "../../../src/sidecar/config-source.ts";
import { ConfigStore } from "../../../src/sidecar/config-store.ts";
import { createSidecarMetrics } from "../../../src/sidecar/metrics.ts";

const logger = pino({ level: "silent" });

function doc(version: number, enableEgress: boolean) {
  return { apiVersion: "osm.sidecar/v1", version, enableEgress };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("the watch URL carries the pod, the version in force and the long-poll timeout", () => {
  const url = buildWatchUrl("http://controller:15128", "demo/curl-1", 7, 30);
  assert.equal(
    url.toString(),
    "http://controller:15128/sidecar/v1/config?pod=demo%2Fcurl-1&sinceVersion=7&timeoutSeconds=30",
  );
  assert.equal(buildWatchUrl("http://c", "a/b", undefined, 5).searchParams.has("sinceVersion"), false);
});

test("the client applies each newer config, keeps the last good one through errors, and backs off", async () => {
  // Scripted controller: answers in order, then holds the long-poll until the test ends.
  const requests: Array<{ since: string | null; auth: string | undefined }> = [];
  const script: Array<(res: ServerResponse) => void> = [
    (res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc(1, true))),
    (res) => res.writeHead(204).end(),
    (res) => res.writeHead(500).end(),
    (res) => res.writeHead(200).end(JSON.stringify({ ...doc(2, false), enableEgress: "no" })),
    (res) => res.writeHead(200).end("not json"),
    (res) => res.writeHead(200).end(JSON.stringify(doc(3, false))),
  ];
  const held: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({
      since: new URL(req.url ?? "/", "http://x").searchParams.get("sinceVersion"),
      auth: req.headers.authorization,
    });
    const step = script.shift();
    if (step) step(res);
    else held.push(res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const store = new ConfigStore();
  const metrics = createSidecarMetrics();
  const delays: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), "osmt-token-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "secret\n");
  const watch = watchControlPlane({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pod: "demo/curl",
    tokenFile,
    store,
    logger,
    metrics,
    backoff: { baseMs: 10, maxMs: 40 },
    random: () => {
      delays.push(1);
      return 0.5;
    },
  });
  try {
    await until(() => store.version === 3);
    assert.equal(store.table?.config.enableEgress, false);
    assert.deepEqual(
      requests.map((r) => r.since),
      [null, "1", "1", "1", "1", "1", "3"].slice(0, requests.length),
    );
    assert.ok(requests.every((r) => r.auth === "Bearer secret"));
    // 500, an invalid document and bad JSON each cost one jittered backoff.
    assert.equal(delays.length, 3);
    const updates = metrics.registry.metric("osm_sidecar_config_updates_total");
    assert.match(updates, /result="applied"\} 2/);
    assert.match(updates, /result="invalid"\} 1/);
    // The kubelet renews the projected token in place: the next request carries the new one.
    writeFileSync(tokenFile, "renewed");
    await until(() => held.length > 0);
    held.shift()?.writeHead(204).end();
    await until(() => requests.some((r) => r.auth === "Bearer renewed"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    watch.stop();
    for (const res of held) res.end();
    server.close();
  }
});

test("with the controller unreachable the client retries with growing jittered delays and no config", async () => {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  server.close(); // nothing listens there now: connection refused
  const store = new ConfigStore();
  let draws = 0;
  const watch = watchControlPlane({
    url: `http://127.0.0.1:${port}`,
    pod: "demo/curl",
    store,
    logger,
    metrics: createSidecarMetrics(),
    backoff: { baseMs: 5, maxMs: 20 },
    random: () => {
      draws += 1;
      return 0;
    },
  });
  await until(() => draws >= 3);
  watch.stop();
  assert.equal(store.table, undefined);
});

/**
 * A sidecar whose splice relay thread cannot start refuses to start at all, with an error that says why:
 * `osm sidecar run` with an impossible relay thread stack (OSM_SIDECAR_RELAY_STACK_BYTES = 2^48, so
 * pthread_create fails for real) exits 1 before its admin port ever answers. So does one whose port is
 * taken, on both accept paths (the relay threads' SO_REUSEPORT sockets must not join another listener).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { RELAY_STACK_ENV } from "../../../src/sidecar/native/index.ts";
import { freePort } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const osm = new URL("../../../bin/osm", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "osmt-relay-start-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a relay thread that cannot start: the sidecar exits 1 with the reason and never becomes ready", async () => {
  const config = join(dir, "sidecar.json");
  writeFileSync(config, JSON.stringify({ apiVersion: "osm.sidecar/v1", version: 1, enableEgress: true }));
  const ports = [await freePort(), await freePort(), await freePort()];
  const args = ["sidecar", "run", "--allow-any-uid", "--config", config, "--relay", "splice"];
  const portArgs = ["--admin-port", "--outbound-port", "--inbound-port"].flatMap((flag, i) => [
    flag,
    String(ports[i]),
  ]);
  const ran = await run(osm, [...args, ...portArgs], {
    env: { ...process.env, [RELAY_STACK_ENV]: String(2 ** 48) },
    timeoutMs: 20_000,
  });
  assert.equal(ran.code, 1, ran.stderr);
  assert.match(
    ran.stderr,
    /the splice relay's thread cannot start: relayStart: pthread_create: .+ \(EAGAIN\)/,
  );
  assert.doesNotMatch(ran.stdout, /"sidecar started"/);
});

for (const accept of ["native", "js"]) {
  test(`a port something already listens on: the sidecar exits 1 naming it, never joins it (--accept ${accept})`, async () => {
    const config = join(dir, "taken.json");
    writeFileSync(config, JSON.stringify({ apiVersion: "osm.sidecar/v1", version: 1, enableEgress: true }));
    // With SO_REUSEPORT, as another sidecar's relay threads listen: a socket of ours could join its group.
    const taken = createServer();
    await new Promise<void>((resolve) =>
      taken.listen({ host: "0.0.0.0", port: 0, reusePort: true }, resolve),
    );
    const port = (taken.address() as AddressInfo).port;
    try {
      const args = ["sidecar", "run", "--allow-any-uid", "--config", config, "--accept", accept];
      const ports = ["--admin-port", String(await freePort()), "--outbound-port", String(await freePort())];
      const ran = await run(osm, [...args, ...ports, "--inbound-port", String(port)], { timeoutMs: 20_000 });
      assert.equal(ran.code, 1, ran.stderr);
      assert.match(ran.stderr, new RegExp(`inbound listener cannot listen on port ${port}: EADDRINUSE`));
    } finally {
      taken.close();
    }
  });
}

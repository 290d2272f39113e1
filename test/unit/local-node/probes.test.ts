import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadOrCreateIdentity } from "../../../src/local/apiserver/tls.ts";
import { runProbe } from "../../../src/local/node/probes.ts";

describe("an httpGet probe", () => {
  let dir: string;
  let server: ReturnType<typeof createServer>;
  let port: number;
  const noExec = () => Promise.resolve(1);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-probe-"));
    // A certificate from a CA the probe does not know: the kubelet does not verify it either.
    const id = await loadOrCreateIdentity(dir, "127.0.0.1");
    server = createServer({ key: id.keyPem, cert: id.certPem }, (req, res) => {
      res.writeHead(req.url === "/readyz" ? 200 : 503);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test("with scheme HTTPS speaks TLS without verifying the certificate, as the kubelet", async () => {
    const probe = { httpGet: { path: "/readyz", port, scheme: "HTTPS" } };
    assert.equal(await runProbe(probe, { name: "c" }, "127.0.0.1", noExec), true);
    const failing = { httpGet: { path: "/nope", port, scheme: "HTTPS" } };
    assert.equal(await runProbe(failing, { name: "c" }, "127.0.0.1", noExec), false);
  });

  test("with scheme HTTP (the default) fails against a TLS server", async () => {
    const probe = { httpGet: { path: "/readyz", port }, timeoutSeconds: 2 };
    assert.equal(await runProbe(probe, { name: "c" }, "127.0.0.1", noExec), false);
  });
});

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import pino from "pino";
import type { CommandRunner } from "../../../src/edge/command-runner.ts";
import { NodeRuntime } from "../../../src/local/node/runtime.ts";

test("an external host address inside a network directly connected to the host (its uplink) is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "osmt-ext-guard-"));
  const calls: string[][] = [];
  // The host as measured on these machines: uplink eth0 on 192.0.2.0/24, gateway 192.0.2.1.
  const run: CommandRunner = {
    run: async (argv) => {
      calls.push([...argv]);
      const stdout = argv.includes("match")
        ? "default via 192.0.2.1 dev eth0 \n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.2 \n"
        : "";
      return { code: 0, stdout, stderr: "" };
    },
  };
  try {
    const runtime = new NodeRuntime({
      stateDir: dir,
      network: {
        bridge: "osmt-xg0",
        namePrefix: "osmt-xg-",
        subnet4: "198.51.100.0/24",
        subnet6: "2001:db8:1::/64",
        gatewayOffset: 1,
        firstSlot: 2,
        lastSlot: 9,
      },
      nodeName: "osm-local",
      logger: pino({ level: "silent" }),
      run,
    });
    await assert.rejects(
      runtime.addExternalHost("gw", ["192.0.2.1/32"]),
      /external host address "192\.0\.2\.1\/32" lies in a network of this host \(192\.0\.2\.0\/24 dev eth0\)/,
    );
    // Nothing was created: only the route lookup ran.
    assert.deepEqual(
      calls.map((c) => c.slice(0, 4).join(" ")),
      ["ip -4 -o route"],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The sidecar's data plane under real traffic in network namespaces: bulk both ways, half-close, many
 * concurrent connections, the connection cap, and failing closed when the sidecar dies.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SIDECAR_NODE_FLAGS } from "../../../src/injector/containers.ts";
import { accessLog, EXCLUDED_V4, EXTERNAL_V4, isRoot, Lab, MESH_V4, MESH_V6, type Proc } from "./lab.ts";

const skip = isRoot() ? false : "needs root: creates network namespaces and iptables rules";
const MB = 1024 * 1024;

const MESH = [
  { service: "demo/mesh", ip: MESH_V4, port: 9000 },
  { service: "demo/mesh", ip: MESH_V6, port: 9000 },
  { service: "demo/mesh", ip: MESH_V4, port: 9001 },
];

// The relay threads accepting and deciding (the default), Node accepting for the splice relay, and Node's relay.
for (const modes of [
  ["--relay", "splice"],
  ["--relay", "splice", "--accept", "js"],
  ["--relay", "js"],
]) {
  describe(`sidecar data plane under real traffic (${modes.join(" ")})`, { skip }, () => {
    const lab = new Lab();
    let sidecar: Proc;

    before(async () => {
      await lab.create();
      const config = lab.writeConfig({ enableEgress: true, meshEndpoints: MESH });
      sidecar = await lab.startSidecar([
        ...SIDECAR_NODE_FLAGS.map((flag) => `--node-flag=${flag}`), // as the injector starts it
        "--config",
        config,
        ...modes,
        "--idle-timeout",
        "1",
        "--connect-timeout",
        "1500",
      ]);
    });
    after(() => lab.destroy());

    test("bin/osm starts the sidecar with the injector's Node flags (its --node-flag words)", () => {
      const started = sidecar.lines.find((line) => line.includes('"sidecar started"'))!;
      const flags = (JSON.parse(started) as { nodeFlags: string[] }).nodeFlags;
      for (const flag of SIDECAR_NODE_FLAGS)
        assert.ok(flags.includes(flag), `${flag} not in ${flags.join(" ")}`);
    });

    test("100 MB each way through the sidecar arrive intact (sha256 matches)", async () => {
      const result = await lab.client(["bulk", MESH_V4, "9000", String(100 * MB)]);
      assert.equal(result["receivedBytes"], 100 * MB);
      assert.equal(result["received"], result["sent"]);
      await lab.waitFor(() => accessLog(sidecar).some((line) => line["bytesUp"] === 100 * MB));
      const line = accessLog(sidecar).find((entry) => entry["bytesUp"] === 100 * MB)!;
      assert.equal(line["bytesDown"], 100 * MB);
      assert.equal(line["error"], undefined);
    });

    test("an IPv6 mesh connection and an IPv4 passthrough connection each carry 10 MB both ways intact", async () => {
      const result = await lab.client(["bulk", MESH_V6, "9000", String(10 * MB)]);
      assert.equal(result["received"], result["sent"]);
      const passthrough = await lab.client(["bulk", EXTERNAL_V4, "9000", String(10 * MB)]);
      assert.equal(passthrough["received"], passthrough["sent"]);
    });

    test("an upstream that refuses, or never answers within --connect-timeout, gets the client reset", async () => {
      // Port 81: nothing listens (RST). Port 82: SYNs dropped in the server namespace (no answer at all).
      lab.silencePort(82);
      const refused = await lab.curl(["-s", "--max-time", "5", `http://${EXTERNAL_V4}:81/`]);
      assert.ok([7, 56].includes(refused.exitCode), `curl exit ${refused.exitCode}`);
      const silent = await lab.curl(["-s", "--max-time", "5", `http://${EXTERNAL_V4}:82/`]);
      assert.equal(silent.exitCode, 56);
      assert.ok(silent.ms >= 1400 && silent.ms < 4000, `reset after ${silent.ms} ms`);
      await lab.waitFor(() => accessLog(sidecar).some((line) => line["error"] === "connect-timeout"));
      const lines = accessLog(sidecar);
      const refusedLine = lines.find((line) => line["dst"] === `${EXTERNAL_V4}:81`)!;
      assert.equal(refusedLine["error"], "connect:ECONNREFUSED");
      assert.equal(refusedLine["decision"], "passthrough");
      assert.equal(lines.find((line) => line["dst"] === `${EXTERNAL_V4}:82`)!["error"], "connect-timeout");
      const metrics = await lab.admin("/stats/prometheus");
      assert.match(metrics, /osm_sidecar_errors_total\{direction="outbound",kind="connect"\} 1/);
      assert.match(metrics, /osm_sidecar_errors_total\{direction="outbound",kind="connect-timeout"\} 1/);
    });

    test("half-close: the client's FIN reaches the server and the server's reply still comes back", async () => {
      const result = await lab.client(["halfclose", MESH_V4, "9001"]);
      assert.equal(result["reply"], "received 5 bytes\n");
    });

    test("past maxDataPlaneConnections, new connections are reset and open ones keep working", async () => {
      lab.writeConfig({ enableEgress: true, meshEndpoints: MESH, maxDataPlaneConnections: 1 });
      await lab.waitFor(
        async () => JSON.parse(await lab.admin("/config_dump")).config.maxDataPlaneConnections === 1,
      );
      const proc = lab.spawnClient(["concurrent", MESH_V4, "9000", "1"]);
      await proc.waitForLine((line) => line === '{"open":1}');
      await lab.waitFor(async () => JSON.parse(await lab.admin("/config_dump")).activeConnections === 1);
      const refused = await lab.curl(["-s", "--max-time", "5", `http://${EXTERNAL_V4}/`]);
      assert.equal(refused.exitCode, 56);
      proc.child.stdin!.write("go\n");
      assert.deepEqual(JSON.parse(await proc.waitForLine((text) => text.startsWith('{"echoed"'))), {
        echoed: 1,
      });
      // Logged in batches once the refusal's reset is done.
      await lab.waitFor(() => accessLog(sidecar).some((line) => line["reason"] === "connection-limit"));
      lab.writeConfig({ enableEgress: true, meshEndpoints: MESH, maxDataPlaneConnections: 0 });
      await lab.waitFor(
        async () => JSON.parse(await lab.admin("/config_dump")).config.maxDataPlaneConnections === 0,
      );
      assert.equal((await lab.curl(["-s", "--max-time", "5", `http://${EXTERNAL_V4}/`])).exitCode, 0);
    });

    test("a connection idle past --idle-timeout is reset on both sides", async () => {
      const result = await lab.client(["idle", MESH_V4, "9000"]);
      assert.equal(result["how"], "ECONNRESET");
      assert.ok((result["ms"] as number) >= 900 && (result["ms"] as number) < 3000, `${result["ms"]} ms`);
      await lab.waitFor(() => accessLog(sidecar).some((line) => line["error"] === "idle-timeout"));
    });

    test("the sidecar killed: intercepted connections are refused at once, excluded ones still work", async () => {
      await sidecar.stop("SIGKILL");
      const intercepted = await lab.curl(["-s", "--max-time", "5", `http://${EXTERNAL_V4}/`]);
      assert.equal(intercepted.exitCode, 7);
      assert.ok(intercepted.ms < 1000);
      const mesh = await lab.curl(["-s", "--max-time", "5", `http://${MESH_V4}:9001/`]);
      assert.equal(mesh.exitCode, 7);
      const excluded = await lab.curl(["-s", "--max-time", "5", `http://${EXCLUDED_V4}/`]);
      assert.equal(excluded.exitCode, 0);
      assert.match(excluded.stdout, /^hello from 203\.0\.113\.20:80/);
    });
  });
}

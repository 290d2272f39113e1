/**
 * The sidecar's decisions for real: curl in a client namespace with OSM's interception rules, the sidecar
 * as uid 1500, servers on documentation addresses in a second namespace (see lab.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  accessLog,
  CLIENT_V4,
  CLUSTER_IP_V4,
  EXCLUDED_V4,
  EXCLUDED_V6,
  EXTERNAL_V4,
  EXTERNAL_V6,
  EXTERNAL2_V4,
  isRoot,
  Lab,
  MESH_V4,
  MESH_V6,
  type Proc,
} from "./lab.ts";

const skip = isRoot() ? false : "needs root: creates network namespaces and iptables rules";

const MESH = [
  { service: "demo/mesh", ip: MESH_V4, port: 8080 },
  { service: "demo/mesh", ip: MESH_V6, port: 8080 },
  { service: "demo/cluster", ip: CLUSTER_IP_V4, port: 80, backends: [{ ip: "203.0.113.31", port: 8080 }] },
];

function get(lab: Lab, url: string) {
  return lab.curl(["-s", "--max-time", "5", url]);
}

// Decisions made by the relay threads (--accept native, the default) and by Node (--accept js) alike.
for (const accept of ["native", "js"]) {
  describe(`sidecar in a network namespace with OSM's interception rules (--accept ${accept})`, {
    skip,
  }, () => {
    const lab = new Lab();
    let sidecar: Proc;
    let configPath: string;

    before(async () => {
      await lab.create();
      configPath = lab.writeConfig({ enableEgress: true, meshEndpoints: MESH });
      sidecar = await lab.startSidecar(["--config", configPath, "--accept", accept]);
    });
    after(() => lab.destroy());

    test("a mesh destination is proxied by the sidecar, IPv4 and IPv6, and the access log says so", async () => {
      for (const [url, dst] of [
        [`http://${MESH_V4}:8080/`, `${MESH_V4}:8080`],
        [`http://[${MESH_V6}]:8080/`, `[${MESH_V6}]:8080`],
      ] as const) {
        const result = await get(lab, url);
        assert.equal(result.exitCode, 0, url);
        assert.match(result.stdout, /^hello from /);
        await lab.waitFor(() => accessLog(sidecar).some((line) => line["dst"] === dst));
        const line = accessLog(sidecar).find((entry) => entry["dst"] === dst)!;
        assert.equal(line["decision"], "mesh");
        assert.equal(line["service"], "demo/mesh");
        assert.ok((line["bytesDown"] as number) > 0);
      }
    });

    test("a mesh address with backends is proxied to a backend (the address itself exists nowhere)", async () => {
      const result = await get(lab, `http://${CLUSTER_IP_V4}/`);
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout, "hello from 203.0.113.31:8080\n");
    });

    test("a connection straight to the listener (never redirected) is refused as not-redirected, not proxied to itself", async () => {
      // 127.0.0.1 is exempt from the rules: this reaches 15001 as dialled, with no original destination.
      const result = await get(lab, "http://127.0.0.1:15001/");
      assert.ok([7, 56].includes(result.exitCode), `curl exit ${result.exitCode}`);
      await lab.waitFor(() =>
        accessLog(sidecar).some(
          (line) => line["reason"] === "not-redirected" && String(line["src"]).startsWith("127.0.0.1:"),
        ),
      );
    });

    test("an excluded destination goes direct: the sidecar never sees it", async () => {
      for (const url of [`http://${EXCLUDED_V4}/`, `http://[${EXCLUDED_V6}]/`]) {
        const result = await get(lab, url);
        assert.equal(result.exitCode, 0, url);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      const seen = accessLog(sidecar).filter(
        (line) => String(line["dst"]).includes("::20") || line["dst"] === `${EXCLUDED_V4}:80`,
      );
      assert.deepEqual(seen, []);
    });

    test("with egress on, a non-mesh destination answers 200 through the sidecar (passthrough)", async () => {
      for (const [url, dst] of [
        [`http://${EXTERNAL_V4}/`, `${EXTERNAL_V4}:80`],
        [`http://[${EXTERNAL_V6}]/`, `[${EXTERNAL_V6}]:80`],
      ] as const) {
        const result = await lab.curl([
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--max-time",
          "5",
          url,
        ]);
        assert.equal(result.stdout, "200", url);
        await lab.waitFor(() => accessLog(sidecar).some((line) => line["dst"] === dst));
        assert.equal(accessLog(sidecar).find((line) => line["dst"] === dst)!["decision"], "passthrough");
      }
    });

    test("with egress off and mesh upstreams, a non-mesh destination is reset at once (curl 56, < 1 s)", async () => {
      lab.writeConfig({ enableEgress: false, meshEndpoints: MESH });
      await lab.waitFor(
        async () => JSON.parse(await lab.admin("/config_dump")).config.enableEgress === false,
      );
      for (const url of [`http://${EXTERNAL_V4}/`, `http://${EXTERNAL2_V4}/`, `http://[${EXTERNAL_V6}]/`]) {
        const result = await get(lab, url);
        assert.equal(result.exitCode, 56, url);
        assert.ok(result.ms < 1000, `${url} took ${result.ms} ms`);
      }
      // The access log is written in batches, after the reset: wait for the three lines.
      await lab.waitFor(
        () => accessLog(sidecar).filter((line) => line["reason"] === "egress-disabled").length >= 3,
      );
      // Mesh traffic still flows.
      assert.equal((await get(lab, `http://${MESH_V4}:8080/`)).exitCode, 0);
    });

    test("with egress off and no mesh upstreams, nothing listens on 15001 (curl 7, < 1 s)", async () => {
      lab.writeConfig({ enableEgress: false, meshEndpoints: [] });
      await lab.waitFor(
        async () => JSON.parse(await lab.admin("/config_dump")).outboundListenerOpen === false,
      );
      for (const url of [`http://${EXTERNAL_V4}/`, `http://[${EXTERNAL_V6}]/`, `http://${MESH_V4}:8080/`]) {
        const result = await get(lab, url);
        assert.equal(result.exitCode, 7, url);
        assert.ok(result.ms < 1000, `${url} took ${result.ms} ms`);
      }
      // Excluded destinations still work: exclusions are the documented way out with egress off.
      assert.equal((await get(lab, `http://${EXCLUDED_V4}/`)).exitCode, 0);
    });

    test("flipping enableEgress live changes the very next connection, both ways", async () => {
      const url = `http://${EXTERNAL_V4}/`;
      lab.writeConfig({ enableEgress: true, meshEndpoints: [] });
      await lab.waitFor(async () => JSON.parse(await lab.admin("/config_dump")).config.enableEgress === true);
      assert.equal((await get(lab, url)).exitCode, 0);
      lab.writeConfig({ enableEgress: false, meshEndpoints: MESH });
      await lab.waitFor(
        async () => JSON.parse(await lab.admin("/config_dump")).config.enableEgress === false,
      );
      assert.equal((await get(lab, url)).exitCode, 56);
      lab.writeConfig({ enableEgress: true, meshEndpoints: MESH });
      await lab.waitFor(async () => JSON.parse(await lab.admin("/config_dump")).config.enableEgress === true);
      assert.equal((await get(lab, url)).exitCode, 0);
    });

    test("a config with an older version or invalid content is ignored and the config in force stays", async () => {
      const before = JSON.parse(await lab.admin("/config_dump"));
      lab.writeConfig({ enableEgress: false, meshEndpoints: [], version: 1 });
      await lab.waitFor(() => sidecar.lines.some((line) => line.includes('"config ignored"')));
      const after = JSON.parse(await lab.admin("/config_dump"));
      assert.equal(after.version, before.version);
      assert.equal((await get(lab, `http://${EXTERNAL_V4}/`)).exitCode, 0);
      lab.writeConfig({ version: before.version + 10, enableEgress: false, meshEndpoints: [] });
    });

    test("inbound connections reach the app on its original port through 15003", async () => {
      // Restore a known config first (the previous test left egress off, no upstreams).
      lab.writeConfig({ enableEgress: true, meshEndpoints: MESH, version: 1000 });
      await lab.waitFor(async () => JSON.parse(await lab.admin("/config_dump")).version === 1000);
      const proc = lab.spawnIn(lab.serverNs, ["curl", "-s", "--max-time", "5", `http://${CLIENT_V4}:8081/`]);
      const code = await new Promise((resolve) => proc.child.once("exit", resolve));
      assert.equal(code, 0);
      assert.equal(proc.lines[0], "hello from 127.0.0.1:8081");
      await lab.waitFor(() => accessLog(sidecar).some((line) => line["direction"] === "inbound"));
      const line = accessLog(sidecar).find((entry) => entry["direction"] === "inbound")!;
      assert.equal(line["dst"], `${CLIENT_V4}:8081`);
      assert.equal(line["upstream"], "127.0.0.1:8081");
    });

    test("admin serves /ready, /config_dump with the version, and Prometheus metrics by decision", async () => {
      assert.equal(await lab.admin("/ready"), "LIVE\n");
      const dump = JSON.parse(await lab.admin("/config_dump"));
      assert.equal(dump.apiVersion, "osm.sidecar/v1");
      assert.equal(dump.version, 1000);
      const metrics = await lab.admin("/stats/prometheus");
      assert.match(metrics, /osm_sidecar_connections_total\{direction="outbound",decision="mesh"\} [1-9]/);
      assert.match(
        metrics,
        /osm_sidecar_refused_connections_total\{direction="outbound",reason="egress-disabled"\} [1-9]/,
      );
      assert.match(metrics, /osm_sidecar_upstream_connect_seconds_bucket/);
      assert.match(metrics, /osm_sidecar_config_version 1000/);
    });

    test("SIGTERM drains: new connections are refused and the process exits 0", async () => {
      const code = await sidecar.stop("SIGTERM");
      assert.equal(code, 0);
      assert.equal((await get(lab, `http://${EXTERNAL_V4}/`)).exitCode, 7);
    });
  });
}

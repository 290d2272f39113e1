/**
 * The sidecar fed by the watch API (`--control-plane`), for real: a stand-in controller (fixtures/
 * control-plane.ts) in the client namespace on 127.0.0.1:15128, the sidecar as uid 1500 next to it.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { projectNode } from "../../support/install-access.ts";
import { EXTERNAL_V4, isRoot, Lab, MESH_V4, type Proc } from "./lab.ts";

const skip = isRoot() ? false : "needs root: creates network namespaces and iptables rules";
const TOKEN = "test-sidecar-token";
/** Token files as the node projects them (0644 in a 0755 folder: the sidecar reads them as uid 1500). */
const tokenDir = mkdtempSync(join(tmpdir(), "osmt-sidecar-token-"));
chmodSync(tokenDir, 0o755);
function tokenFile(name: string, token: string): string {
  const file = join(tokenDir, name);
  writeFileSync(file, token, { mode: 0o644 });
  return file;
}
const controlPlaneScript = new URL("./fixtures/control-plane.ts", import.meta.url).pathname;

/** The sidecar's flags: watch the stand-in controller as pod demo/curl with this token file. */
function watchArgs(file: string): string[] {
  const flags = ["--pod", "demo/curl", "--reconnect-max-delay", "500", "--token-file", file];
  return ["--control-plane", "http://127.0.0.1:15128", ...flags];
}

function doc(version: number, enableEgress: boolean | string): string {
  const meshEndpoints = [{ service: "demo/mesh", ip: MESH_V4, port: 8080 }];
  return `${JSON.stringify({ apiVersion: "osm.sidecar/v1", version, enableEgress, meshEndpoints })}\n`;
}

describe("sidecar configured by the control plane's watch API", { skip }, () => {
  const lab = new Lab();
  let controlPlane: Proc;
  let sidecar: Proc;
  const get = (url: string) => lab.curl(["-s", "--max-time", "5", url]);
  const version = async (): Promise<number | null> => {
    const text = await lab.admin("/config_dump");
    return text === "" ? null : (JSON.parse(text).version as number | null);
  };
  const startControlPlane = async (): Promise<Proc> => {
    const proc = lab.spawnIn(lab.clientNs, [projectNode(), controlPlaneScript, "127.0.0.1:15128", TOKEN], {
      stdin: true,
    });
    await proc.waitForLine((line) => line === "ready");
    return proc;
  };

  before(async () => {
    await lab.create();
    controlPlane = await startControlPlane();
  });
  after(async () => {
    await lab.destroy();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  test("before its first config the sidecar fails closed: not ready, intercepted connections refused", async () => {
    sidecar = await lab.startSidecar(watchArgs(tokenFile("curl", TOKEN)), false);
    assert.equal(await lab.admin("/ready"), "no config yet\n");
    const result = await get(`http://${EXTERNAL_V4}/`);
    assert.equal(result.exitCode, 7);
    assert.equal((await get(`http://${MESH_V4}:8080/`)).exitCode, 7);
  });

  test("the first config (sent with the pod's bearer token) opens the listener: egress on answers 200", async () => {
    controlPlane.child.stdin!.write(doc(1, true));
    await lab.waitFor(async () => (await lab.admin("/ready")) === "LIVE\n");
    assert.equal(await version(), 1);
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 0);
  });

  test("enableEgress turned off at the controller applies live to the next connection", async () => {
    controlPlane.child.stdin!.write(doc(2, false));
    await lab.waitFor(async () => (await version()) === 2);
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 56);
    assert.equal((await get(`http://${MESH_V4}:8080/`)).exitCode, 0);
  });

  test("an invalid document from the controller is rejected and the config in force stays", async () => {
    controlPlane.child.stdin!.write(doc(3, "maybe"));
    await sidecar.waitForLine((line) => line.includes("invalid config") && line.includes("enableEgress"));
    assert.equal(await version(), 2);
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 56);
  });

  test("with the controller gone the last good config stays, and a new controller's newer config is applied", async () => {
    await controlPlane.stop("SIGKILL");
    await sidecar.waitForLine(
      (line) => line.includes("config watch failed") && line.includes("ECONNREFUSED"),
    );
    assert.equal(await version(), 2);
    assert.equal(await lab.admin("/ready"), "LIVE\n");
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 56);
    assert.equal((await get(`http://${MESH_V4}:8080/`)).exitCode, 0);
    controlPlane = await startControlPlane();
    controlPlane.child.stdin!.write(doc(7, true));
    await lab.waitFor(async () => (await version()) === 7, 5000);
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 0);
  });

  test("a wrong token is refused by the controller and the sidecar keeps retrying without a config", async () => {
    await sidecar.stop("SIGTERM");
    const stranger = await lab.startSidecar(watchArgs(tokenFile("stranger", "wrong")), false);
    await stranger.waitForLine((line) => line.includes("config watch failed") && line.includes("HTTP 401"));
    assert.equal(await lab.admin("/ready"), "no config yet\n");
    assert.equal((await get(`http://${EXTERNAL_V4}/`)).exitCode, 7);
    assert.equal(await stranger.stop("SIGTERM"), 0);
  });
});

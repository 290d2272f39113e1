/**
 * HTTPRouteGroup routes at the destination, for real: the sidecar (uid 1500, OSM's rules) in the client
 * namespace guards the app on :8081; curl in the server namespace is the source, from two addresses that
 * stand for two meshed pods. Each request on a connection is decided (keep-alive included): a route the
 * source may use goes to the app, a route it may not gets Envoy's 403 `RBAC: access denied`, a request no
 * route matches 404; rules change live. And the app's httpGet probe, rewritten to the sidecar's port, gets
 * through whatever the rules say.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SidecarInboundRule } from "../../../src/config/sidecar-api.ts";
import { accessLog, CLIENT_V4, isRoot, Lab, type Proc, SERVER_V4 } from "./lab.ts";

const skip = isRoot() ? false : "needs root: creates network namespaces and iptables rules";
/** A second source address in the server namespace (lab.ts puts it on lo there). */
const OTHER_V4 = "203.0.113.31";

describe("inbound HTTPRouteGroup routes in the sidecar (permissive mode off)", { skip }, () => {
  const lab = new Lab();
  let sidecar: Proc;

  const rules = (list: SidecarInboundRule[]) =>
    lab.writeConfig({
      enableEgress: true,
      meshEndpoints: [],
      inboundAccess: { rules: list, httpPorts: [8081] },
    });
  const STATUS = { routeGroup: "app/routes", name: "status", pathRegex: "/status/.*", methods: ["GET"] };
  const EVERYTHING = { routeGroup: "app/routes", name: "everything", pathRegex: ".*" };
  const client = { ip: SERVER_V4, pod: "clients/client" };
  const other = { ip: OTHER_V4, pod: "clients/other" };

  /** curl from the server namespace; `-w` prints each response's status after its body. */
  const curl = async (args: string[], from = SERVER_V4) => {
    const proc = lab.spawnIn(lab.serverNs, ["curl", "-s", "--max-time", "5", "--interface", from, ...args]);
    const code = await new Promise((resolve) => proc.child.once("exit", resolve));
    return { code, out: proc.lines.join("\n") };
  };
  const status = (path: string, from = SERVER_V4) =>
    curl(["-o", "/dev/null", "-w", "%{http_code}", `http://${CLIENT_V4}:8081${path}`], from);

  before(async () => {
    await lab.create();
    const path = rules([
      { trafficTarget: "app/a-client", sources: [client], httpMatches: [STATUS] },
      { trafficTarget: "app/b-other", sources: [other], httpMatches: [EVERYTHING] },
    ]);
    // The app's readiness probe, as the injector rewrites it: the sidecar serves it on 15902.
    sidecar = await lab.startSidecar(["--config", path, "--probe", "readiness/app=http:8081/ready"]);
  });
  after(() => lab.destroy());

  test("a route the source may use reaches the app; a route it may not is 403 RBAC: access denied", async () => {
    const ok = await curl([`http://${CLIENT_V4}:8081/status/200`]);
    assert.equal(ok.code, 0);
    assert.equal(ok.out, "hello from 127.0.0.1:8081");
    const denied = await curl(["-w", " %{http_code}", `http://${CLIENT_V4}:8081/admin`]);
    assert.equal(denied.out, "RBAC: access denied 403");
    assert.equal((await status("/admin", OTHER_V4)).out, "200");
    // POST /status/1: not a GET, so the status route does not hold; the catch-all does, for other only.
    assert.equal(
      (
        await curl([
          "-X",
          "POST",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          `http://${CLIENT_V4}:8081/status/1`,
        ])
      ).out,
      "403",
    );
  });

  test("every request of a keep-alive connection is decided, on one connection, logged once with the counts", async () => {
    const before = accessLog(sidecar).length;
    const urls = ["/status/1", "/admin", "/status/2"].map((p) => `http://${CLIENT_V4}:8081${p}`);
    const result = await curl([
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{num_connects}\n",
      ...urls,
    ]);
    assert.deepEqual(result.out.split("\n"), ["200 1", "403 0", "200 0"]);
    // Earlier connections may log after this one started: the line looked for is the one with 3 requests.
    const mine = (l: Record<string, unknown>) =>
      l["direction"] === "inbound" && l["forbidden"] === 1 && l["requests"] === 2;
    await lab.waitFor(() => accessLog(sidecar).slice(before).some(mine));
    const line = accessLog(sidecar).slice(before).find(mine)!;
    assert.equal(line["decision"], "passthrough");
    assert.equal(line["trafficTarget"], "app/a-client");
    assert.equal(line["sourcePod"], "clients/client");
    assert.equal(line["requests"], 2);
    assert.equal(line["forbidden"], 1);
  });

  test("no route matches: 404; rules change live and apply to the next request", async () => {
    rules([{ trafficTarget: "app/a-client", sources: [client], httpMatches: [STATUS] }]);
    await lab.waitFor(async () => (await status("/admin")).out === "404", 20_000);
    rules([{ trafficTarget: "app/a-client", sources: [client], httpMatches: [EVERYTHING] }]);
    await lab.waitFor(async () => (await status("/admin")).out === "200", 20_000);
    // A source no rule lists is refused at the connection, before any request (curl: reset, exit 56).
    assert.equal((await status("/status/1", OTHER_V4)).code, 56);
  });

  test("an httpGet probe rewritten to 15902 reaches the app whatever access control says; other paths 404", async () => {
    // OTHER_V4 is refused on the app's port by now (previous test), as the kubelet would be.
    assert.equal((await status("/status/1", OTHER_V4)).code, 56);
    const probe = await curl(
      ["-w", " %{http_code}", `http://${CLIENT_V4}:15902/osm-readiness-probe/app`],
      OTHER_V4,
    );
    assert.match(probe.out, /^hello from 127\.0\.0\.1:8081\n 200$/);
    const other = await curl(
      ["-o", "/dev/null", "-w", "%{http_code}", `http://${CLIENT_V4}:15902/osm-liveness-probe/app`],
      OTHER_V4,
    );
    assert.equal(other.out, "404");
    // Only the kinds in use listen.
    assert.equal((await curl([`http://${CLIENT_V4}:15901/`], OTHER_V4)).code, 7);
  });
});

/**
 * Egress policies enforced by the sidecar with egress disabled, for real: curl in the client namespace
 * behind OSM's interception rules, the sidecar as uid 1500 reading its config file (reloaded live, as the
 * watch API delivers), servers on documentation addresses (lab.ts). OSM's egress policy scenarios: tcp by
 * address range, http by Host with and without an HTTPRouteGroup match, https by SNI, then no policy.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SidecarEgressRule } from "../../../src/egress/types.ts";
import { accessLog, EXTERNAL_V4, EXTERNAL2_V4, isRoot, Lab, type Proc } from "./lab.ts";

const skip = isRoot() ? false : "needs root: creates network namespaces and iptables rules";

describe("Egress policies in the sidecar (egress disabled)", { skip }, () => {
  const lab = new Lab();
  let sidecar: Proc;

  const policy = (rules: SidecarEgressRule[]) =>
    lab.writeConfig({
      enableEgress: false,
      meshEndpoints: [],
      egress: { serviceAccount: "curl/curl", rules },
    });
  const curl = (args: string[]) => lab.curl(["-s", "--max-time", "5", ...args]);
  /** Retries until curl's result satisfies `ok`: the sidecar applies a new config within moments, not at once. */
  const until = async (args: string[], ok: (r: { exitCode: number; stdout: string }) => boolean) => {
    let last = { exitCode: -1, stdout: "" };
    const attempt = async () => {
      last = await curl(args);
      return ok(last);
    };
    await lab.waitFor(attempt, 20_000).catch(() => {
      assert.fail(
        `curl ${args.join(" ")} never got there: exit ${last.exitCode}, ${JSON.stringify(last.stdout)}`,
      );
    });
    return last;
  };
  const logged = async (match: (line: Record<string, unknown>) => boolean) => {
    await lab.waitFor(() => accessLog(sidecar).some(match), 10_000);
    return accessLog(sidecar).filter(match).at(-1)!;
  };

  before(async () => {
    await lab.create();
    const path = policy([]);
    sidecar = await lab.startSidecar(["--config", path]);
  });
  after(() => lab.destroy());

  test("no Egress: nothing listens on 15001 (curl 7)", async () => {
    assert.equal((await curl([`http://${EXTERNAL_V4}/`])).exitCode, 7);
  });

  test("tcp by address range: allowed live, named in the access log; another address is refused saying what was missing", async () => {
    policy([
      {
        egress: "curl/range",
        hosts: [],
        ipAddresses: [`${EXTERNAL_V4}/32`],
        ports: [{ number: 80, protocol: "tcp" }],
      },
    ]);
    const ok = await until([`http://${EXTERNAL_V4}/`], (r) => r.exitCode === 0);
    assert.equal(ok.stdout, `hello from ${EXTERNAL_V4}:80\n`);
    const allowed = await logged((l) => l["dst"] === `${EXTERNAL_V4}:80` && l["decision"] === "passthrough");
    assert.equal(allowed["egress"], "curl/range");
    const refused = await curl([`http://${EXTERNAL2_V4}/`]);
    assert.equal(refused.exitCode, 56);
    const line = await logged((l) => l["dst"] === `${EXTERNAL2_V4}:80`);
    assert.equal(line["decision"], "refuse");
    assert.equal(line["detail"], `no Egress for service account curl allows ${EXTERNAL2_V4}:80`);
    const metrics = await lab.curl(["-s", "--max-time", "2", "http://127.0.0.1:15000/stats/prometheus"]);
    assert.match(metrics.stdout, /osm_sidecar_egress_policy_connections_total\{egress="curl\/range"\} [1-9]/);
  });

  test("http by Host: host and host:port allowed on any address; another Host is refused", async () => {
    policy([
      {
        egress: "curl/httpbin-80",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 80, protocol: "http" }],
      },
    ]);
    const args = (host: string, path = "/get") => ["-H", `Host: ${host}`, `http://${EXTERNAL2_V4}${path}`];
    const ok = await until(args("httpbin.org"), (r) => r.exitCode === 0);
    assert.equal(ok.stdout, `hello from ${EXTERNAL2_V4}:80\n`);
    assert.equal((await curl(args("httpbin.org:80"))).exitCode, 0);
    const other = await curl(args("example.org"));
    assert.equal(other.exitCode, 56, "refused: reset");
    const line = await logged(
      (l) => l["decision"] === "refuse" && String(l["detail"]).includes("example.org"),
    );
    assert.equal(
      line["detail"],
      `no Egress for service account curl allows host example.org on ${EXTERNAL2_V4}:80`,
    );
  });

  test("http with an HTTPRouteGroup match: a path inside is 200, outside 404 (as OSM's Envoy), on one connection", async () => {
    policy([
      {
        egress: "curl/httpbin-80",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 80, protocol: "http" }],
        httpMatches: [{ routeGroup: "curl/httpbin-status", name: "status", pathRegex: "/status.*" }],
      },
    ]);
    const inside = [
      "-H",
      "Host: httpbin.org",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${EXTERNAL2_V4}/status/200`,
    ];
    await until(inside, (r) => r.stdout === "200");
    const both = await curl([
      "-H",
      "Host: httpbin.org",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} ",
      `http://${EXTERNAL2_V4}/status/200`,
      `http://${EXTERNAL2_V4}/get`,
    ]);
    assert.equal(both.stdout, "200 404 ");
  });

  test("https by SNI, TLS not terminated: httpbin.org allowed (the server's own certificate), another name refused", async () => {
    policy([
      {
        egress: "curl/httpbin-443",
        hosts: ["httpbin.org"],
        ipAddresses: [],
        ports: [{ number: 443, protocol: "https" }],
      },
    ]);
    const resolve = (name: string) => ["-k", "--resolve", `${name}:443:${EXTERNAL_V4}`, `https://${name}/`];
    const ok = await until(resolve("httpbin.org"), (r) => r.exitCode === 0);
    assert.equal(ok.stdout, `hello over tls from ${EXTERNAL_V4}:443\n`);
    const line = await logged((l) => l["dst"] === `${EXTERNAL_V4}:443` && l["decision"] === "passthrough");
    assert.equal(line["egress"], "curl/httpbin-443");
    const other = await curl(resolve("example.org"));
    assert.notEqual(other.exitCode, 0);
    const refused = await logged(
      (l) => l["dst"] === `${EXTERNAL_V4}:443` && String(l["detail"]).includes("example.org"),
    );
    assert.equal(
      refused["detail"],
      `no Egress for service account curl allows TLS server name example.org to ${EXTERNAL_V4}:443`,
    );
  });

  test("the policy removed: refused again without a restart (curl 7)", async () => {
    policy([]);
    await until([`http://${EXTERNAL_V4}/`], (r) => r.exitCode === 7);
  });
});

/**
 * Issue 20: OSM's access control, on one mesh. OSM's e2e suites run with permissive traffic policy mode off;
 * this one does too (`osm install --set osm.enablePermissiveTrafficPolicy=false`) and plays their scenarios:
 *
 * - `e2e_egress_test.go`: a meshed client (with a Service of its own, as OSM's sleep pod) gets 200 from
 *   external hosts over http and https with egress on; egress disabled live → curl exit 7, five times in a row.
 * - `e2e_smi_traffic_target_test.go`: a client a TrafficTarget allows reaches the server, one it does not is
 *   refused; deleting the TrafficTarget refuses it again, without a restart. A client allowed on another port
 *   only is let out by its own sidecar and refused by the server's (the TCP counterpart of OSM's 403).
 * - `e2e_egress_policy_test.go` (with egress disabled): Egress by address range, by Host with an
 *   HTTPRouteGroup match (404 outside it), by TLS server name; deleting them refuses again, no restart.
 * - HTTPRouteGroup matches at the destination: a route the client may use answers 200, a route only another
 *   client may use 403 (Envoy's RBAC), as osm explain pod/… --from … --path … says; the server's httpGet
 *   readiness probe, rewritten to the sidecar's 15902, makes it Ready with no TrafficTarget to it.
 * - Flipping permissive mode applies live.
 *
 * On either engine (`OSM_TEST_ENGINE`).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createCertificateAuthority, createServingCertificate } from "../../../src/edge/certificates.ts";
import { hostLeftovers, localMesh, meshDownPurgeArgs, patchMeshConfig } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-smi-";
const BRIDGE = "osmt-smi0";
const EXTERNAL = "osmt-smi-ext";
/** The external host (standing in for OSM's edition.cnn.com and github.com). */
const HOSTS = ["203.0.113.70", "203.0.113.71"];
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

/** A pod with a Service account and a Service of its own (OSM's SimplePodApp). */
function app(
  namespace: string,
  name: string,
  command: string[],
  portName = "tcp",
  readinessPath?: string,
): string {
  const probe =
    readinessPath === undefined
      ? ""
      : `    readinessProbe: {httpGet: {port: 8080, path: ${readinessPath}}, periodSeconds: 2}\n`;
  return `apiVersion: v1
kind: ServiceAccount
metadata: {name: ${name}, namespace: ${namespace}}
---
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${namespace}
  labels: {app: ${name}}
spec:
  serviceAccountName: ${name}
  terminationGracePeriodSeconds: 1
  containers:
  - name: ${name}
    image: curlimages/curl
    command: ${JSON.stringify(command)}
    ports: [{containerPort: 8080}]
${probe}---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: {app: ${name}}
  ports: [{name: ${portName}, port: 80, targetPort: 8080}]
`;
}

const SERVER = `require("node:http").createServer((q, s) => s.end("served\\n")).listen(8080, "0.0.0.0")`;

/** TrafficTarget `name` in the server's namespace letting service account `source` in on TCPRoute `route`. */
function trafficTarget(name: string, source: string, route: string): string {
  return `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: ${name}, namespace: server}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: server}
  rules: [{kind: TCPRoute, name: ${route}}]
  sources: [{kind: ServiceAccount, name: ${source}, namespace: clients}]
`;
}

const ROUTES = `apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: tcp-8080, namespace: server}
spec: {matches: {ports: [8080]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: tcp-9090, namespace: server}
spec: {matches: {ports: [9090]}}
`;

describe("SMI access control with permissive mode off (OSM's e2e scenarios)", {
  skip: rootSkip,
  concurrency: false,
}, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  let upArgs: string[];
  const servers: ChildProcess[] = [];
  /** Set by the first test: the others fail at once without it (and do not hold the test lock for minutes). */
  let meshUp = false;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const osm = (...args: string[]) => run(OSM, args, { env });
  const apply = async (yaml: string) => {
    const r = await run("kubectl", ["apply", "-f", "-"], { env, input: yaml });
    assert.equal(r.code, 0, r.stderr);
  };
  /** curl from a client pod: `<exit code> <http code>`; `extra` goes before the URL. */
  const curl = async (pod: string, url: string, extra: readonly string[] = []) => {
    const r = await kubectl(
      "exec",
      "-n",
      "clients",
      pod,
      "-c",
      pod,
      "--",
      "curl",
      "-sk",
      "-m",
      "5",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      ...extra,
      url,
    );
    // kubectl exec exits 1 and says "command terminated with exit code N" when the command fails.
    const code = /command terminated with exit code (\d+)/.exec(r.stderr)?.[1] ?? String(r.code);
    return `${code} ${r.stdout.trim()}`;
  };
  /** Waits until `expected` comes back `times` times in a row (OSM's WaitForRepeatedSuccess). */
  const repeatedly = async (
    pod: string,
    url: string,
    expected: string,
    times = 5,
    extra: readonly string[] = [],
  ) => {
    assert.ok(meshUp, "the mesh is up");
    let streak = 0;
    const seen: string[] = [];
    const deadline = Date.now() + 60_000;
    while (streak < times) {
      const got = await curl(pod, url, extra);
      seen.push(got);
      streak = got === expected ? streak + 1 : 0;
      if (streak < times && Date.now() > deadline) {
        assert.fail(
          `${pod} → ${url}: wanted "${expected}" ${times} times in a row, got ${seen.slice(-8).join(", ")}`,
        );
      }
      if (streak < times) await new Promise((r) => setTimeout(r, 200));
    }
  };

  /** Waits until the pod's READY column says 2/2 and it runs (the app and its sidecar). */
  const running = (ns: string, pod: string) =>
    until(
      `${ns}/${pod} 2/2 Running`,
      async () => {
        const row = (await kubectl("get", "pod", "-n", ns, pod, "--no-headers")).stdout.trim().split(/\s+/);
        return row[1] === "2/2" && row[2] === "Running" ? true : undefined;
      },
      120_000,
      500,
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-smi-"));
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "203.0.113.48/28",
      subnet6: "2001:db8:1:2a::/64",
      lastSlot: 14,
    }));
  });

  after(async () => {
    for (const server of servers) server.kill();
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("the mesh with permissive mode off and egress on; server and two clients run meshed", async () => {
    assert.equal((await osm(...upArgs)).code, 0);
    const install = await osm(
      "install",
      "--set",
      "osm.enablePermissiveTrafficPolicy=false",
      "--set",
      "osm.enableEgress=true",
      // Sidecar logs at info as well (the access log itself is written at any level).
      "--set",
      "osm.envoyLogLevel=info",
    );
    assert.equal(install.code, 0, install.stderr);
    const ext = await osm(
      "mesh",
      "external-host",
      "add",
      EXTERNAL,
      "--address",
      ...HOSTS.map((h) => `${h}/32`),
      "--state-dir",
      stateDir,
    );
    assert.equal(ext.code, 0, ext.stderr);
    const netns = /netns (\S+?),/.exec(ext.stdout)?.[1] ?? "";
    const ca = await createCertificateAuthority({
      commonName: "osmt-smi CA",
      now: new Date(),
      validityHours: 2,
    });
    const cert = await createServingCertificate(ca, {
      commonName: HOSTS[0]!,
      dnsNames: [],
      ipAddresses: HOSTS,
      now: new Date(),
      validityHours: 2,
    });
    writeFileSync(join(dir, "tls.json"), JSON.stringify({ cert: cert.certPem, key: cert.keyPem }));
    const external = `const tls = require(${JSON.stringify(join(dir, "tls.json"))});
      const answer = (q, s) => s.end("external\\n");
      require("node:http").createServer(answer).listen(80, "0.0.0.0");
      require("node:https").createServer(tls, answer).listen(443, "0.0.0.0");`;
    servers.push(
      spawn("ip", ["netns", "exec", netns, process.execPath, "-e", external], { stdio: "ignore" }),
    );
    for (const ns of ["server", "clients"]) {
      assert.equal((await kubectl("create", "namespace", ns)).code, 0);
      assert.equal((await osm("namespace", "add", ns)).code, 0);
    }
    await apply(app("server", "server", ["node", "-e", SERVER]));
    for (const client of ["allowed", "denied"]) await apply(app("clients", client, ["sleep", "365d"]));
    for (const [ns, pod] of [
      ["server", "server"],
      ["clients", "allowed"],
      ["clients", "denied"],
    ] as const) {
      await running(ns, pod);
    }
    meshUp = true;
  });

  test("egress on: http and https to external hosts answer 200 (e2e_egress_test.go)", async () => {
    for (const host of HOSTS) {
      for (const scheme of ["http", "https"]) await repeatedly("allowed", `${scheme}://${host}/`, "0 200");
    }
  });

  test("egress disabled live: curl exits 7 five times in a row, though the pod has a Service of its own", async () => {
    const patched = await patchMeshConfig(env, { spec: { traffic: { enableEgress: false } } });
    assert.equal(patched.code, 0, patched.stderr);
    for (const host of HOSTS) {
      for (const scheme of ["http", "https"]) await repeatedly("allowed", `${scheme}://${host}/`, "7 000");
    }
  });

  test("Egress policies with egress disabled (e2e_egress_policy_test.go): tcp by range, http by Host with an HTTPRouteGroup match (404 outside it), https by SNI; deleted, refused again", async () => {
    const egress = (name: string, spec: string) => `apiVersion: policy.openservicemesh.io/v1alpha1
kind: Egress
metadata: {name: ${name}, namespace: clients}
spec:
  sources: [{kind: ServiceAccount, name: allowed, namespace: clients}]
${spec}`;
    await apply(
      egress("range-80", "  ipAddresses: [203.0.113.70/32]\n  ports: [{number: 80, protocol: tcp}]\n"),
    );
    await repeatedly("allowed", `http://${HOSTS[0]}/`, "0 200");
    // The listener is open now (the pod has Egress rules): another address is reset once curl speaks.
    await repeatedly("allowed", `http://${HOSTS[1]}/`, "56 000", 3);
    // Another service account has no Egress: nothing listens for it.
    await repeatedly("denied", `http://${HOSTS[0]}/`, "7 000", 3);
    // osm explain says the same as the sidecar.
    const why = (dest: string) => osm("explain", "pod/allowed", "-n", "clients", dest);
    assert.match((await why(`${HOSTS[0]}:80`)).stdout, /→ allowed: Egress clients\/range-80 allows it/);
    assert.match(
      (await why(`${HOSTS[1]}:80`)).stdout,
      /→ refused: egress is disabled and no Egress for service account allowed allows 203\.0\.113\.71:80/,
    );
    await apply(`apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: httpbin-status, namespace: clients}
spec:
  matches: [{name: status, pathRegex: /status.*}]
---
${egress(
  "httpbin-80",
  "  hosts: [httpbin.org]\n  ports: [{number: 80, protocol: http}]\n  matches: [{apiGroup: specs.smi-spec.io/v1alpha4, kind: HTTPRouteGroup, name: httpbin-status}]\n",
)}`);
    const host = ["-H", "Host: httpbin.org"];
    await repeatedly("allowed", `http://${HOSTS[1]}/status/200`, "0 200", 5, host);
    await repeatedly("allowed", `http://${HOSTS[1]}/get`, "0 404", 3, host);
    await apply(egress("httpbin-443", "  hosts: [httpbin.org]\n  ports: [{number: 443, protocol: https}]\n"));
    const sni = ["--resolve", `httpbin.org:443:${HOSTS[1]}`];
    await repeatedly("allowed", "https://httpbin.org/", "0 200", 5, sni);
    // An IP literal sends no server name: nothing allows it (curl: TLS connect error).
    await repeatedly("allowed", `https://${HOSTS[1]}/`, "35 000", 3);
    for (const name of ["range-80", "httpbin-80", "httpbin-443"]) {
      assert.equal((await kubectl("delete", "egress", name, "-n", "clients")).code, 0);
    }
    await repeatedly("allowed", `http://${HOSTS[0]}/`, "7 000", 3);
    await repeatedly("allowed", "https://httpbin.org/", "7 000", 3, sni);
  });

  test("a TrafficTarget lets its source reach the server; a client it does not name is refused (exit 7)", async () => {
    assert.ok(meshUp, "the mesh is up");
    await apply(ROUTES);
    await apply(trafficTarget("allow-allowed", "allowed", "tcp-8080"));
    await repeatedly("allowed", "http://server.server/", "0 200");
    await repeatedly("denied", "http://server.server/", "7 000");

    // Why, in OSM's words (osm policy check-pods) and in explain's.
    let r = await osm("policy", "check-pods", "clients/allowed", "server/server");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^\[\+\] SMI traffic policy mode enabled for mesh operated by osm-controller running in osm-system namespace\n/,
    );
    assert.match(
      r.stdout,
      /\[\+\] Pod 'clients\/allowed' is allowed to communicate to pod 'server\/server' via the SMI TrafficTarget policy "allow-allowed" in namespace server/,
    );
    r = await osm("policy", "check-pods", "clients/denied", "server/server");
    assert.match(
      r.stdout,
      /\[\+\] Pod 'clients\/denied' is not allowed to communicate to pod 'server\/server', missing SMI TrafficTarget policy/,
    );
    const clusterIp = (
      await kubectl("get", "service", "server", "-n", "server", "-o", "jsonpath={.spec.clusterIP}")
    ).stdout;
    r = await osm("explain", "pod/allowed", "-n", "clients", `${clusterIp}:80`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /→ allowed: mesh destination Service server\/server:80, by TrafficTarget server\/allow-allowed/,
    );
    r = await osm("explain", "pod/denied", "-n", "clients", `${clusterIp}:80`);
    assert.match(
      r.stdout,
      /→ refused: no TrafficTarget lets service account clients\/denied reach Service server\/server:80 \(server\/server\); permissive traffic policy mode is off, and egress is disabled/,
    );
    // The access logs name the TrafficTarget on both sides.
    const clientLog = (await kubectl("logs", "allowed", "-n", "clients", "-c", "envoy")).stdout;
    assert.match(
      clientLog,
      /"direction":"outbound".*"service":"server\/server".*"trafficTarget":"server\/allow-allowed"/,
    );
    const serverLog = (await kubectl("logs", "server", "-n", "server", "-c", "envoy")).stdout;
    assert.match(
      serverLog,
      /"direction":"inbound".*"trafficTarget":"server\/allow-allowed","sourcePod":"clients\/allowed"/,
    );
  });

  test("a client allowed on another port only gets out of its own sidecar and is refused by the server's", async () => {
    await apply(trafficTarget("denied-on-9090", "denied", "tcp-9090"));
    // Reset by the server's sidecar once the client has spoken: curl's receive failure, 56.
    await repeatedly("denied", "http://server.server/", "56 000");
    await repeatedly("allowed", "http://server.server/", "0 200");
    const serverLog = (await kubectl("logs", "server", "-n", "server", "-c", "envoy")).stdout;
    assert.match(serverLog, /"direction":"inbound".*"decision":"refuse","reason":"access-denied"/);
    const stats = await osm("proxy", "get", "stats", "server", "-n", "server");
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(
      stats.stdout,
      /osm_sidecar_refused_connections_total\{direction="inbound",reason="access-denied"\} [1-9]/,
    );
    assert.match(
      stats.stdout,
      /osm_sidecar_traffic_target_connections_total\{direction="inbound",traffic_target="server\/allow-allowed"\} [1-9]/,
    );
  });

  test("deleting the TrafficTarget refuses the client again, without a restart", async () => {
    assert.ok(meshUp, "the mesh is up");
    assert.equal((await kubectl("delete", "traffictarget", "allow-allowed", "-n", "server")).code, 0);
    await repeatedly("allowed", "http://server.server/", "7 000");
  });

  test("HTTPRouteGroup matches at the destination: a route the source may use is 200, one it may not 403; an httpGet readiness probe passes", async () => {
    assert.ok(meshUp, "the mesh is up");
    // Self-contained: its own server (an http Service port), route group and TrafficTargets, deleted at the end.
    // Its httpGet readiness probe goes through the sidecar (rewritten to 15902, as OSM's injector does):
    // the pod becomes Ready although no TrafficTarget lets anyone reach it yet.
    await apply(app("server", "web", ["node", "-e", SERVER], "http", "/ready"));
    await running("server", "web");
    const probe = await kubectl(
      "get",
      "pod",
      "web",
      "-n",
      "server",
      "-o",
      "jsonpath={.spec.containers[0].readinessProbe.httpGet.port} {.spec.containers[0].readinessProbe.httpGet.path}",
    );
    assert.equal(probe.stdout, "15902 /osm-readiness-probe/web");
    const target = (name: string, source: string, match: string) => `apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: ${name}, namespace: server}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: server}
  rules: [{kind: HTTPRouteGroup, name: web-routes, matches: [${match}]}]
  sources: [{kind: ServiceAccount, name: ${source}, namespace: clients}]
`;
    await apply(`apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: web-routes, namespace: server}
spec:
  matches:
  - {name: status, pathRegex: /status/.*, methods: [GET]}
  - {name: everything, pathRegex: .*}
---
${target("web-allowed-status", "allowed", "status")}---
${target("web-denied-everything", "denied", "everything")}`);
    await repeatedly("allowed", "http://web.server/status/200", "0 200");
    // /admin is on the catch-all route, which only the other client may use: Envoy's RBAC answers 403.
    await repeatedly("allowed", "http://web.server/admin", "0 403", 3);
    await repeatedly("denied", "http://web.server/admin", "0 200", 3);
    // osm explain, inbound: the TrafficTarget that lets the client in, and what a request gets.
    const inbound = (from: string, path: string) =>
      osm("explain", "pod/web", "-n", "server", "--from", from, "8080", "--path", path);
    let why = await inbound("clients/allowed", "/status/200");
    assert.equal(why.code, 0, why.stderr);
    assert.match(
      why.stdout,
      /→ allowed: TrafficTarget server\/web-allowed-status lets service account clients\/allowed in on port 8080/,
    );
    assert.match(why.stdout, /GET \/status\/200 → forwarded to the app: route server\/web-routes#status/);
    why = await inbound("clients/allowed", "/admin");
    assert.match(
      why.stdout,
      /GET \/admin → 403 RBAC: access denied: the first route that matches, server\/web-routes#everything/,
    );
    const webLog = (await kubectl("logs", "web", "-n", "server", "-c", "envoy")).stdout;
    assert.match(webLog, /"direction":"inbound".*"sourcePod":"clients\/allowed".*"forbidden":1/);
    for (const name of ["web-allowed-status", "web-denied-everything"]) {
      assert.equal((await kubectl("delete", "traffictarget", name, "-n", "server")).code, 0);
    }
    await repeatedly("allowed", "http://web.server/status/200", "7 000", 3);
    why = await inbound("clients/allowed", "/status/200");
    assert.match(why.stdout, /→ refused: no TrafficTarget lets service account clients\/allowed/);
  });

  test("permissive mode on, then off again, applies live", async () => {
    assert.ok(meshUp, "the mesh is up");
    let patched = await patchMeshConfig(env, {
      spec: { traffic: { enablePermissiveTrafficPolicyMode: true } },
    });
    assert.equal(patched.code, 0, patched.stderr);
    await repeatedly("allowed", "http://server.server/", "0 200", 3);
    await repeatedly("denied", "http://server.server/", "0 200", 3);
    patched = await patchMeshConfig(env, { spec: { traffic: { enablePermissiveTrafficPolicyMode: false } } });
    assert.equal(patched.code, 0, patched.stderr);
    await repeatedly("allowed", "http://server.server/", "7 000", 3);
    await repeatedly("denied", "http://server.server/", "56 000", 3);
  });
});

/**
 * Issue 13 item 2 with the real kubectl against the real daemon: a Deployment of 3 replicas behind a Service
 * `port: 80` → named `targetPort: http` (8080) answers on ClusterIP:80 and by name through the cluster DNS
 * (`<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>`, `<svc>`), from all three replicas (the host DNATs in its own
 * nftables table), follows the Endpoints when scaled down, refuses a port with no ready endpoint at once (as
 * kube-proxy's `no-endpoint-services`), and `osm mesh down` removes the table.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { hostLeftovers, localMesh, meshDownPurgeArgs } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const PREFIX = "osmt-ne-";
const BRIDGE = "osmt-ne0";
const TABLE = "osm_services_osmt_ne0";
const NS = "svc-demo";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

// Each replica answers with its hostname: the pod's name (its own UTS namespace).
const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: node
        command: ["node", "-e", "require('http').createServer((q, s) => s.end(require('os').hostname() + '\\\\n')).listen(8080)"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          tcpSocket: {port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: web, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: curlimages/curl
    command: ["sleep", "365d"]
`;

describe("Services as on a cluster: ClusterIP DNAT over ready endpoints, cluster DNS", {
  skip: rootSkip,
  concurrency: false,
}, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let upArgs: string[];
  let stateDir: string;
  let kubeconfig: string;
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const osm = (...args: string[]) => run(OSM, args, { env });
  /** The replicas' names. */
  const replicas = async () =>
    (
      await kubectl("get", "pods", "-n", NS, "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}")
    ).stdout
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .sort();
  /** `sh -c script url` in the client pod (the URL as `$0`). */
  const inClient = (script: string, url: string) =>
    kubectl("exec", "-n", NS, "client", "--", "sh", "-c", script, url);
  /** Who answers `url` from the client pod, over `n` requests (a fresh connection each). */
  const answerers = async (url: string, n = 40) => {
    const r = await inClient(`for i in $(seq ${n}); do curl -sS -m 2 "$0" || echo FAILED; done`, url);
    assert.equal(r.code, 0, r.stderr);
    return [...new Set(r.stdout.trim().split("\n"))].sort();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-svc-"));
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "198.51.100.192/27",
      subnet6: "2001:db8:1:2::/64",
      lastSlot: 30,
    }));
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
  });

  after(async () => {
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("3 replicas behind port 80 → targetPort http (8080) answer on ClusterIP:80 and by name, all three", async () => {
    assert.equal((await kubectl("create", "namespace", NS)).code, 0);
    const applied = await run("kubectl", ["apply", "-n", NS, "-f", "-"], { env, input: MANIFESTS });
    assert.equal(applied.code, 0, applied.stderr);
    await until(
      "3 ready endpoints and the client running",
      async () => {
        const ips = (
          await kubectl("get", "endpoints", "web", "-n", NS, "-o", "jsonpath={.subsets[*].addresses[*].ip}")
        ).stdout;
        const client = (await kubectl("get", "pod", "client", "-n", NS, "-o", "jsonpath={.status.phase}"))
          .stdout;
        return ips.trim().split(/\s+/).length === 3 && client === "Running" ? true : undefined;
      },
      60_000,
      250,
    );
    const names = await replicas();
    assert.equal(names.length, 3);
    const clusterIP = (
      await kubectl("get", "svc", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    ).stdout.trim();
    // The host's table of this daemon holds the ClusterIP port (and no other table is involved).
    const table = await run("nft", ["list", "table", "ip", TABLE]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      new RegExp(`${clusterIP.replaceAll(".", "\\.")} \\. tcp \\. 80 : goto svc_\\d+`),
    );
    assert.match(table.stdout, /numgen random mod 3 vmap/);
    // Connections are spread at random: 40 requests reach all three replicas (a miss: 3·(2/3)^40 ≈ 3e-7).
    assert.deepEqual(await answerers(`http://${clusterIP}/`), names);
    for (const name of ["web.svc-demo.svc.cluster.local", "web.svc-demo", "web"]) {
      assert.deepEqual(await answerers(`http://${name}/`), names, name);
    }
    // The pod's resolver: the cluster DNS on the bridge gateway with the Kubernetes search path; NXDOMAIN else.
    const dns = await kubectl(
      "exec",
      "-n",
      NS,
      "client",
      "--",
      "sh",
      "-c",
      "cat /etc/resolv.conf; getent hosts web.svc-demo.svc.cluster.local; getent hosts nope.svc-demo.svc.cluster.local; echo $?",
    );
    assert.equal(
      dns.stdout.replace(/ +/g, " "),
      "nameserver 198.51.100.193\nsearch svc-demo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n" +
        `${clusterIP} web.svc-demo.svc.cluster.local\n2\n`,
    );
  });

  test("scaled to one replica, the ClusterIP goes to the one left", async () => {
    const scaled = await kubectl("scale", "deployment", "web", "-n", NS, "--replicas=1");
    assert.equal(scaled.code, 0, scaled.stderr);
    const left = await until(
      "one replica",
      async () => {
        const names = await replicas();
        return names.length === 1 ? names : undefined;
      },
      30_000,
      250,
    );
    await until(
      "only the remaining replica answers",
      async () => {
        const got = await answerers("http://web/", 10);
        return JSON.stringify(got) === JSON.stringify(left) ? true : undefined;
      },
      30_000,
      250,
    );
  });

  test("a ClusterIP port with no ready endpoint refuses at once; it answers once one is ready, and refuses again when it goes", async () => {
    const lonely = `apiVersion: v1
kind: Service
metadata:
  name: lonely
spec:
  selector: {app: lonely}
  ports:
  - {port: 80, targetPort: 8080}
`;
    const backend = `apiVersion: v1
kind: Pod
metadata:
  name: lonely
  labels: {app: lonely}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: node
    command: ["node", "-e", "require('http').createServer((q, s) => s.end('lonely')).listen(8080)"]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
`;
    const apply = async (yaml: string) => {
      const r = await run("kubectl", ["apply", "-n", NS, "-f", "-"], { env, input: yaml });
      assert.equal(r.code, 0, r.stderr);
    };
    await apply(lonely);
    const clusterIP = (
      await kubectl("get", "svc", "lonely", "-n", NS, "-o", "jsonpath={.spec.clusterIP}")
    ).stdout.trim();
    /** curl's exit code and its own time for one request from the client pod. */
    const attempt = async () => {
      const r = await inClient(
        'curl -sS -m 5 -o /dev/null -w "%{time_total}" "$0"; echo " $?"',
        `http://${clusterIP}/`,
      );
      const [seconds, code] = r.stdout.trim().split(/\s+/);
      return { code: Number(code), seconds: Number(seconds), stderr: r.stderr };
    };
    const refusedAtOnce = async (what: string) => {
      // The table follows the Endpoints within a moment; then every attempt is refused, never timed out.
      await until(what, async () => ((await attempt()).code === 7 ? true : undefined), 30_000, 250);
      for (let i = 0; i < 3; i++) {
        const a = await attempt();
        if (a.code !== 7) {
          // What the host's table said at that moment tells a route missing from it from a reset lost on the way.
          const now = (await run("nft", ["list", "table", "ip", TABLE])).stdout;
          assert.fail(
            `curl exit ${a.code} (7: connection refused): ${a.stderr}\nthe services table:\n${now}`,
          );
        }
        assert.ok(a.seconds < 1, `refused after ${a.seconds} s`);
        assert.match(a.stderr, /Couldn't connect|Connection refused/);
      }
    };
    await refusedAtOnce("the ClusterIP without endpoints is refused");
    const table = (await run("nft", ["list", "table", "ip", TABLE])).stdout;
    assert.match(table, new RegExp(`${clusterIP.replaceAll(".", "\\.")} \\. tcp \\. 80 : goto reject_chain`));
    await apply(backend);
    await until(
      "the ClusterIP answers from its one ready endpoint",
      async () => ((await attempt()).code === 0 ? true : undefined),
      60_000,
      250,
    );
    assert.equal((await kubectl("delete", "pod", "lonely", "-n", NS, "--wait=true")).code, 0);
    await refusedAtOnce("the ClusterIP is refused again once its endpoint is gone");
  });

  test("osm mesh down removes the daemon's services table with everything else", async () => {
    const down = await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    assert.equal(down.code, 0, down.stderr);
    assert.notEqual((await run("nft", ["list", "table", "ip", TABLE])).code, 0);
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });
});

/**
 * Issue 15: with live interception updates on (`osm install --set osm.liveInterceptionUpdates=true`, the
 * MeshConfig annotation `osm-ts.io/live-interception-updates: "true"`), OSM's outbound IP range exclusion guide
 * runs without its restart step. Egress is disabled, so a connection the sidecar gets is refused: a
 * connection that reaches the external host's server went direct. While each change is made, the pod keeps
 * connecting to the excluded and to another address in a bounded loop, and the server logs which of its
 * addresses each connection reached: none may ever reach the other address (fail closed), and the excluded
 * one switches once, never back and forth (never half applied). A hand-deleted rule and a hand-deleted set
 * element are restored and reported.
 * `enableEgress` follows live too: UDP to a non-excluded address is dropped, received once egress is
 * enabled, dropped again once disabled. Without the annotation the pod keeps its rules and is STALE, as in OSM.
 *
 * On either engine (`OSM_TEST_ENGINE`). On the embedded one the daemon's node agent does the updates; on the
 * real one (kube-controller-manager runs the DaemonSet controller) the daemon's updater is switched off (`osm
 * mesh up --no-live-interception`) and the osm-node DaemonSet (`osm install --set osm.nodeAgent.enabled=true`)
 * does them, from a pod of its own that finds the curl pod's network namespace through /proc, as its RBAC
 * allows: every assertion below then holds for the DaemonSet.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  hostLeftovers,
  localMesh,
  meshDownPurgeArgs,
  patchMeshConfig,
  testEngine,
} from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { run } from "../../support/run.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const OSM = join(REPO, "bin", "osm");
const PREFIX = "osmt-lv-";
const BRIDGE = "osmt-lv0";
const NS = "osmt-lv-app";
const EXTERNAL = "osmt-lv-ext";
const EXCLUDED = "203.0.113.3";
const OTHER = "203.0.113.4";
/** The real engine: the osm-node DaemonSet does the updates, not the daemon's own node agent. */
const DAEMONSET = testEngine() === "kubernetes";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

const APP = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: curl
spec:
  replicas: 1
  selector:
    matchLabels: {app: curl}
  template:
    metadata:
      labels: {app: curl}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: curl
        image: curlimages/curl
        command: ["sleep", "365d"]
`;

/**
 * HTTP on port 80 of the external host's addresses, logging `<address reached> <client>` per request to `log`;
 * UDP on port 9053, logging each datagram's text to `udpLog`.
 */
const server = (log: string, udpLog: string) =>
  `const fs = require("node:fs"); require("node:http").createServer((q, s) => {
     fs.appendFileSync(${JSON.stringify(log)}, q.socket.localAddress + " " + q.socket.remoteAddress + "\\n");
     s.end("ok");
   }).listen(80, "0.0.0.0");
   require("node:dgram").createSocket("udp4")
     .on("message", (m) => fs.appendFileSync(${JSON.stringify(udpLog)}, m.toString() + "\\n"))
     .bind(9053, "0.0.0.0")`;

/** In the pod: one datagram carrying a token; prints `sent`, or the send error (the egress filter's EPERM). */
const UDP_CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(sys.argv[2].encode(), (sys.argv[1], 9053))
    print("sent")
except OSError as e:
    print("send failed: " + e.strerror)`;

/** In the pod: for `seconds` (at most 3,000 rounds), one curl to each address per round: `<ms> <code> <code>`. */
const STREAM = `end=$(( $(date +%s) + $1 )); n=0
while [ "$(date +%s)" -lt "$end" ] && [ "$n" -lt 3000 ]; do
  a=$(curl -s -m 1 -o /dev/null -w '%{http_code}' http://${EXCLUDED}/)
  b=$(curl -s -m 1 -o /dev/null -w '%{http_code}' http://${OTHER}/)
  echo "$(date +%s%3N) $a $b"; n=$((n + 1))
done`;

interface Round {
  readonly at: number;
  readonly excluded: string;
  readonly other: string;
}

describe("live interception updates", { skip: rootSkip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  let upArgs: string[];
  let serverProcess: ChildProcess | undefined;
  let log: string;
  let udpLog: string;
  let pod = "";
  let podNetns = "";
  /** The osm-node pod's IP (its /metrics), on the real engine. */
  let nodeAgentIP = "";
  const kubectl = (...args: string[]) => run("kubectl", args, { env });
  const osm = (...args: string[]) => run(OSM, args, { env });
  /** The messages of `pod`'s Events with `reason`. */
  const podEvents = (pod: string, reason: string) =>
    kubectl(
      "get",
      "events",
      "-n",
      NS,
      "--field-selector",
      `involvedObject.name=${pod},reason=${reason}`,
      "-o",
      "jsonpath={.items[*].message}",
    );
  const patchExclusions = (list: string[]) =>
    patchMeshConfig(env, { spec: { traffic: { outboundIPRangeExclusionList: list } } });
  /** One curl from the pod: the HTTP code, `000` when refused. */
  const curlFromPod = (ip: string) =>
    kubectl(
      "exec",
      "-n",
      NS,
      pod,
      "-c",
      "curl",
      "--",
      "curl",
      "-s",
      "-m",
      "2",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://${ip}/`,
    );
  const reached = () =>
    readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split(" ")[0]!);

  /** Runs the stream for `seconds` while `change` runs (after 1 s); returns the rounds and when change ended. */
  async function streamDuring(seconds: number, change: () => Promise<void>) {
    const stream = run(
      "kubectl",
      ["exec", "-n", NS, pod, "-c", "curl", "--", "sh", "-c", STREAM, "stream", String(seconds)],
      { env, timeoutMs: (seconds + 30) * 1000 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    await change();
    const changedAt = Date.now();
    const out = await stream;
    assert.equal(out.code, 0, out.stderr);
    const rounds: Round[] = out.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(" "))
      .map(([at, excluded, other]) => ({ at: Number(at), excluded: excluded!, other: other! }));
    return { rounds, changedAt };
  }

  /** The excluded address's answers switch once, from `before` to the other state, never back. */
  function switchesOnce(rounds: readonly Round[], toDirect: boolean): Round {
    const ok = (r: Round) => (r.excluded === "200") === toDirect;
    const first = rounds.findIndex(ok);
    assert.ok(first > 0, `the change shows in the stream: ${JSON.stringify(rounds.slice(0, 5))}`);
    assert.ok(
      rounds.slice(0, first).every((r) => !ok(r)),
      "before the change the old behaviour, throughout",
    );
    const back = rounds.slice(first).find((r) => !ok(r));
    assert.equal(back, undefined, `after the switch the new behaviour, throughout (flapped at ${back?.at})`);
    return rounds[first]!;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-lv-"));
    log = join(dir, "server.log");
    writeFileSync(log, "");
    udpLog = join(dir, "udp.log");
    writeFileSync(udpLog, "");
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: BRIDGE,
      namePrefix: PREFIX,
      subnet4: "203.0.113.16/28",
      subnet6: "2001:db8:1:1e::/64",
      lastSlot: 14,
    }));
  });

  after(async () => {
    serverProcess?.kill();
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await hostLeftovers(PREFIX, BRIDGE), []);
  });

  test("osm install --set osm.liveInterceptionUpdates=true annotates the MeshConfig; the guide's pod runs", async () => {
    assert.equal((await osm(...upArgs, ...(DAEMONSET ? ["--no-live-interception"] : []))).code, 0);
    const install = await osm(
      "install",
      "--set",
      "osm.liveInterceptionUpdates=true",
      "--set",
      "osm.enableEgress=false",
      ...(DAEMONSET ? ["--set", "osm.nodeAgent.enabled=true"] : []),
    );
    assert.equal(install.code, 0, install.stderr);
    if (DAEMONSET) {
      assert.match(install.stdout, /daemonset\/osm-node \(osm-system\) created/);
      nodeAgentIP = await until(
        "the osm-node DaemonSet's pod 1/1 Running on the node, ready",
        async () => {
          const r = await kubectl(
            "get",
            "pods",
            "-n",
            "osm-system",
            "-l",
            "app=osm-node",
            "-o",
            "jsonpath={.items[*].spec.nodeName} {.items[*].status.containerStatuses[0].ready} {.items[*].status.podIP}",
          );
          const [node, ready, ip] = r.stdout.split(" ");
          return node === "osm-local" && ready === "true" && ip ? ip : undefined;
        },
        120_000,
        500,
      );
    }
    const annotation = await kubectl(
      "get",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "-o",
      "jsonpath={.metadata.annotations.osm-ts\\.io/live-interception-updates}",
    );
    assert.equal(annotation.stdout, "true");
    const ext = await osm(
      "mesh",
      "external-host",
      "add",
      EXTERNAL,
      "--address",
      `${EXCLUDED}/32`,
      `${OTHER}/32`,
      "--state-dir",
      stateDir,
    );
    assert.equal(ext.code, 0, ext.stderr);
    const netns = /netns (\S+?),/.exec(ext.stdout)?.[1] ?? "";
    serverProcess = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", server(log, udpLog)], {
      stdio: "ignore",
    });
    assert.equal((await kubectl("create", "namespace", NS)).code, 0);
    assert.equal((await osm("namespace", "add", NS)).code, 0);
    const applied = await run("kubectl", ["apply", "-n", NS, "-f", "-"], { env, input: APP });
    assert.equal(applied.code, 0, applied.stderr);
    pod = await until(
      "the meshed pod 2/2 Running",
      async () => {
        const r = await kubectl("get", "pods", "-n", NS, "-l", "app=curl", "--no-headers");
        const row = r.stdout.trim().split(/\s+/);
        return row[1] === "2/2" && row[2] === "Running" ? row[0] : undefined;
      },
      120_000,
      500,
    );
    const ip = (await kubectl("get", "pod", "-n", NS, pod, "-o", "jsonpath={.status.podIP}")).stdout;
    for (const ns of (await run("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]!)) {
      if (!ns.startsWith(PREFIX)) continue;
      if ((await run("ip", ["-n", ns, "-4", "-o", "addr", "show", "eth0"])).stdout.includes(` ${ip}/`))
        podNetns = ns;
    }
    assert.notEqual(podNetns, "", `the netns holding ${ip}`);
  });

  test("the patch adding the exclusion reaches the running pod within 2 s; nothing goes direct to the other address", async () => {
    const { rounds, changedAt } = await streamDuring(6, async () => {
      const patched = await patchExclusions([`${EXCLUDED}/32`]);
      assert.equal(patched.code, 0, patched.stderr);
    });
    const switched = switchesOnce(rounds, true);
    assert.ok(
      switched.at - changedAt <= 2000,
      `direct ${switched.at - changedAt} ms after the patch returned`,
    );
    assert.ok(
      rounds.every((r) => r.other !== "200"),
      "the other address is refused by the sidecar throughout",
    );
    assert.ok(!reached().includes(OTHER), "no connection reached the other address directly");

    const status = await osm("proxy", "status", "-n", NS);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`${pod}\\s+updated live at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+-`));
    const explained = await osm("explain", `pod/${pod}`, "-n", NS, `${EXCLUDED}:80`);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /verdict: direct/);
    assert.match(
      explained.stdout,
      /policy explained: the one recorded on the pod, applied live by the node agent at \d{4}-\d\d-\d\dT/,
    );
    const events = await podEvents(pod, "InterceptionUpdated");
    assert.match(
      events.stdout,
      /interception updated live \(nftables, one set-element transaction: 1 added, 0 removed\): \+203\.0\.113\.3\/32/,
    );
    // The node agent's metrics: on the daemon's control socket, or the osm-node pod's /metrics.
    const daemonMetrics = await run("curl", [
      "-sS",
      "--unix-socket",
      join(stateDir, "daemon.sock"),
      "http://daemon/metrics",
    ]);
    assert.equal(daemonMetrics.code, 0, daemonMetrics.stderr);
    const metrics = DAEMONSET
      ? await run("curl", ["-sS", "--max-time", "10", `http://${nodeAgentIP}:15129/metrics`])
      : daemonMetrics;
    assert.equal(metrics.code, 0, metrics.stderr);
    if (DAEMONSET) {
      assert.equal(daemonMetrics.stdout, "", "the daemon's own updater is off");
      const by = await kubectl(
        "get",
        "events",
        "-n",
        NS,
        "--field-selector",
        `involvedObject.name=${pod},reason=InterceptionUpdated`,
        "-o",
        "jsonpath={.items[*].reportingComponent}",
      );
      assert.match(by.stdout, /^osm-node( osm-node)*$/, "posted by the DaemonSet");
    }
    assert.match(metrics.stdout, /^osm_ts_interception_live_updates_total\{how="elements"\} [1-9]/m);
    assert.match(metrics.stdout, /^osm_ts_interception_live_update_failing_pods 0$/m);
  });

  test("a hand-deleted rule, then a hand-deleted set element, in the pod's netns are restored by the agent and reported", async () => {
    const listed = await run("ip", [
      "netns",
      "exec",
      podNetns,
      "nft",
      "-a",
      "list",
      "chain",
      "inet",
      "osm_proxy",
      "output",
    ]);
    const handle = /comment "osm\/output-to-outbound" # handle (\d+)/.exec(listed.stdout)?.[1];
    assert.ok(handle, listed.stdout);
    const deleted = await run("ip", [
      "netns",
      "exec",
      podNetns,
      "nft",
      "delete",
      "rule",
      "inet",
      "osm_proxy",
      "output",
      "handle",
      handle,
    ]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await until(
      "the rule restored",
      async () => {
        const r = await run("ip", [
          "netns",
          "exec",
          podNetns,
          "nft",
          "list",
          "chain",
          "inet",
          "osm_proxy",
          "output",
        ]);
        return r.stdout.includes('comment "osm/output-to-outbound"') ? true : undefined;
      },
      15_000,
      200,
    );
    const events = await until(
      "the InterceptionDriftRepaired event",
      async () => {
        const r = await podEvents(pod, "InterceptionDriftRepaired");
        return r.stdout !== "" ? r.stdout : undefined;
      },
      10_000,
      200,
    );
    assert.match(events, /differed from its policy and were restored .*chain output/);
    const other = await curlFromPod(OTHER);
    assert.equal(other.stdout, "000", "intercepted (and refused) again");

    // An element of a set: nothing but the set's contents differs (found by its digest, not a listing).
    const inPod = (...argv: string[]) => run("ip", ["netns", "exec", podNetns, "nft", ...argv]);
    const removed = await inPod("delete", "element", "inet", "osm_proxy", "out_ex4_hosts", `{ ${EXCLUDED} }`);
    assert.equal(removed.code, 0, removed.stderr);
    await until(
      "the element restored",
      async () => {
        const r = await inPod("list", "set", "inet", "osm_proxy", "out_ex4_hosts");
        return r.stdout.includes(EXCLUDED) ? true : undefined;
      },
      15_000,
      200,
    );
    const setEvents = await until(
      "the InterceptionDriftRepaired event naming the set",
      async () => {
        const r = await podEvents(pod, "InterceptionDriftRepaired");
        return r.stdout.includes("out_ex4_hosts") ? r.stdout : undefined;
      },
      10_000,
      200,
    );
    assert.match(setEvents, /set out_ex4_hosts: 0 elements \(the plan: 1\)/);
    assert.equal((await curlFromPod(EXCLUDED)).stdout, "200", "excluded again");
  });

  test("removing the entry makes the excluded address refused within 2 s, with no direct connection after the switch", async () => {
    const before = reached().length;
    const { rounds, changedAt } = await streamDuring(6, async () => {
      const patched = await patchExclusions([]);
      assert.equal(patched.code, 0, patched.stderr);
    });
    const switched = switchesOnce(rounds, false);
    assert.ok(
      switched.at - changedAt <= 2000,
      `refused ${switched.at - changedAt} ms after the patch returned`,
    );
    assert.ok(rounds.every((r) => r.other !== "200"));
    const direct = reached().slice(before);
    assert.ok(!direct.includes(OTHER));
    // Each 200 in the stream is one request the server saw: the rounds before the switch, and no more.
    assert.equal(direct.length, rounds.filter((r) => r.excluded === "200").length);
  });

  test("enableEgress toggled live: UDP to a non-excluded address is received once egress is on, dropped again once off", async () => {
    let sent = 0;
    /** One datagram to the other address from the pod: whether the far side logged it. */
    const udpReaches = async () => {
      const token = `lv-${process.pid}-${++sent}`;
      const r = await kubectl(
        "exec",
        "-n",
        NS,
        pod,
        "-c",
        "curl",
        "--",
        "python3",
        "-c",
        UDP_CLIENT,
        OTHER,
        token,
      );
      assert.equal(r.code, 0, r.stderr);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return readFileSync(udpLog, "utf8").split("\n").includes(token);
    };
    const setEgress = async (enableEgress: boolean) => {
      const patched = await patchMeshConfig(env, { spec: { traffic: { enableEgress } } });
      assert.equal(patched.code, 0, patched.stderr);
    };
    assert.equal(await udpReaches(), false, "egress disabled: dropped");
    await setEgress(true);
    await until(
      "UDP received with egress enabled",
      async () => ((await udpReaches()) ? true : undefined),
      20_000,
      200,
    );
    const events = await podEvents(pod, "InterceptionUpdated");
    assert.match(events.stdout, /our rules replaced in one transaction.*non-TCP egress/);
    const status = await osm("proxy", "status", "-n", NS);
    assert.match(status.stdout, new RegExp(`${pod}\\s+updated live at \\S+\\s+-`));

    await setEgress(false);
    await until("UDP dropped again", async () => ((await udpReaches()) ? undefined : true), 20_000, 200);
    // Dropped from then on, not by chance once.
    for (let i = 0; i < 3; i++) assert.equal(await udpReaches(), false);
    assert.equal((await curlFromPod(OTHER)).stdout, "000", "TCP to the other address refused by the sidecar");
  });

  test("without the annotation the running pod keeps its rules and is STALE, as in OSM", async () => {
    const off = await kubectl(
      "annotate",
      "meshconfig",
      "osm-mesh-config",
      "-n",
      "osm-system",
      "osm-ts.io/live-interception-updates-",
    );
    assert.equal(off.code, 0, off.stderr);
    assert.equal((await patchExclusions([`${EXCLUDED}/32`])).code, 0);
    await new Promise((r) => setTimeout(r, 2000));
    const curl = await curlFromPod(EXCLUDED);
    assert.equal(curl.stdout, "000", "still intercepted: the pod runs what it had");
    const status = await osm("proxy", "status", "-n", NS);
    assert.match(status.stdout, new RegExp(`${pod}\\s+STALE\\s+\\+203\\.0\\.113\\.3/32`));
  });

  test("osm uninstall mesh removes the osm-node DaemonSet and its identity where installed, and says nothing of it otherwise", async () => {
    const r = await osm("uninstall", "mesh");
    assert.equal(r.code, 0, r.stderr);
    if (DAEMONSET) {
      for (const object of [
        "daemonset/osm-node (osm-system) deleted",
        "serviceaccount/osm-node (osm-system) deleted",
        "clusterrole/osm-node-osm deleted",
        "clusterrolebinding/osm-node-osm deleted",
        "role/osm-node-osm (osm-system) deleted",
        "rolebinding/osm-node-osm (osm-system) deleted",
      ])
        assert.ok(r.stdout.includes(object), `${object}: ${r.stdout}`);
      assert.notEqual((await kubectl("get", "daemonset", "osm-node", "-n", "osm-system")).code, 0);
    } else {
      assert.doesNotMatch(r.stdout, /osm-node/);
    }
  });
});

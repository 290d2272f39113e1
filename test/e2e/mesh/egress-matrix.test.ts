/**
 * Issue 12's matrix on a running mesh: `osm mesh up` + `osm install`, egress disabled, real pods in their own
 * network namespaces, and a far side (an external host on 203.0.113.21-23 and 2001:db8::21-22) that serves
 * HTTP and logs every UDP datagram it gets. Every path out of a meshed pod is tried for real, and `osm explain
 * pod/…` must say the same as what happened: TCP and UDP v4/v6 to excluded and non-excluded addresses, DNS to
 * the pod's own resolver (its resolv.conf, not the host's), ICMP v4/v6, IPv6 under the iptables backend, the
 * proxy uid by runAsUser (refused at admission) and by setuid (out but reported by explain, proxy status and
 * an EgressBypassPossible Event in default mode; closed in strict mode), and a pod with 3,000 /32 exclusions
 * (osm-init fetches a policy that large; the 100,000 case is test/e2e/mesh/large-exclusions.test.ts).
 * The table (path | expected | observed | explain says) is printed; each row is asserted.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { localMesh, meshDownPurgeArgs } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { type Ran, run } from "../../support/run.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const OSM = join(REPO, "bin", "osm");
const NS = "osmt-mx";
const rootSkip =
  process.getuid?.() === 0 ? false : "needs root: the daemon creates network namespaces and a bridge";

/** The far side: refused (not excluded), direct (excluded mesh-wide), big (excluded by the big pod only). */
const FAR = {
  refused4: "203.0.113.21",
  direct4: "203.0.113.22",
  big4: "203.0.113.23",
  refused6: "2001:db8::21",
  direct6: "2001:db8::22",
};
/** Each far-side address with what should happen to it: `blocked` when not excluded, `open` when excluded. */
function farSide<B extends string, O extends string>(blocked: B, open: O): [string, B | O][] {
  return [
    [FAR.refused4, blocked],
    [FAR.refused6, blocked],
    [FAR.direct4, open],
    [FAR.direct6, open],
  ];
}
const MESH_EXCLUSIONS = [`${FAR.direct4}/32`, `${FAR.direct6}/128`];

/** HTTP on :80 and UDP on :53 (both families) in the external host; each datagram is logged as `udp TOKEN`. */
const FAR_SERVER = `
const http = require("node:http");
const dgram = require("node:dgram");
let up = 0;
const ready = () => { if (++up === 3) console.log("ready"); };
http.createServer((q, r) => { console.log("http " + q.url); r.end("far side\\n"); }).listen(80, "::", ready);
for (const type of ["udp4", "udp6"]) {
  const s = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  s.on("message", (m, r) => { console.log("udp " + m.toString()); s.send("echo", r.port, r.address); });
  s.bind(53, type === "udp4" ? "0.0.0.0" : "::", ready);
}`;

/** One datagram carrying a token; prints reply, silent, or the send error (the filter may refuse at once). */
const UDP_CLIENT = `
import socket, sys, select
ip, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(token.encode(), (ip, port))
    print("reply" if select.select([s], [], [], 1.5)[0] else "silent")
except OSError as e:
    print("send failed: " + e.strerror)`;

/** One ICMP echo on a raw socket (root with CAP_NET_RAW, as a container has); reply or silent. */
const ICMP_CLIENT = `
import socket, sys, select, time
ip = sys.argv[1]
v6 = ":" in ip
def checksum(b):
    s = sum((b[i] << 8) + b[i + 1] for i in range(0, len(b) - 1, 2)) + (b[-1] << 8 if len(b) % 2 else 0)
    s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
body = bytes([128 if v6 else 8, 0, 0, 0, 0x4f, 0x53, 0, 1]) + b"osm-ts"
if not v6:
    c = checksum(body); body = body[:2] + bytes([c >> 8, c & 0xFF]) + body[4:]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
try:
    s.sendto(body, (ip, 0))
except OSError as e:
    print("send failed: " + e.strerror); sys.exit(0)
deadline = time.time() + 1.5
while time.time() < deadline:
    if not select.select([s], [], [], max(0, deadline - time.time()))[0]: break
    data, frm = s.recvfrom(2048)
    icmp = data if v6 else data[(data[0] & 0x0F) * 4:]
    if frm[0] == ip and icmp[0] == (129 if v6 else 0): print("reply"); sys.exit(0)
print("silent")`;

/** What a root app with CAP_SETUID runs to become the sidecar's uid. */
const AS_PROXY_UID = ["setpriv", "--reuid", "1500", "--regid", "1500", "--clear-groups"];

/** A bare pod that sleeps, with extra pod-level fields (annotations, securityContext). */
function podManifest(
  name: string,
  extra: { annotations?: Record<string, string>; securityContext?: Record<string, unknown> } = {},
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app: name }, annotations: extra.annotations ?? {} },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(extra.securityContext ? { securityContext: extra.securityContext } : {}),
      containers: [{ name: "app", image: "curlimages/curl", command: ["sleep", "365d"] }],
    },
  });
}

interface Row {
  readonly path: string;
  readonly expected: string;
  readonly observed: string;
  readonly explain: string;
}

/** The verdict line of `osm explain pod/…`, shortened for the table (with its uid 1500 warning if asked). */
function explainSays(out: string, warning = false): string {
  const verdict = /^verdict: (.*)$/m.exec(out)?.[1] ?? `(no verdict) ${out.trim()}`;
  const short = verdict.startsWith("outbound sidecar")
    ? `sidecar → ${/→ (\w+)/.exec(verdict)?.[1] ?? "?"}`
    : (verdict.split(/[:(]/)[0]?.trim() ?? verdict);
  return warning && /WARNING: egress is disabled, but a process that switches to uid 1500/.test(out)
    ? `${short} + WARNING: uid 1500 reachable`
    : short;
}

describe("the egress matrix on a running mesh (egress disabled)", {
  skip: rootSkip,
  concurrency: false,
}, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;
  let kubeconfig: string;
  let upArgs: string[];
  let far: ChildProcess | undefined;
  let farLog = "";
  let resolver = "";
  const rows: Row[] = [];
  const kubectl = (args: readonly string[], input?: string) =>
    run("kubectl", args, { env, ...(input ? { input } : {}) });
  const osm = (...args: string[]) => run(OSM, args, { env, timeoutMs: 120_000 });
  const exec = (pod: string, ...argv: string[]): Promise<Ran> =>
    kubectl(["exec", "-n", NS, pod, "-c", "app", "--", ...argv]);
  let tokens = 0;
  const token = () => `osmt-mx-${++tokens}`;
  const explain = async (pod: string, dest: string, protocol = "tcp") => {
    const r = await osm("explain", `pod/${pod}`, "-n", NS, "--protocol", protocol, dest);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const hostPort = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

  /** Creates the pod and waits until it is 2/2 Running (its osm-init programmed the rules). */
  const startPod = async (manifest: string) => {
    const name = (JSON.parse(manifest) as { metadata: { name: string } }).metadata.name;
    const applied = await kubectl(["apply", "-f", "-"], manifest);
    assert.equal(applied.code, 0, applied.stderr);
    let last = "";
    await until(
      `${name} 2/2 Running`,
      async () => {
        const r = await kubectl(["get", "pod", "-n", NS, name, "--no-headers"]);
        last = r.stdout.trim();
        const [, ready, status] = last.split(/\s+/);
        return ready === "2/2" && status === "Running" ? true : undefined;
      },
      60_000,
      250,
    ).catch(async (error: Error) => {
      const init = await kubectl([
        "get",
        "pod",
        "-n",
        NS,
        name,
        "-o",
        "jsonpath={.status.initContainerStatuses[0].lastState.terminated.message}",
      ]);
      throw new Error(`${error.message}: ${last}; osm-init: ${init.stdout}`);
    });
    return name;
  };

  /**
   * curl from the pod (through `prefix`, e.g. setpriv); `200` or `refused (exit N)`, and whether the far side
   * logged the request.
   */
  const curl = async (pod: string, ip: string, prefix: string[] = []) => {
    const path = token();
    const r = await exec(
      pod,
      ...prefix,
      "curl",
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--max-time",
      "5",
      `http://${hostPort(ip, 80)}/${path}`,
    );
    const got = farLog.includes(`http /${path}\n`);
    const error = r.stderr
      .trim()
      .split("\n")[0]
      ?.replace(/Failed to connect to \S+ port \d+ after \d+ ms: /, "");
    return { got, observed: r.code === 0 ? r.stdout.trim() : `exit ${r.code}: ${error}` };
  };

  /** One datagram with a fresh token; what the far side logged decides (the client's view is secondary). */
  const udp = async (pod: string, ip: string, port: number) => {
    const sent = token();
    const r = await exec(pod, "python3", "-c", UDP_CLIENT, ip, String(port), sent);
    assert.equal(r.code, 0, r.stderr);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const got = farLog.includes(`udp ${sent}\n`);
    return { got, observed: got ? "received by the far side" : `nothing received (${r.stdout.trim()})` };
  };

  const icmp = async (pod: string, ip: string) => {
    const r = await exec(pod, "python3", "-c", ICMP_CLIENT, ip);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-mx-"));
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: "osmt-mx0",
      namePrefix: "osmt-mx-",
      subnet4: "203.0.113.32/27",
      subnet6: "2001:db8:1:b::/64",
      lastSlot: 30,
    }));
    const up = await osm(...upArgs);
    assert.equal(up.code, 0, up.stderr);
    const install = await osm(
      "install",
      "--set",
      "osm.enableEgress=false",
      "--set",
      `osm.outboundIPRangeExclusionList={${MESH_EXCLUSIONS.join(",")}}`,
    );
    assert.equal(install.code, 0, install.stdout + install.stderr);
    const host = await osm(
      "mesh",
      "external-host",
      "add",
      "osmt-mx-far",
      "--state-dir",
      stateDir,
      "--address",
      ...Object.values(FAR),
    );
    assert.equal(host.code, 0, host.stderr);
    const netns = /netns (\S+?),/.exec(host.stdout)?.[1];
    assert.ok(netns, host.stdout);
    far = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", FAR_SERVER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    far.stdout?.setEncoding("utf8");
    far.stdout?.on("data", (chunk: string) => {
      farLog += chunk;
    });
    await until(
      "the far side listens",
      async () => (farLog.includes("ready\n") ? true : undefined),
      15_000,
      50,
    );
    assert.equal((await kubectl(["create", "namespace", NS])).code, 0);
    const added = await osm("namespace", "add", NS);
    assert.equal(added.code, 0, added.stderr);
  });

  after(async () => {
    if (far?.pid !== undefined && far.exitCode === null) process.kill(far.pid);
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
    const width = (k: keyof Row) => Math.max(k.length, ...rows.map((r) => r[k].length));
    const line = (r: Row) =>
      `| ${(["path", "expected", "observed", "explain"] as const).map((k) => r[k].padEnd(width(k))).join(" | ")} |`;
    process.stdout.write(
      `\n${line({ path: "path", expected: "expected", observed: "observed", explain: "explain says" })}\n` +
        `${rows.map(line).join("\n")}\n`,
    );
  });

  test("TCP v4/v6: non-excluded refused by the sidecar, excluded direct (200)", async () => {
    await startPod(podManifest("app"));
    for (const [ip, expected] of farSide("refused", "200")) {
      const { got, observed } = await curl("app", ip);
      const says = explainSays(await explain("app", hostPort(ip, 80)));
      rows.push({ path: `TCP ${hostPort(ip, 80)}`, expected, observed, explain: says });
      if (expected === "200") assert.equal(observed, "200");
      else assert.equal(observed, "exit 7: curl: (7) Couldn't connect to server");
      assert.equal(got, expected === "200");
      assert.match(says, expected === "200" ? /^direct/ : /^sidecar → refused/);
    }
  });

  test("UDP v4/v6: non-excluded dropped, excluded received, DNS only to the pod's own resolver", async () => {
    for (const [ip, expected] of farSide("dropped", "received")) {
      const { got, observed } = await udp("app", ip, 53);
      const says = explainSays(await explain("app", hostPort(ip, 53), "udp"));
      rows.push({ path: `UDP ${hostPort(ip, 53)}`, expected, observed, explain: says });
      assert.equal(got, expected === "received", `UDP ${ip}: ${observed}`);
      assert.match(says, expected === "received" ? /^direct/ : /^dropped/);
    }
    // The pod's resolver is the node's cluster DNS on the bridge gateway (its resolv.conf): not the host's.
    const conf = await exec("app", "cat", "/etc/resolv.conf");
    resolver = /^nameserver (\S+)/m.exec(conf.stdout)?.[1] ?? "";
    assert.match(resolver, /^203\.0\.113\.\d+$/, conf.stdout);
    const lookup = await exec("app", "getent", "hosts", "osm-controller.osm-system.svc.cluster.local");
    const dns = await explain("app", `${resolver}:53`, "udp");
    const says = explainSays(dns);
    const observed = lookup.code === 0 ? `answered (${lookup.stdout.trim().split(/\s+/)[0]})` : "no answer";
    rows.push({
      path: `DNS to the pod's resolver ${resolver}:53`,
      expected: "answered",
      observed,
      explain: says,
    });
    assert.equal(lookup.code, 0, `DNS lookup through ${resolver}: ${lookup.stderr}`);
    // Read from the host's /etc/resolv.conf instead, the resolver would not be one: explain would say dropped.
    assert.doesNotMatch(
      readFileSync("/etc/resolv.conf", "utf8"),
      new RegExp(`^nameserver ${resolver}$`, "m"),
    );
    assert.match(says, /^direct/);
    assert.match(dns, new RegExp(`entry ${resolver}(/32)? from: the pod's DNS resolvers`));
  });

  test("ICMP v4/v6: non-excluded dropped, excluded answered", async () => {
    for (const [ip, expected] of farSide("silent", "reply")) {
      const observed = await icmp("app", ip);
      const says = explainSays(await explain("app", hostPort(ip, 1), "icmp"));
      rows.push({ path: `ICMP echo ${ip}`, expected, observed, explain: says });
      assert.ok(
        observed.startsWith(expected) || (expected === "silent" && observed.startsWith("send failed")),
      );
      assert.match(says, expected === "reply" ? /^direct/ : /^dropped/);
    }
  });

  test("proxy uid by runAsUser: 1500: the injector refuses the pod", async () => {
    const r = await kubectl(
      ["apply", "-f", "-"],
      podManifest("uid1500", { securityContext: { runAsUser: 1500 } }),
    );
    const denial = r.stderr.trim();
    rows.push({
      path: "app runAsUser: 1500",
      expected: "refused at admission",
      observed: `denied: ${denial.replace(/^[\s\S]*?denied the request: /, "").split(":")[0]}`,
      explain: "(no pod)",
    });
    assert.notEqual(r.code, 0);
    assert.match(
      denial,
      /admission webhook "osm-inject\.k8s\.io" denied the request: container "app" would run as uid 1500 \(spec\.securityContext\.runAsUser\), the sidecar's uid: its traffic would bypass the sidecar/,
    );
    assert.equal((await kubectl(["get", "pod", "-n", NS, "uid1500"])).code, 1, "nothing was created");
  });

  /** The EgressBypassPossible events recorded on `pod`. */
  const bypassEvents = async (pod: string) => {
    const r = await kubectl(["get", "events", "-n", NS, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const items = (
      JSON.parse(r.stdout) as {
        items: { reason?: string; type?: string; message?: string; involvedObject?: { name?: string } }[];
      }
    ).items;
    return items.filter((e) => e.reason === "EgressBypassPossible" && e.involvedObject?.name === pod);
  };

  test("proxy uid by setuid, default mode: it gets out, and explain, proxy status and an Event say so", async () => {
    const { got, observed } = await curl("app", FAR.refused4, AS_PROXY_UID);
    const out = await explain("app", hostPort(FAR.refused4, 80));
    const status = await osm("proxy", "status", "-n", NS);
    const describe = await until(
      "the EgressBypassPossible event on pod app",
      async () => {
        const d = await kubectl(["describe", "pod", "-n", NS, "app"]);
        return /EgressBypassPossible/.test(d.stdout) ? d.stdout : undefined;
      },
      30_000,
      250,
    );
    rows.push({
      path: `setpriv --reuid 1500 curl ${FAR.refused4}:80 (root app)`,
      expected: "200, reported",
      observed: `${observed}; proxy status, Event EgressBypassPossible`,
      explain: explainSays(out, true),
    });
    assert.equal(observed, "200");
    assert.ok(got, "the far side saw the request");
    assert.match(
      out,
      /WARNING: egress is disabled, but a process that switches to uid 1500 \(the sidecar's\) goes out directly, unchecked:\n {2}container "app" runs as its image's user \(root unless the image says otherwise\) with CAP_SETUID/,
    );
    assert.match(
      status.stdout,
      /osmt-mx\/app: WARNING: egress is disabled, but .*\n {2}container "app" runs as/,
    );
    // kubectl describe pod: Warning  EgressBypassPossible  …  osm-controller  egress is disabled, but …
    assert.match(
      describe,
      /Warning\s+EgressBypassPossible\s+\S+\s+osm-controller\s+egress is disabled, but its traffic can bypass the sidecar: container "app" runs as .* with CAP_SETUID: it can switch to uid 1500/,
    );
    // Once per pod: the controller keeps reconciling (the pods below), the event stays one.
    assert.equal((await bypassEvents("app")).length, 1);
  });

  test("proxy uid by setuid, strict mode: setpriv is not permitted and nothing gets out", async () => {
    await startPod(podManifest("strict", { annotations: { "osm-ts.io/egress-strict": "enabled" } }));
    const viaSetpriv = await curl("strict", FAR.refused4, AS_PROXY_UID);
    const plain = await curl("strict", FAR.refused4);
    const out = await explain("strict", hostPort(FAR.refused4, 80));
    rows.push({
      path: `setpriv --reuid 1500 curl ${FAR.refused4}:80 (egress-strict)`,
      expected: "not permitted",
      observed: viaSetpriv.observed,
      explain: explainSays(out, true),
    });
    assert.match(viaSetpriv.observed, /^exit \d+: setpriv: setresuid failed: Operation not permitted$/);
    assert.equal(viaSetpriv.got, false);
    assert.match(plain.observed, /^exit 7: /);
    assert.equal(plain.got, false);
    assert.match(explainSays(out, true), /^sidecar → refused$/, "no uid 1500 warning for a strict pod");
    const dropped = await kubectl([
      "get",
      "pod",
      "-n",
      NS,
      "strict",
      "-o",
      "jsonpath={.spec.containers[0].securityContext.capabilities.drop}",
    ]);
    assert.match(dropped.stdout, /SETUID.*SETGID/);
    // The controller had every chance (the app pod's event is there): none for this pod.
    await until(
      "the controller recorded the app pod's event",
      async () => ((await bypassEvents("app")).length === 1 ? true : undefined),
      10_000,
      250,
    );
    assert.deepEqual(await bypassEvents("strict"), []);
  });

  test("3,000 /32 exclusions on a pod: it starts, and an excluded address goes direct", async () => {
    // Every other address of 10.50.0.0/19: 3,000 entries that do not aggregate, plus the far side's .23.
    const list = Array.from({ length: 2999 }, (_, i) => `10.50.${i >> 7}.${(i & 127) * 2}/32`);
    list.push(`${FAR.big4}/32`);
    const started = performance.now();
    await startPod(
      podManifest("big", {
        annotations: { "openservicemesh.io/outbound-ip-range-exclusion-list": list.join(",") },
      }),
    );
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const direct = await curl("big", FAR.big4);
    const refused = await curl("big", FAR.refused4);
    const says = explainSays(await explain("big", hostPort(FAR.big4, 80)));
    rows.push({
      path: `3,000 /32 exclusions: TCP ${FAR.big4}:80`,
      expected: "starts, 200",
      observed: `2/2 Running in ${seconds} s, ${direct.observed}`,
      explain: says,
    });
    assert.equal(direct.observed, "200");
    assert.equal(refused.got, false, "a destination not in the list is still refused");
    assert.match(says, /^direct/);
  });

  test("IPv6 under the iptables backend: intercepted, refused, UDP dropped", async () => {
    // Switch the injector to OSM's iptables script (osm.interceptionBackend), then admit a pod with it.
    const deployment = JSON.parse(
      (await kubectl(["get", "deployment", "osm-injector", "-n", "osm-system", "-o", "json"])).stdout,
    ) as { spec: { template: { spec: { containers: { command: string[] }[] } } } };
    const command = deployment.spec.template.spec.containers[0]?.command ?? [];
    const at = command.indexOf("--interception-backend");
    assert.ok(at > 0, command.join(" "));
    const patched = await kubectl([
      "patch",
      "deployment",
      "osm-injector",
      "-n",
      "osm-system",
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "replace", path: `/spec/template/spec/containers/0/command/${at + 1}`, value: "iptables" },
      ]),
    ]);
    assert.equal(patched.code, 0, patched.stderr);
    const rollout = await run(
      "kubectl",
      ["rollout", "status", "deployment/osm-injector", "-n", "osm-system", "--timeout=90s"],
      { env, timeoutMs: 100_000 },
    );
    assert.equal(rollout.code, 0, rollout.stderr);
    await startPod(podManifest("ipt"));
    const verify = await explain("ipt", hostPort(FAR.refused6, 80));
    assert.match(verify, /rules in the pod's network namespace \S+ \(iptables-(nft|legacy)\): as recorded/);
    for (const [what, ip, expected] of [
      ["TCP", FAR.refused6, "refused"],
      ["TCP", FAR.refused4, "refused"],
      ["TCP", FAR.direct6, "200"],
      ["UDP", FAR.refused6, "dropped"],
    ] as const) {
      const port = what === "TCP" ? 80 : 53;
      const result = what === "TCP" ? await curl("ipt", ip) : await udp("ipt", ip, port);
      const says = explainSays(await explain("ipt", hostPort(ip, port), what.toLowerCase()));
      rows.push({
        path: `iptables backend: ${what} ${hostPort(ip, port)}`,
        expected,
        observed: result.observed,
        explain: says,
      });
      assert.equal(result.got, expected === "200", `${what} ${ip}: ${result.observed}`);
      assert.match(
        says,
        expected === "200" ? /^direct/ : expected === "refused" ? /^sidecar → refused/ : /^dropped/,
      );
    }
  });
});

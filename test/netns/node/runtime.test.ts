import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  SIDECAR_TOKEN_FILE,
  sidecarTokenMount,
  sidecarTokenVolume,
} from "../../../src/config/sidecar-token.ts";
import { buildPodStatus } from "../../../src/local/node/pod-status.ts";
import type { NodeRuntime } from "../../../src/local/node/runtime.ts";
import { writeTokenFile } from "../../../src/local/node/service-account-tokens.ts";
import {
  alive,
  allRunning,
  destroyRuntime,
  execIn,
  leftovers,
  logsOf,
  makePod,
  newRuntime,
  rootSkip,
  TEST_NETWORK,
  waitFor,
} from "./harness.ts";

const uid = (p: V1Pod) => p.metadata?.uid ?? "";

describe("the node runtime on a test bridge", { skip: rootSkip, concurrency: false }, () => {
  let runtime: NodeRuntime;
  let stateDir: string;
  let hostServer: Server;
  let scratch: string;

  before(async () => {
    ({ runtime, stateDir } = newRuntime());
    await runtime.start();
    scratch = mkdtempSync("/tmp/osmt-nd-scratch-");
    chmodSync(scratch, 0o777);
    // A server on the host's own bridge address: pods must reach it through their default route.
    hostServer = createServer((_req, res) => res.end("hello from the host\n"));
    await new Promise<void>((r) => hostServer.listen(0, runtime.plan.gateway4, r));
  });

  after(async () => {
    hostServer?.close();
    if (runtime) await destroyRuntime(runtime, stateDir);
    rmSync(scratch, { recursive: true, force: true });
    assert.deepEqual(await leftovers(), []);
  });

  test("two pods on the bridge reach each other over IPv4 and IPv6, and the host's bridge address", async () => {
    const server = makePod({ containers: [{ name: "httpbin", image: "kennethreitz/httpbin" }] });
    const client = makePod({
      containers: [{ name: "curl", image: "curlimages/curl", command: ["sleep", "3600"] }],
    });
    runtime.runPod(server);
    runtime.runPod(client);
    const sv = await waitFor(runtime, uid(server), allRunning, "httpbin running");
    const cv = await waitFor(runtime, uid(client), allRunning, "curl running");
    const [ip4, ip6] = sv.podIPs;
    // No forwarding off the bridge, even if the host forwards IPv4 globally.
    assert.equal(
      readFileSync(`/proc/sys/net/ipv4/conf/${TEST_NETWORK.bridge}/forwarding`, "utf8").trim(),
      "0",
    );
    assert.match(ip4 ?? "", /^198\.51\.100\.(1[3-8]\d|19\d)$/);
    assert.match(ip6 ?? "", /^2001:db8:1:1::/);
    // httpbin may take a moment to listen after its process started.
    let got = { exitCode: -1, stdout: "", stderr: "" };
    for (let i = 0; i < 40 && got.exitCode !== 0; i++) {
      got = await execIn(runtime, client, ["curl", "-sS", "-m", "2", `http://${ip4}/ip`]);
      if (got.exitCode !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got.exitCode, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).origin, cv.podIPs[0]);
    const head = await execIn(runtime, client, ["curl", "-sSI", "-m", "3", `http://[${ip6}]:80/`]);
    assert.match(head.stdout, /^HTTP\/1\.1 200 OK/);
    const port = (hostServer.address() as { port: number }).port;
    const host = await execIn(runtime, client, [
      "curl",
      "-sS",
      "-m",
      "3",
      `http://${runtime.plan.gateway4}:${port}/`,
    ]);
    assert.equal(host.stdout, "hello from the host\n");
    // pods/proxy: the API server's path into the pod.
    const proxied = await runtime.proxyHttp(
      { namespace: "t", pod: server.metadata?.name ?? "", port: 80, path: "/status/418", method: "GET" },
      AbortSignal.timeout(5000),
    );
    assert.equal(proxied.status, 418);
    await Promise.all([runtime.killPod(uid(server), 1), runtime.killPod(uid(client), 1)]);
  });

  test("init containers run in order to completion before the containers start", async () => {
    const file = join(scratch, "order");
    const pod = makePod({
      initContainers: [
        { name: "first", image: "busybox", command: ["sh", "-c", `sleep 0.2; echo first >> ${file}`] },
        { name: "second", image: "busybox", command: ["sh", "-c", `echo second >> ${file}`] },
      ],
      containers: [
        { name: "main", image: "busybox", command: ["sh", "-c", `echo main >> ${file}; exec sleep 3600`] },
      ],
    });
    runtime.runPod(pod);
    const v = await waitFor(runtime, uid(pod), allRunning, "main running");
    assert.equal(v.initialized, true);
    await waitFor(runtime, uid(pod), () => readFileSync(file, "utf8").includes("main"), "main wrote");
    assert.equal(readFileSync(file, "utf8"), "first\nsecond\nmain\n");
    const status = buildPodStatus(runtime.view(uid(pod)) as never, new Date());
    assert.equal(status.phase, "Running");
    assert.deepEqual(
      status.initContainerStatuses?.map((c) => [c.name, c.state?.terminated?.reason]),
      [
        ["first", "Completed"],
        ["second", "Completed"],
      ],
    );
    await runtime.killPod(uid(pod), 1);
  });

  test("a failing init container fails the pod under restartPolicy Never, and its containers never run", async () => {
    const marker = join(scratch, "never-ran");
    const pod = makePod({
      restartPolicy: "Never",
      initContainers: [{ name: "init", image: "busybox", command: ["sh", "-c", "echo boom >&2; exit 3"] }],
      containers: [{ name: "main", image: "busybox", command: ["sh", "-c", `touch ${marker}; sleep 3600`] }],
    });
    runtime.runPod(pod);
    const v = await waitFor(runtime, uid(pod), (x) => x.initFailed, "init failed");
    const status = buildPodStatus(v, new Date());
    assert.equal(status.phase, "Failed");
    assert.deepEqual(status.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    assert.equal(status.initContainerStatuses?.[0]?.state?.terminated?.reason, "Error");
    assert.equal(status.containerStatuses?.[0]?.state?.waiting?.reason, "PodInitializing");
    assert.equal(await logsOf(runtime, pod, "init"), "boom\n");
    assert.throws(() => readFileSync(marker));
    // A finished pod gives its netns and address back at once; its status and logs stay.
    const sandbox = v.sandbox ?? "";
    for (let i = 0; i < 100 && (await leftovers()).includes(sandbox); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal((await leftovers()).includes(sandbox), false);
    assert.equal(buildPodStatus(runtime.view(uid(pod)) as never, new Date()).podIP, v.podIPs[0]);
    await runtime.killPod(uid(pod), 0);
  });

  test("a failing init container is retried with back-off (Init:CrashLoopBackOff) under restartPolicy Always", async () => {
    const pod = makePod({
      initContainers: [{ name: "init", image: "busybox", command: ["sh", "-c", "exit 1"] }],
      containers: [{ name: "main", image: "busybox", command: ["sleep", "3600"] }],
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => (x.initContainers[0]?.restartCount ?? 0) >= 2 && "waiting" in (x.initContainers[0]?.state ?? {}),
      "init restarted twice",
    );
    const init = buildPodStatus(v, new Date()).initContainerStatuses?.[0];
    assert.equal(init?.state?.waiting?.reason, "CrashLoopBackOff");
    assert.equal(init?.lastState?.terminated?.exitCode, 1);
    assert.equal(v.initialized, false);
    assert.equal(v.containers[0]?.started, false);
    await runtime.killPod(uid(pod), 0);
  });

  test("env fieldRef status.podIP and $(VAR) expansion reach the container", async () => {
    const pod = makePod({
      containers: [
        {
          name: "c",
          image: "busybox",
          command: ["sh", "-c", "echo ip=$POD_IP say=$(GREETING); exec sleep 3600"],
          env: [
            { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
            { name: "GREETING", value: "hi-$(POD_IP)" },
          ],
        },
      ],
    });
    runtime.runPod(pod);
    const v = await waitFor(runtime, uid(pod), allRunning, "running");
    const ip = v.podIPs[0];
    let logs = "";
    for (let i = 0; i < 40 && !logs; i++) {
      logs = await logsOf(runtime, pod);
      if (!logs) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(logs, `ip=${ip} say=hi-${ip}\n`);
    await runtime.killPod(uid(pod), 0);
  });

  test("runAsUser and runAsGroup are honoured for the container and for exec", async () => {
    const pod = makePod({
      securityContext: { runAsGroup: 2345 },
      containers: [
        {
          name: "c",
          image: "busybox",
          command: ["sh", "-c", "id -u; id -g; exec sleep 3600"],
          securityContext: { runAsUser: 1500 },
        },
      ],
    });
    runtime.runPod(pod);
    await waitFor(runtime, uid(pod), allRunning, "running");
    const id = await execIn(runtime, pod, ["id", "-u"]);
    assert.deepEqual([id.exitCode, id.stdout], [0, "1500\n"]);
    let logs = "";
    for (let i = 0; i < 40 && !logs.includes("\n2345"); i++) {
      logs = await logsOf(runtime, pod);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(logs, "1500\n2345\n");
    await runtime.killPod(uid(pod), 0);
  });

  test("a command the container's uid cannot execute fails the container with a clear reason", async () => {
    const dir = mkdtempSync("/tmp/osmt-nd-private-");
    const script = join(dir, "run.sh");
    writeFileSync(script, "#!/bin/sh\nsleep 3600\n", { mode: 0o700 });
    chmodSync(dir, 0o700);
    const pod = makePod({
      restartPolicy: "Never",
      containers: [{ name: "c", image: "busybox", command: [script], securityContext: { runAsUser: 1500 } }],
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => "terminated" in (x.containers[0]?.state ?? {}),
      "start error",
    );
    const t = buildPodStatus(v, new Date()).containerStatuses?.[0]?.state?.terminated;
    assert.equal(t?.reason, "StartError");
    assert.match(t?.message ?? "", /permission denied: directory .* is not searchable by uid 1500/);
    await runtime.killPod(uid(pod), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a container without a command and an unknown image fails with a clear reason", async () => {
    const pod = makePod({
      restartPolicy: "Never",
      containers: [{ name: "c", image: "example/unknown:1.0" }],
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => "terminated" in (x.containers[0]?.state ?? {}),
      "start error",
    );
    const t = buildPodStatus(v, new Date()).containerStatuses?.[0]?.state?.terminated;
    assert.equal(t?.reason, "StartError");
    assert.match(
      t?.message ?? "",
      /no local entrypoint for image "example\/unknown:1\.0".*kennethreitz\/httpbin/,
    );
    await runtime.killPod(uid(pod), 0);
  });

  test("capabilities are a bounding set: NET_ADMIN added lets root program iptables in the pod, dropped it cannot", async () => {
    const pod = makePod({
      restartPolicy: "Never",
      initContainers: [
        {
          name: "with-net-admin",
          image: "busybox",
          command: ["iptables-legacy", "-t", "nat", "-N", "OSMT_PROBE"],
          securityContext: { capabilities: { add: ["NET_ADMIN"] } },
        },
      ],
      containers: [
        { name: "without", image: "busybox", command: ["iptables-legacy", "-t", "nat", "-N", "OSMT_PROBE2"] },
      ],
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => "terminated" in (x.containers[0]?.state ?? {}),
      "main ended",
    );
    const init = v.initContainers[0]?.state;
    assert.ok(init && "terminated" in init && init.terminated.exitCode === 0, JSON.stringify(init));
    const main = v.containers[0]?.state;
    assert.ok(main && "terminated" in main && main.terminated.exitCode !== 0, JSON.stringify(main));
    assert.match(await logsOf(runtime, pod, "without"), /Permission denied|you must be root/i);
    await runtime.killPod(uid(pod), 0);
  });

  test("orphans are removed: a netns with our prefix that no pod owns is emptied of processes and deleted", async () => {
    const { spawn } = await import("node:child_process");
    const { createProcessRunner } = await import("../../../src/edge/command-runner.ts");
    const name = `${TEST_NETWORK.namePrefix}61`;
    assert.equal((await createProcessRunner().run(["ip", "netns", "add", name])).code, 0);
    const stray = spawn("ip", ["netns", "exec", name, "sleep", "3600"], { stdio: "ignore", detached: true });
    stray.unref();
    await new Promise((r) => setTimeout(r, 200));
    const removed = await runtime.removeOrphans(new Set());
    assert.deepEqual(removed, [name]);
    assert.deepEqual(await leftovers(), []);
    assert.equal(alive(stray.pid ?? 0), false);
  });

  test("exec returns the exit code and streams stdin, stdout and stderr", async () => {
    const pod = makePod({
      containers: [
        { name: "a", image: "busybox", command: ["sleep", "3600"] },
        { name: "b", image: "busybox", command: ["sleep", "3600"] },
      ],
    });
    runtime.runPod(pod);
    await waitFor(runtime, uid(pod), allRunning, "running");
    assert.equal((await execIn(runtime, pod, ["sh", "-c", "exit 7"])).exitCode, 7);
    const cat = await execIn(runtime, pod, ["sh", "-c", "cat; echo err >&2"], "b", "piped input\n");
    assert.deepEqual([cat.exitCode, cat.stdout, cat.stderr], [0, "piped input\n", "err\n"]);
    await assert.rejects(execIn(runtime, pod, ["true"], "nosuch"), /container nosuch is not valid/);
    await runtime.killPod(uid(pod), 0);
  });

  test("logs keep the previous attempt of a restarted container, and follow streams until it exits", async () => {
    const pod = makePod({
      containers: [
        { name: "c", image: "busybox", command: ["sh", "-c", "echo attempt; sleep 0.3; echo done; exit 2"] },
      ],
    });
    runtime.runPod(pod);
    await waitFor(
      runtime,
      uid(pod),
      (x) => (x.containers[0]?.restartCount ?? 0) >= 1 && "running" in (x.containers[0]?.state ?? {}),
      "restarted",
    );
    assert.equal(await logsOf(runtime, pod, "c", true), "attempt\ndone\n");
    const chunks: string[] = [];
    const { PassThrough } = await import("node:stream");
    const out = new PassThrough();
    out.on("data", (b: Buffer) => chunks.push(b.toString()));
    await runtime.logs(
      {
        namespace: "t",
        pod: pod.metadata?.name ?? "",
        container: "c",
        follow: true,
        previous: false,
        tailLines: undefined,
        timestamps: true,
      },
      out,
      AbortSignal.timeout(5000),
    );
    const text = chunks.join("");
    assert.match(text, /^\d{4}-\d\d-\d\dT[\d:.]+Z attempt\n\d{4}-\d\d-\d\dT[\d:.]+Z done\n$/);
    await runtime.killPod(uid(pod), 0);
  });

  test("readiness probes gate readiness: httpGet and exec, passing and failing", async () => {
    const pod = makePod({
      containers: [
        {
          name: "web",
          image: "kennethreitz/httpbin",
          readinessProbe: { httpGet: { path: "/status/200", port: 80 as never }, periodSeconds: 1 },
        },
        {
          name: "sad",
          image: "busybox",
          command: ["sleep", "3600"],
          readinessProbe: { exec: { command: ["sh", "-c", "exit 1"] }, periodSeconds: 1 },
        },
        {
          name: "tcp",
          image: "busybox",
          command: ["sleep", "3600"],
          readinessProbe: { tcpSocket: { port: 80 as never }, periodSeconds: 1 },
        },
      ],
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) =>
        x.containers.find((c) => c.name === "web")?.ready === true &&
        x.containers.find((c) => c.name === "tcp")?.ready === true,
      "web and tcp ready",
    );
    assert.equal(v.containers.find((c) => c.name === "sad")?.ready, false);
    const status = buildPodStatus(v, new Date());
    assert.equal(status.phase, "Running");
    const ready = status.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "False");
    assert.equal(ready?.message, "containers with unready status: [sad]");
    await runtime.killPod(uid(pod), 0);
  });

  test("a startupProbe holds readiness back until it passes, and restarts a container that never starts", async () => {
    const marker = join(scratch, "started-once");
    const pod = makePod({
      containers: [
        {
          name: "slow",
          image: "busybox",
          command: ["sleep", "3600"],
          // Passes from the second attempt on: the first probe sees no marker and creates it.
          startupProbe: {
            exec: { command: ["sh", "-c", `test -e ${marker} || { touch ${marker}; exit 1; }`] },
            periodSeconds: 1,
          },
        },
        {
          name: "never",
          image: "busybox",
          command: ["sleep", "3600"],
          startupProbe: { exec: { command: ["false"] }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
    });
    runtime.runPod(pod);
    const early = await waitFor(
      runtime,
      uid(pod),
      (x) => "running" in (x.containers[0]?.state ?? {}),
      "slow running",
    );
    assert.equal(early.containers[0]?.ready, false);
    assert.equal(early.containers[0]?.startupPassed, false);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => x.containers[0]?.ready === true && (x.containers[1]?.restartCount ?? 0) >= 1,
      "slow ready and never restarted",
    );
    assert.equal(v.containers[0]?.startupPassed, true);
    assert.equal(v.containers[1]?.ready, false);
    await runtime.killPod(uid(pod), 0);
  });

  test("a failing liveness probe restarts the container", async () => {
    const pod = makePod({
      containers: [
        {
          name: "c",
          image: "busybox",
          command: ["sleep", "3600"],
          livenessProbe: { exec: { command: ["false"] }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
      terminationGracePeriodSeconds: 1,
    });
    runtime.runPod(pod);
    const v = await waitFor(
      runtime,
      uid(pod),
      (x) => (x.containers[0]?.restartCount ?? 0) >= 1,
      "restarted by liveness",
    );
    assert.equal(v.containers[0]?.lastState && "terminated" in v.containers[0].lastState, true);
    await runtime.killPod(uid(pod), 0);
  });

  test("delete sends SIGTERM, then SIGKILL after the grace period, and leaves no netns, veth or process", async () => {
    const pod = makePod({
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: "polite", image: "busybox", command: ["sleep", "3600"] },
        // Ignores SIGTERM: only SIGKILL after the grace period ends it.
        {
          name: "stubborn",
          image: "busybox",
          command: ["sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 0.1; done"],
        },
      ],
    });
    runtime.runPod(pod);
    const v = await waitFor(runtime, uid(pod), allRunning, "running");
    const sandbox = v.sandbox ?? "";
    // Only once the trap is set does SIGTERM stay unanswered.
    for (let i = 0; i < 200 && !(await logsOf(runtime, pod, "stubborn")).includes("trapped"); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const pids = await runtime.network.pidsIn(sandbox);
    assert.ok(pids.length >= 2);
    const started = Date.now();
    await runtime.killPod(uid(pod));
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 15_000, `teardown took ${took} ms`);
    assert.equal(runtime.view(uid(pod)), undefined);
    assert.deepEqual(await leftovers(), []);
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} survived`);
  });

  test("a preStop hook runs before SIGTERM, inside the grace period", async () => {
    const file = join(scratch, "prestop");
    const pod = makePod({
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: "c",
          image: "busybox",
          command: [
            "sh",
            "-c",
            `trap 'echo term >> ${file}; exit 0' TERM; echo up; while :; do sleep 0.1; done`,
          ],
          lifecycle: { preStop: { exec: { command: ["sh", "-c", `echo prestop >> ${file}`] } } },
        },
      ],
    });
    runtime.runPod(pod);
    await waitFor(runtime, uid(pod), allRunning, "running");
    for (let i = 0; i < 200 && !(await logsOf(runtime, pod)).includes("up"); i++)
      await new Promise((r) => setTimeout(r, 25));
    await runtime.killPod(uid(pod));
    assert.equal(readFileSync(file, "utf8"), "prestop\nterm\n");
  });

  test("50 create/delete cycles leave no netns, veth, process or address behind", async () => {
    const pids: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const pod = makePod({ containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] });
      runtime.runPod(pod);
      const v = await waitFor(runtime, uid(pod), allRunning, `cycle ${i}`);
      pids.push(...(await runtime.network.pidsIn(v.sandbox ?? "")));
      await runtime.killPod(uid(pod), 0);
    }
    assert.ok(Date.now() - started < 60_000);
    assert.deepEqual(await leftovers(), []);
    assert.deepEqual(runtime.uids(), []);
    for (const pid of pids) assert.equal(alive(pid), false);
    const ipam = JSON.parse(readFileSync(join(stateDir, "ipam.json"), "utf8"));
    assert.deepEqual(ipam.slots, {});
  });

  test("an external host on the bridge is reachable from pods on its own addresses", async () => {
    const pod = makePod({ containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] });
    runtime.runPod(pod);
    await waitFor(runtime, uid(pod), allRunning, "running");
    await assert.rejects(runtime.addExternalHost("bad", ["8.8.8.8/32"]), /outside the documentation ranges/);
    const ext = await runtime.addExternalHost("web", ["203.0.113.10/32", "203.0.113.11/32"]);
    assert.ok(ext.netns.startsWith(TEST_NETWORK.namePrefix));
    const { spawn } = await import("node:child_process");
    const server = spawn(
      "ip",
      [
        "netns",
        "exec",
        ext.netns,
        process.execPath,
        new URL("../../../src/local/node/httpbin.ts", import.meta.url).pathname,
        "--port",
        "80",
      ],
      { stdio: "ignore" },
    );
    try {
      let head = { exitCode: -1, stdout: "", stderr: "" };
      for (let i = 0; i < 50 && head.exitCode !== 0; i++) {
        head = await execIn(runtime, pod, ["curl", "-sSI", "-m", "2", "http://203.0.113.10/"]);
        if (head.exitCode !== 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(head.stdout, /^HTTP\/1\.1 200 OK/);
      const other = await execIn(runtime, pod, ["curl", "-sSI", "-m", "2", "http://203.0.113.11/"]);
      assert.match(other.stdout, /^HTTP\/1\.1 200 OK/);
      // A pod created afterwards gets the routes too.
      const late = makePod({ containers: [{ name: "c", image: "busybox", command: ["sleep", "3600"] }] });
      runtime.runPod(late);
      await waitFor(runtime, uid(late), allRunning, "late running");
      assert.match(
        (await execIn(runtime, late, ["curl", "-sSI", "-m", "2", "http://203.0.113.10/"])).stdout,
        /200 OK/,
      );
      await runtime.killPod(uid(late), 0);
    } finally {
      server.kill("SIGKILL");
      await runtime.removeExternalHost("web");
    }
    await runtime.killPod(uid(pod), 0);
    assert.deepEqual(await leftovers(), []);
  });

  test("pods are isolated: own PID namespace and /proc, hostname, no view of the state folder or another pod's projected token; a pod's containers share them", async (t) => {
    const secret = (name: string) => [{ name: "MARKER_TOKEN", value: `token-of-${name}` }];
    const as1500 = { runAsUser: 1500, runAsGroup: 1500 };
    const a = makePod(
      {
        containers: [
          {
            name: "app",
            image: "busybox",
            command: ["sleep", "3600"],
            env: secret("a"),
            securityContext: as1500,
          },
          {
            name: "side",
            image: "busybox",
            command: ["sleep", "3602"],
            securityContext: as1500,
            volumeMounts: [sidecarTokenMount()],
          },
          // Another uid of the same pod, which does not mount the token volume.
          {
            name: "other",
            image: "busybox",
            command: ["sleep", "3603"],
            securityContext: { runAsUser: 1501, runAsGroup: 1501 },
          },
        ],
        volumes: [sidecarTokenVolume()],
      },
      "iso-a",
    );
    const b = makePod(
      {
        containers: [
          {
            name: "app",
            image: "busybox",
            command: ["sleep", "3601"],
            env: secret("b"),
            securityContext: as1500,
          },
        ],
      },
      "iso-b",
    );
    writeFileSync(join(stateDir, "pki-marker.key"), "private\n", { mode: 0o600 });
    // With API access, pods get kubelet files whose sources lie under the (hidden) state folder.
    runtime.podApiAccess = { host: runtime.plan.gateway4, port: 6443, caPem: "ca\n", token: "the-token" };
    // What the node agent's TokenRequest writes for a projected serviceAccountToken source.
    const projected: { source: unknown; file: string; owner: unknown }[] = [];
    runtime.projectToken = async (pod, source, file, owner) => {
      projected.push({ source, file, owner });
      writeTokenFile(file, `projected-token-of-${pod.metadata?.name}`, owner);
    };
    t.after(() => {
      runtime.podApiAccess = undefined;
      runtime.projectToken = undefined;
    });
    runtime.runPod(a);
    runtime.runPod(b);
    await waitFor(runtime, uid(a), allRunning, "a running");
    const vb = await waitFor(runtime, uid(b), allRunning, "b running");
    // b's container on the host: the host (positive control) reads its environment.
    const hostPids = await runtime.network.pidsIn(vb.sandbox ?? "");
    const bApp = hostPids.find((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").includes("3601"));
    assert.ok(bApp, "b's app process on the host");
    assert.match(readFileSync(`/proc/${bApp}/environ`, "utf8"), /token-of-b/);

    const sh = (pod: V1Pod, script: string, container = "app") =>
      execIn(runtime, pod, ["sh", "-c", script], container);
    // a's uid 1500 (the sidecar's uid, as b's) sees only a's processes: both of its containers, none of b's.
    const list = () => sh(a, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done");
    // "Running" is reported as each container's wrapper starts: give the second one a moment to exec.
    let listing = await list();
    for (let i = 0; i < 50 && !/sleep 3602/.test(listing.stdout); i++) {
      await new Promise((r) => setTimeout(r, 100));
      listing = await list();
    }
    assert.match(listing.stdout, /sleep 3600/);
    assert.match(listing.stdout, /sleep 3602/);
    assert.doesNotMatch(listing.stdout, /3601/);
    const peek = await sh(a, `cat /proc/${bApp}/environ; grep -l token-of-b /proc/[0-9]*/environ`);
    assert.notEqual(peek.exitCode, 0);
    assert.doesNotMatch(peek.stdout, /token-of-b/);
    // The other container of the same pod is in the same PID namespace (as with shareProcessNamespace).
    assert.match((await sh(a, "grep -l token-of-a /proc/[0-9]*/environ", "side")).stdout, /environ/);
    // a's projected token: in the pod at its mount path, readable by the sidecar's uid; renewed in place.
    // Only the uid of the containers that mount it may read it (0600, theirs), as the kubelet's token files.
    assert.deepEqual(
      projected.map((p) => [p.source, p.owner]),
      [
        [
          { audience: "osm-controller", expirationSeconds: 3600, path: "token" },
          { uid: 1500, gid: 1500 },
        ],
      ],
    );
    const tokenOf = (pod: V1Pod) => sh(pod, `cat ${SIDECAR_TOKEN_FILE}`, "side");
    assert.equal((await tokenOf(a)).stdout, "projected-token-of-iso-a");
    const hostFile = projected[0]?.file ?? "";
    writeTokenFile(hostFile, "renewed-token-of-iso-a", { uid: 1500, gid: 1500 });
    assert.equal((await tokenOf(a)).stdout, "renewed-token-of-iso-a");
    const sibling = await sh(a, `cat ${SIDECAR_TOKEN_FILE}`, "other");
    assert.notEqual(sibling.exitCode, 0);
    assert.match(sibling.stderr, /Permission denied/);
    // b, as uid 1500, reads it neither at the mount path (b has no such volume) nor where the node keeps it.
    const steal = await sh(b, `cat ${SIDECAR_TOKEN_FILE}; cat ${hostFile}; ls ${stateDir}/pods`);
    assert.notEqual(steal.exitCode, 0);
    assert.equal(steal.stdout, "");
    assert.match(steal.stderr, /No such file/);
    // Hostname (UTS) = pod name; the env's HOSTNAME agrees.
    assert.equal((await sh(a, "cat /proc/sys/kernel/hostname; echo $HOSTNAME")).stdout, "iso-a\niso-a\n");
    assert.equal((await sh(b, "hostname")).stdout, "iso-b\n");

    // A root container: the state folder is an empty read-only tmpfs; the kubelet files still read.
    const root = makePod(
      { containers: [{ name: "app", image: "busybox", command: ["sleep", "3600"] }] },
      "iso-root",
    );
    runtime.runPod(root);
    await waitFor(runtime, uid(root), allRunning, "root running");
    const state = await sh(root, `ls -A ${stateDir}; cat ${stateDir}/pki-marker.key; touch ${stateDir}/x`);
    assert.equal(state.stdout, "");
    assert.match(state.stderr, /pki-marker.key: No such file/);
    assert.match(state.stderr, /Read-only file system/);
    const files = await sh(
      root,
      "cat /var/run/secrets/kubernetes.io/serviceaccount/token; grep -c iso-root /etc/hosts",
    );
    assert.equal(files.stdout, "the-token2\n");
    for (const p of [a, b, root]) await runtime.killPod(uid(p), 0);
  });

  test("hostPID: the pod's processes see the host's (its /proc is the host's), the pod still has its own netns, and its teardown leaves none; hostNetwork is refused", async () => {
    const host = makePod(
      { hostPID: true, containers: [{ name: "app", image: "busybox", command: ["sleep", "3604"] }] },
      "host-pid",
    );
    const own = makePod(
      { containers: [{ name: "app", image: "busybox", command: ["sleep", "3605"] }] },
      "own-pid",
    );
    runtime.runPod(host);
    runtime.runPod(own);
    const v = await waitFor(runtime, uid(host), allRunning, "hostPID pod running");
    await waitFor(runtime, uid(own), allRunning, "own pod running");
    const hostInit = readFileSync("/proc/1/cmdline", "utf8").split("\0")[0];
    const sees = (pod: V1Pod) =>
      execIn(runtime, pod, ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$"]);
    const inHost = await sees(host);
    assert.equal(inHost.stdout.split(" ")[0], hostInit, "PID 1 is the host's init");
    assert.ok(Number(inHost.stdout.trim().split("\n")[1]) > 1, "its shell has a host PID");
    assert.notEqual(
      (await sees(own)).stdout.split(" ")[0],
      hostInit,
      "a pod without hostPID: PID 1 is its own",
    );
    // The host's processes, other pods' included: the app of `own` is listed (what osm-node needs).
    const listed = await execIn(runtime, host, ["sh", "-c", "grep -l 3605 /proc/[0-9]*/cmdline"]);
    assert.match(listed.stdout, /\/proc\/\d+\/cmdline/);
    // Its own network namespace all the same.
    const netns = await execIn(runtime, host, ["readlink", "/proc/self/ns/net"]);
    assert.notEqual(netns.stdout.trim(), readlinkSync("/proc/self/ns/net"));
    const sandbox = v.sandbox ?? "";
    await runtime.killPod(uid(host), 0);
    await runtime.killPod(uid(own), 0);
    assert.deepEqual(await runtime.network.pidsIn(sandbox), []);
    assert.ok(!(await leftovers()).includes(sandbox), "netns and veth gone");

    const hostNet = makePod(
      { hostNetwork: true, containers: [{ name: "app", image: "busybox", command: ["sleep", "3606"] }] },
      "host-net",
    );
    runtime.runPod(hostNet);
    const refused = await waitFor(runtime, uid(hostNet), (x) => x.sandboxError !== undefined, "refused");
    assert.match(
      refused.sandboxError ?? "",
      /spec\.hostNetwork: true is not supported by the local node agent/,
    );
    await runtime.killPod(uid(hostNet), 0);
  });
});

/**
 * The osm-node DaemonSet's /proc scan for real: namespaces made here (`osmt-nl-*`), each with a process in it,
 * one holding the pod IP on a veth interface, one on its loopback only (as an external host's addresses).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { ProcNetnsLocator } from "../../../src/local/node/netns-locator.ts";
import { run } from "../../support/run.ts";

const POD = "osmt-nl-pod";
const LOOPBACK = "osmt-nl-lo";
const TWIN = "osmt-nl-twin";
const SECOND = "osmt-nl-second";
const IP4 = "203.0.113.77";
const IP6 = "2001:db8:77::7";
const rootSkip = process.getuid?.() === 0 ? false : "needs root: creates network namespaces";

const pod = (uid: string, ip: string): V1Pod => ({
  metadata: { uid, name: uid, namespace: "default" },
  spec: { containers: [] },
  status: {
    phase: "Running",
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: "Initialized", status: "True" }],
  },
});

describe("ProcNetnsLocator on this host", { skip: rootSkip, concurrency: false }, () => {
  const sleepers: ChildProcess[] = [];
  const ip = async (...args: string[]) => {
    const r = await run("ip", args);
    assert.equal(r.code, 0, `ip ${args.join(" ")}: ${r.stderr}`);
  };
  /** A namespace with a process in it (a pod's first process), the address on `device`. */
  const namespaceWith = async (name: string, device: "d0" | "lo", ...addresses: string[]) => {
    await ip("netns", "add", name);
    await ip("-n", name, "link", "set", "lo", "up");
    if (device === "d0") {
      // A veth pair inside the namespace (this kernel has no dummy driver): d0 is a non-loopback interface.
      await ip("-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1");
      await ip("-n", name, "link", "set", "d0", "up");
    }
    for (const a of addresses) await ip("-n", name, "addr", "add", a, "dev", device, "nodad");
    const child = spawn("ip", ["netns", "exec", name, "sleep", "300"], { stdio: "ignore" });
    sleepers.push(child);
    return child;
  };

  before(async () => {
    for (const n of [POD, LOOPBACK, TWIN, SECOND]) await run("ip", ["netns", "del", n]);
  });

  after(async () => {
    for (const s of sleepers) s.kill("SIGKILL");
    for (const n of [POD, LOOPBACK, TWIN, SECOND]) await run("ip", ["netns", "del", n]);
  });

  test("finds the namespace holding the pod IP on a non-loopback interface, by IPv4 and by IPv6", async () => {
    await namespaceWith(LOOPBACK, "lo", `${IP4}/32`);
    const inPod = await namespaceWith(POD, "d0", `${IP4}/32`, `${IP6}/128`);
    // `ip netns exec` execs sleep in place: its pid is the process in the namespace.
    await new Promise((r) => setTimeout(r, 300));
    const locator = new ProcNetnsLocator();
    const target = await locator.locate(pod("p4", IP4));
    assert.ok(target, "found");
    assert.equal(target.netns, `/proc/${inPod.pid}/ns/net`);
    const inode = (await run("stat", ["-L", "-c", "%i", `/run/netns/${POD}`])).stdout.trim();
    assert.equal(readlinkSync(target.netns), `net:[${inode}]`);
    assert.equal(target.resolvConf, readFileSync("/etc/resolv.conf", "utf8"), "what the process sees");
    assert.deepEqual(target.podIPs, [IP4]);
    const six = await locator.locate(pod("p6", "2001:db8:77:0::7"));
    assert.equal(six?.netns, target.netns);
  });

  test("the address on a loopback only, or nowhere, is no pod's", async () => {
    const locator = new ProcNetnsLocator();
    await ip("-n", POD, "addr", "del", `${IP4}/32`, "dev", "d0");
    try {
      assert.equal(await locator.locate(pod("p4", IP4)), undefined);
      assert.equal(await locator.locate(pod("px", "203.0.113.78")), undefined);
    } finally {
      await ip("-n", POD, "addr", "add", `${IP4}/32`, "dev", "d0", "nodad");
    }
  });

  test("remembered while its process lives; found again in its new namespace once that process is gone", async () => {
    const locator = new ProcNetnsLocator();
    const first = await locator.locate(pod("p4", IP4));
    assert.ok(first);
    assert.equal((await locator.locate(pod("p4", IP4)))?.netns, first.netns, "the same while it lives");
    const old = sleepers.find((s) => first.netns === `/proc/${s.pid}/ns/net`);
    old?.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await locator.locate(pod("p4", IP4)), undefined, "its only process gone: not there");
    const again = await namespaceWith(TWIN, "d0", `${IP4}/32`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await locator.locate(pod("p4", IP4)))?.netns, `/proc/${again.pid}/ns/net`);
  });

  test("two namespaces holding the pod IP: refused, not guessed", async () => {
    const second = await namespaceWith(SECOND, "d0", `${IP4}/32`);
    try {
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(new ProcNetnsLocator().locate(pod("p4", IP4)), /in 2 network namespaces/);
    } finally {
      second.kill("SIGKILL");
      await run("ip", ["netns", "del", SECOND]);
    }
  });
});

/**
 * The non-TCP egress filter (egress disabled) in real namespaces: UDP and ICMP from the pod to destinations
 * that are not excluded never reach the server, IPv4 and IPv6, on every backend; excluded destinations, DNS to
 * the pod's resolvers and the sidecar's uid still do; TCP is still redirected; `explain` says the same for
 * every probe; the osm-init script reads the resolvers from the pod's /etc/resolv.conf.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ENVOY_UID } from "../../../src/constants.ts";
import { createProcessRunner } from "../../../src/edge/command-runner.ts";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  cleanupInterception,
  type ExplainProtocol,
  explain,
  renderInitScript,
  verifyInterception,
} from "../../../src/interception/index.ts";
import { parseIp } from "../../../src/net/index.ts";
import { buildTestPolicy } from "../../golden/interception/policy-builder.ts";
import { answerToVerdict, createLab, type Lab } from "./lab.ts";

const skip =
  process.getuid?.() === 0 ? false : "needs root: creates network namespaces and programs netfilter";
const VARIANTS: readonly BackendVariant[] = ["iptables-legacy", "iptables-nft", "nftables"];
const RESOLVER = "203.0.113.53";
const policy = buildTestPolicy({
  enableEgress: false,
  outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
});

/** UDP echo on 5353 and 53, both families, in the server namespace (AnyIP: every documentation address). */
const UDP_SERVER = `
const dgram = require("node:dgram");
let up = 0;
for (const type of ["udp4", "udp6"]) for (const port of [53, 5353]) {
  const s = dgram.createSocket({ type, ipv6Only: type === "udp6" });
  s.on("message", (m, r) => s.send("echo", r.port, r.address));
  s.bind(port, type === "udp4" ? "0.0.0.0" : "::", () => { if (++up === 4) console.log("ready"); });
}`;

/** Sends one datagram per target and prints reply/silent for each (an unconnected socket: AnyIP replies). */
const UDP_CLIENT = `
const dgram = require("node:dgram");
const targets = JSON.parse(process.argv[1]);
Promise.all(targets.map(([ip, port]) => new Promise((done) => {
  const s = dgram.createSocket(ip.includes(":") ? "udp6" : "udp4");
  const t = setTimeout(() => { s.close(); done("silent"); }, 700);
  s.on("message", () => { clearTimeout(t); s.close(); done("reply"); });
  s.on("error", () => { clearTimeout(t); s.close(); done("silent"); });
  s.send("x", port, ip);
}))).then((r) => console.log(JSON.stringify(r)));`;

/** One ICMP echo per target through a ping socket (the kernel fills id and checksum); reply/silent. */
const ICMP_CLIENT = `
import json, socket, sys, select
out = []
for ip in json.loads(sys.argv[1]):
    v6 = ":" in ip
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    try:
        s.sendto(bytes([128 if v6 else 8, 0, 0, 0, 0, 0, 0, 1]) + b"osm", (ip, 0))
        out.append("reply" if select.select([s], [], [], 0.7)[0] else "silent")
    except OSError:
        out.append("silent")
    s.close()
print(json.dumps(out))`;

function inNetns(netns: string, argv: string[], uid?: number): string {
  const as = uid === undefined ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups"];
  return execFileSync("ip", ["netns", "exec", netns, ...as, ...argv], { encoding: "utf8" });
}

function udp(lab: Lab, targets: readonly (readonly [string, number])[], uid?: number): string[] {
  return JSON.parse(inNetns(lab.client, [process.execPath, "-e", UDP_CLIENT, JSON.stringify(targets)], uid));
}

function icmp(lab: Lab, targets: readonly string[]): string[] {
  return JSON.parse(inNetns(lab.client, ["python3", "-c", ICMP_CLIENT, JSON.stringify(targets)]));
}

const UDP_TARGETS = [
  ["203.0.113.11", 5353],
  ["203.0.113.10", 5353],
  ["2001:db8::11", 5353],
  ["2001:db8::10", 5353],
  [RESOLVER, 53],
  ["203.0.113.11", 53],
] as const;
const ICMP_TARGETS = ["203.0.113.11", "203.0.113.10", "2001:db8::11", "2001:db8::10"];

describe("the non-TCP egress filter in real network namespaces", { skip }, () => {
  let lab: Lab;
  let server: ReturnType<typeof spawn> | undefined;
  let pristine: string;
  before(async () => {
    lab = await createLab("7");
    execFileSync("ip", [
      "netns",
      "exec",
      lab.client,
      "sysctl",
      "-qw",
      "net.ipv4.ping_group_range=0 2147483647",
    ]);
    server = spawn("ip", ["netns", "exec", lab.server, process.execPath, "-e", UDP_SERVER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => server?.stdout?.once("data", () => resolve()));
    const runner = createProcessRunner({ netns: lab.clientPath });
    for (const variant of VARIANTS) {
      await applyInterception(buildPlan(policy, { ipv6: true }), { runner, variant });
      await cleanupInterception({ runner, variant });
    }
    pristine = lab.snapshot();
  });
  after(() => {
    if (server?.pid !== undefined && server.exitCode === null) process.kill(server.pid);
    lab?.teardown();
  });

  it("without rules, UDP and ICMP reach every destination (the baseline the filter changes)", () => {
    assert.deepEqual(
      udp(lab, UDP_TARGETS),
      UDP_TARGETS.map(() => "reply"),
    );
    assert.deepEqual(
      icmp(lab, ICMP_TARGETS),
      ICMP_TARGETS.map(() => "reply"),
    );
  });

  for (const variant of VARIANTS) {
    it(`${variant}: UDP and ICMP go only where explain says (excluded, resolver, sidecar uid); TCP still to the sidecar`, async () => {
      const runner = createProcessRunner({ netns: lab.clientPath });
      const o = { runner, variant };
      const plan = buildPlan(policy, { ipv6: true, resolvers: [parseIp(RESOLVER)] });
      const backend = variant === "nftables" ? "nftables" : "iptables";
      const said = (protocol: ExplainProtocol, ip: string, port: number) => {
        const e = explain(
          plan,
          { destination: parseIp(ip), port, protocol, outInterface: lab.clientIf },
          backend,
        );
        return e.verdict === "dropped" ? "silent" : "reply";
      };
      try {
        await applyInterception(plan, o);
        assert.deepEqual(udp(lab, UDP_TARGETS), ["silent", "reply", "silent", "reply", "reply", "silent"]);
        assert.deepEqual(
          udp(lab, UDP_TARGETS),
          UDP_TARGETS.map(([ip, port]) => said("udp", ip, port)),
        );
        assert.deepEqual(icmp(lab, ICMP_TARGETS), ["silent", "reply", "silent", "reply"]);
        assert.deepEqual(
          icmp(lab, ICMP_TARGETS),
          ICMP_TARGETS.map((ip) => said("icmp", ip, 0)),
        );
        // The proxy uid is exempt, as the sidecar's own traffic must be (see the injector's uid checks).
        assert.deepEqual(
          udp(lab, UDP_TARGETS, ENVOY_UID),
          UDP_TARGETS.map(() => "reply"),
        );
        const tcp = await lab.connectFromPod([
          ["203.0.113.11", 80],
          ["2001:db8::11", 80],
          ["203.0.113.10", 80],
        ]);
        assert.deepEqual(tcp.map(answerToVerdict), ["outbound-sidecar", "outbound-sidecar", "direct"]);
        assert.deepEqual(await verifyInterception(plan, o), []);
        assert.equal((await applyInterception(plan, o)).changed, false);
      } finally {
        await cleanupInterception(o);
      }
      assert.equal(lab.snapshot(), pristine);
    });
  }

  for (const [backend, variant] of [
    ["auto", "nftables"],
    ["iptables", "iptables-nft"],
  ] as const) {
    it(`the osm-init script (${backend}) reads the resolvers from the pod's /etc/resolv.conf and drops the rest`, async () => {
      const etc = `/etc/netns/${lab.client}`;
      mkdirSync(etc, { recursive: true });
      writeFileSync(
        `${etc}/resolv.conf`,
        `search example\nnameserver ${RESOLVER}\nnameserver fe80::1%eth0\n`,
      );
      const runner = createProcessRunner({ netns: lab.clientPath });
      const o = { runner, variant };
      try {
        execFileSync(
          "ip",
          ["netns", "exec", lab.client, "/bin/sh", "-c", renderInitScript(policy, { backend })],
          {
            stdio: ["ignore", "ignore", "inherit"],
          },
        );
        assert.deepEqual(udp(lab, UDP_TARGETS), ["silent", "reply", "silent", "reply", "reply", "silent"]);
        const plan = buildPlan(policy, { ipv6: true, resolvers: [parseIp(RESOLVER)] });
        assert.deepEqual(await verifyInterception(plan, o), []);
      } finally {
        await cleanupInterception(o);
        rmSync(etc, { recursive: true, force: true });
      }
      assert.equal(lab.snapshot(), pristine);
    });
  }
});

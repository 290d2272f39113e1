import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { createProcessRunner } from "../../../src/edge/command-runner.ts";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  cleanupInterception,
  type EngineOptions,
  explain,
  type InterceptionPlan,
  probeInterception,
  renderInitScript,
  verifyInterception,
} from "../../../src/interception/index.ts";
import { parseIp } from "../../../src/net/index.ts";
import { INTERCEPTION_CASES } from "../../golden/interception/cases.ts";
import { buildTestPolicy, type PolicyInput } from "../../golden/interception/policy-builder.ts";
import { answerToVerdict, CLIENT_V4, CLIENT_V6, createLab, type Lab } from "./lab.ts";

const VARIANTS: readonly BackendVariant[] = ["iptables-legacy", "iptables-nft", "nftables"];
const OUT_ADDRESSES = [
  "203.0.113.10",
  "203.0.113.11",
  "203.0.113.77",
  "203.0.113.200",
  "198.51.100.5",
  "198.51.100.7",
  "198.51.100.20",
  "198.51.100.130",
  "192.0.2.5",
  "192.0.2.70",
  "2001:db8::10",
  "2001:db8::11",
  "2001:db8:10::1",
  "2001:db8:20::1",
  "2001:db8:30::1",
];
const OUT_PORTS = [80, 6379, 7000, 7015, 7070, 7072, 7099, 8081];
const IN_PORTS = [80, 8000, 8001, 8015, 8080];

const skip =
  process.getuid?.() === 0 ? false : "needs root: creates network namespaces and programs netfilter";

function sh(netns: string, argv: string[]): void {
  execFileSync("ip", ["netns", "exec", netns, ...argv], { stdio: "ignore" });
}

/** Applies, checks every connection against explain, re-applies (no-op), verifies; returns mismatches. */
async function checkCase(lab: Lab, plan: InterceptionPlan, o: EngineOptions): Promise<void> {
  const backend = o.variant === "nftables" ? "nftables" : "iptables";
  assert.equal((await applyInterception(plan, o)).changed, true, "first apply changes the ruleset");
  const out = OUT_ADDRESSES.flatMap((ip) => OUT_PORTS.map((port) => [ip, port] as const));
  const outAnswers = await lab.connectFromPod(out);
  const inn = [CLIENT_V4, CLIENT_V6].flatMap((ip) => IN_PORTS.map((port) => [ip, port] as const));
  const inAnswers = await lab.connectIntoPod(inn);
  const said = (targets: readonly (readonly [string, number])[], direction: "outbound" | "inbound") =>
    targets.map(([ip, port]) => {
      const iface = direction === "outbound" ? { outInterface: lab.clientIf } : { inInterface: lab.clientIf };
      const e = explain(plan, { destination: parseIp(ip), port, direction, ...iface }, backend);
      return `${direction} ${ip} ${port} → ${e.verdict}`;
    });
  const did = (targets: readonly (readonly [string, number])[], answers: string[], direction: string) =>
    targets.map(([ip, port], i) => `${direction} ${ip} ${port} → ${answerToVerdict(answers[i]!)}`);
  assert.deepEqual(did(out, outAnswers, "outbound"), said(out, "outbound"));
  assert.deepEqual(did(inn, inAnswers, "inbound"), said(inn, "inbound"));
  assert.equal((await applyInterception(plan, o)).changed, false, "re-apply is a no-op");
  assert.deepEqual(await verifyInterception(plan, o), []);
}

describe("interception in real network namespaces", { skip }, () => {
  let lab: Lab;
  let pristine: string;
  before(async () => {
    lab = await createLab("1");
    // iptables-nft leaves its (empty) nat and filter base chains behind once created; create them first so
    // that "cleanup leaves nothing" compares like with like (egress disabled: the filter table is used too).
    const runner = createProcessRunner({ netns: lab.clientPath });
    const plan = buildPlan(buildTestPolicy({ enableEgress: false }), { ipv6: true });
    for (const variant of VARIANTS) {
      await applyInterception(plan, { runner, variant });
      await cleanupInterception({ runner, variant });
    }
    pristine = lab.snapshot();
  });
  after(() => lab?.teardown());

  for (const [backend, variant, withoutNft] of [
    ["iptables", "iptables-nft", false],
    ["auto", "nftables", false],
    ["auto", "iptables-nft", true],
  ] as const) {
    const how = withoutNft ? ", falling back to iptables where nft is missing" : "";
    it(`runs the osm-init script (backend ${backend}) under /bin/sh and programs exactly the plan (${variant}${how})`, async () => {
      const policy = buildTestPolicy({
        localProxyMode: "PodIP",
        outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"],
        outboundPortExclusionList: [7070],
      });
      const script = renderInitScript(policy, { backend });
      const runner = createProcessRunner({ netns: lab.clientPath });
      const o = { runner, variant, podIp: CLIENT_V4 };
      // An init image without nft: a PATH holding only the two restore tools.
      const bin = mkdtempSync(join(tmpdir(), "osmt-ic-bin-"));
      symlinkSync("/usr/sbin/iptables-restore", join(bin, "iptables-restore"));
      symlinkSync("/usr/sbin/ip6tables-restore", join(bin, "ip6tables-restore"));
      const PATH = withoutNft ? bin : (process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin");
      try {
        for (let run = 0; run < 2; run++) {
          // `ip` by its path: PATH below is the init container's, not ours.
          execFileSync("/usr/sbin/ip", ["netns", "exec", lab.client, "/bin/sh", "-c", script], {
            env: { PATH, POD_IP: CLIENT_V4 },
            stdio: "ignore",
          });
        }
        const diff = await verifyInterception(buildPlan(policy), o);
        // OSM's script re-run appends a second jump (docs/osm-behaviour.md §1.7); our apply would not. nft replaces atomically.
        if (variant === "nftables") assert.deepEqual(diff, []);
        else
          assert.ok(diff.every((l) => /duplicates|unexpected/.test(l)) && diff.length > 0, diff.join("\n"));
        assert.equal((await applyInterception(buildPlan(policy), o)).changed, variant !== "nftables");
        assert.deepEqual(await verifyInterception(buildPlan(policy), o), []);
      } finally {
        await cleanupInterception(o);
        rmSync(bin, { recursive: true, force: true });
      }
      assert.equal(lab.snapshot(), pristine);
    });
  }

  for (const variant of VARIANTS) {
    describe(`backend ${variant}`, () => {
      for (const c of INTERCEPTION_CASES) {
        it(`case ${c.name}: real connections go where explain says, re-apply is a no-op, cleanup leaves nothing`, async () => {
          const runner = createProcessRunner({ netns: lab.clientPath });
          const o = { runner, variant, podIp: CLIENT_V4 };
          const plan = buildPlan(buildTestPolicy(c.input), c.ipv6 ? { ipv6: true } : {});
          try {
            await checkCase(lab, plan, o);
          } finally {
            await cleanupInterception(o);
          }
          assert.equal(lab.snapshot(), pristine);
        });
      }

      it("keeps another tool's rules through apply, re-apply and cleanup", async () => {
        const runner = createProcessRunner({ netns: lab.clientPath });
        const o = { runner, variant };
        sh(lab.client, [
          "iptables-legacy",
          "-t",
          "nat",
          "-A",
          "OUTPUT",
          "-d",
          "192.0.2.99/32",
          "-j",
          "RETURN",
        ]);
        sh(lab.client, ["iptables-nft", "-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.98/32", "-j", "RETURN"]);
        sh(lab.client, ["nft", "add", "table", "inet", "foreign"]);
        const withForeign = lab.snapshot();
        const plan = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
        try {
          await applyInterception(plan, o);
          await applyInterception(plan, o);
          assert.notEqual(lab.snapshot(), withForeign);
        } finally {
          await cleanupInterception(o);
        }
        assert.equal(lab.snapshot(), withForeign);
        sh(lab.client, [
          "iptables-legacy",
          "-t",
          "nat",
          "-D",
          "OUTPUT",
          "-d",
          "192.0.2.99/32",
          "-j",
          "RETURN",
        ]);
        sh(lab.client, ["iptables-nft", "-t", "nat", "-D", "OUTPUT", "-d", "192.0.2.98/32", "-j", "RETURN"]);
        sh(lab.client, ["nft", "delete", "table", "inet", "foreign"]);
        assert.equal(lab.snapshot(), pristine);
      });

      it("fails on broken input with a message naming it, and applies nothing", async () => {
        const runner = createProcessRunner({ netns: lab.clientPath });
        const o = { runner, variant };
        // Port 70000 passes OSM's annotation parser (no upper bound, docs/osm-behaviour.md §1.6) but no kernel accepts it.
        const plan = buildPlan(
          buildTestPolicy({
            outboundIPRangeExclusionList: ["2001:db8::/64"],
            outboundPortExclusionList: [7070, 70000],
          }),
        );
        await assert.rejects(applyInterception(plan, o), /70000/);
        assert.equal(lab.snapshot(), pristine);
      });

      it("moves from a dual-stack policy to an IPv4-only one without leaving IPv6 rules behind", async () => {
        const runner = createProcessRunner({ netns: lab.clientPath });
        const o = { runner, variant };
        const dual = buildPlan(
          buildTestPolicy({ outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::10/128"] }),
        );
        const v4only = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
        try {
          await applyInterception(dual, o);
          assert.equal((await applyInterception(v4only, o)).changed, true);
          assert.deepEqual(await verifyInterception(v4only, o), []);
          assert.equal((await applyInterception(dual, o)).changed, true);
          assert.deepEqual(await verifyInterception(dual, o), []);
        } finally {
          await cleanupInterception(o);
        }
        assert.equal(lab.snapshot(), pristine);
      });

      it("reports drift after a rule is removed behind its back", async () => {
        const runner = createProcessRunner({ netns: lab.clientPath });
        const o = { runner, variant };
        const plan = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
        try {
          await applyInterception(plan, o);
          if (variant === "nftables") {
            sh(lab.client, [
              "nft",
              "delete",
              "element",
              "inet",
              "osm_proxy",
              "out_ex4_hosts",
              "{ 203.0.113.10 }",
            ]);
          } else {
            const tool = variant === "iptables-legacy" ? "iptables-legacy" : "iptables-nft";
            sh(lab.client, [
              tool,
              "-t",
              "nat",
              "-D",
              "OSM_PROXY_OUTBOUND",
              "-d",
              "203.0.113.10/32",
              "-j",
              "RETURN",
            ]);
          }
          const diff = await verifyInterception(plan, o);
          assert.ok(
            diff.some((l) => l.includes("203.0.113.10")),
            diff.join("\n"),
          );
          assert.equal((await applyInterception(plan, o)).changed, true, "apply repairs drift");
          assert.deepEqual(await verifyInterception(plan, o), []);
        } finally {
          await cleanupInterception(o);
        }
      });

      it("probes after apply: a connection to an intercepted address reaches port 15001, and fails without rules", async () => {
        // A namespace of its own with a route but no peer and no sidecar: the probe owns 15001 here.
        const ns = "osmt-ic-p1";
        const del = () => execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        try {
          del();
        } catch {
          // not there
        }
        execFileSync("ip", ["netns", "add", ns]);
        try {
          const ip = (...a: string[]) => execFileSync("ip", ["-n", ns, ...a], { stdio: "ignore" });
          ip("link", "add", "osmt-ic-p1a", "type", "veth", "peer", "name", "osmt-ic-p1b");
          ip("link", "set", "lo", "up");
          ip("addr", "add", "192.0.2.253/30", "dev", "osmt-ic-p1a");
          ip("link", "set", "osmt-ic-p1a", "up");
          ip("link", "set", "osmt-ic-p1b", "up");
          ip("route", "add", "default", "via", "192.0.2.254", "dev", "osmt-ic-p1a");
          const o = { runner: createProcessRunner({ netns: `/var/run/netns/${ns}` }), variant };
          const plan = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["192.0.2.0/25"] }));
          await applyInterception(plan, o);
          const probe = await probeInterception(plan, o);
          assert.deepEqual(probe, { target: "198.51.100.1:80", result: "redirected" });
          await cleanupInterception(o);
          await assert.rejects(probeInterception(plan, o), /did not reach port 15001/);
        } finally {
          del();
        }
      });

      it("matches explain for random policies and destinations (property, bounded)", async () => {
        const runner = createProcessRunner({ netns: lab.clientPath });
        const o = { runner, variant, podIp: CLIENT_V4 };
        const cidrs = [
          "203.0.113.0/24",
          "203.0.113.10/32",
          "203.0.113.64/26",
          "198.51.100.0/25",
          "198.51.100.5/32",
          "192.0.2.0/26",
          "2001:db8::/64",
          "2001:db8::10/128",
          "2001:db8:10::/48",
        ];
        const policy = fc.record({
          outboundIPRangeExclusionList: fc.subarray(cidrs),
          outboundIPRangeInclusionList: fc.subarray(cidrs, { maxLength: 3 }),
          outboundPortExclusionList: fc.subarray([6379, 7000, 7070, 8081]),
          inboundPortExclusionList: fc.subarray([8000, 8080]),
        });
        await fc.assert(
          fc.asyncProperty(policy, async (input: PolicyInput) => {
            const plan = buildPlan(buildTestPolicy(input));
            try {
              await checkCase(lab, plan, o);
            } finally {
              await cleanupInterception(o);
            }
          }),
          { numRuns: 6, seed: 4 },
        );
      });
    });
  }
});

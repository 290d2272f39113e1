/**
 * Live updates of a running pod's interception in a real namespace, per backend: `syncInterception` moves the
 * rules from one policy to the next in one transaction (nft: set elements only; iptables: one
 * `*-restore --noflush` of our chains per family), real connections follow at once, other tools' rules
 * survive, and a transaction the kernel rejects leaves the previous rules (for iptables even when the IPv6
 * family fails after IPv4 was replaced: IPv4 gets its previous rules back).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type CommandRunner, createProcessRunner } from "../../../src/edge/command-runner.ts";
import { NftBatch, nftBatchNetlink, nftBatchRunner } from "../../../src/edge/nft-batch.ts";
import {
  applyInterception,
  type BackendVariant,
  buildPlan,
  checkDriftCheaply,
  cleanupInterception,
  ElementSyncCache,
  encodeElementSyncBatch,
  setDigestDrift,
  skeletonDrift,
  syncInterception,
  verifyInterception,
} from "../../../src/interception/index.ts";
import { buildTestPolicy } from "../../golden/interception/policy-builder.ts";
import { answerToVerdict, createLab, type Lab } from "./lab.ts";

const rootSkip = process.getuid?.() === 0 ? false : "needs root: network namespaces";
const T1: readonly [string, number] = ["203.0.113.50", 80];
const T2: readonly [string, number] = ["203.0.113.51", 80];
const T6: readonly [string, number] = ["2001:db8:5::50", 80];
const VARIANTS: readonly BackendVariant[] = ["nftables", "iptables-nft", "iptables-legacy"];

const planWith = (exclusions: string[]) =>
  buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: exclusions }), { ipv6: true });
const none = planWith([]);
const excluded = planWith(["203.0.113.50/32", "2001:db8:5::50/128"]);

/** A runner whose commands matching `fails` exit 1 without running (the kernel rejecting them). */
function failing(real: CommandRunner, fails: (argv: readonly string[]) => boolean): CommandRunner {
  return {
    run: (argv, options) =>
      fails(argv)
        ? Promise.resolve({ code: 1, stdout: "", stderr: "injected failure" })
        : real.run(argv, options),
  };
}

/** Another tool's rules in the pod's namespace, for each backend. */
function addForeign(lab: Lab, variant: BackendVariant): () => string {
  const inNs = (...argv: string[]) =>
    execFileSync("ip", ["netns", "exec", lab.client, ...argv], { encoding: "utf8" });
  if (variant === "nftables") {
    inNs(
      "nft",
      "add table inet foreign; add chain inet foreign out { type filter hook output priority 10; }",
    );
    inNs("nft", "add rule inet foreign out ip daddr 198.51.100.99 counter accept");
    return () => inNs("nft", "list", "table", "inet", "foreign");
  }
  const tool = `iptables-${variant === "iptables-legacy" ? "legacy" : "nft"}`;
  inNs(tool, "-t", "nat", "-A", "OUTPUT", "-d", "198.51.100.99/32", "-j", "RETURN");
  return () =>
    inNs(`${tool}-save`, "-t", "nat")
      .split("\n")
      .filter((l) => l.includes("198.51.100.99"))
      .join("\n");
}

describe("live interception updates in a running pod's namespace", {
  skip: rootSkip,
  concurrency: false,
}, () => {
  let lab: Lab;
  before(async () => {
    lab = await createLab("8");
  });
  after(() => lab?.teardown());

  const verdicts = async () => (await lab.connectFromPod([T1, T2, T6])).map(answerToVerdict);

  for (const variant of VARIANTS) {
    it(`${variant}: an exclusion added and removed live; other rules untouched; a rejected change keeps the old rules`, async () => {
      const runner = createProcessRunner({ netns: lab.clientPath });
      await applyInterception(none, { runner, variant });
      const foreign = addForeign(lab, variant);
      const foreignBefore = foreign();
      assert.deepEqual(await verdicts(), ["outbound-sidecar", "outbound-sidecar", "outbound-sidecar"]);

      const added = await syncInterception(excluded, { runner, variant });
      if (variant === "nftables") assert.deepEqual(added, { how: "elements", added: 2, removed: 0 });
      else assert.equal(added.how, "replaced");
      assert.deepEqual(await verdicts(), ["direct", "outbound-sidecar", "direct"]);
      assert.deepEqual(await verifyInterception(excluded, { runner, variant }), []);
      assert.equal(foreign(), foreignBefore, "the other tool's rules are untouched");
      assert.deepEqual(await syncInterception(excluded, { runner, variant }), { how: "unchanged" });

      // The kernel refuses the change (nft's transaction; iptables: the IPv6 family after IPv4 went in).
      const rejects =
        variant === "nftables"
          ? (argv: readonly string[]) => argv[0] === "nft" && argv[1] === "-f"
          : (argv: readonly string[]) =>
              argv[0]!.startsWith("ip6tables-") && argv[0]!.endsWith("-restore") && !argv.includes("--test");
      await assert.rejects(
        syncInterception(none, { runner: failing(runner, rejects), variant }),
        /injected failure/,
      );
      assert.deepEqual(
        await verifyInterception(excluded, { runner, variant }),
        [],
        "the previous rules, whole",
      );
      assert.deepEqual(await verdicts(), ["direct", "outbound-sidecar", "direct"]);

      const removed = await syncInterception(none, { runner, variant });
      if (variant === "nftables") assert.deepEqual(removed, { how: "elements", added: 0, removed: 2 });
      assert.deepEqual(await verdicts(), ["outbound-sidecar", "outbound-sidecar", "outbound-sidecar"]);
      assert.equal(foreign(), foreignBefore);
      await cleanupInterception({ runner, variant });
      if (variant === "nftables")
        execFileSync("ip", ["netns", "exec", lab.client, "nft", "delete", "table", "inet", "foreign"]);
      else {
        const tool = `iptables-${variant === "iptables-legacy" ? "legacy" : "nft"}`;
        execFileSync("ip", [
          "netns",
          "exec",
          lab.client,
          tool,
          "-t",
          "nat",
          "-D",
          "OUTPUT",
          "-d",
          "198.51.100.99/32",
          "-j",
          "RETURN",
        ]);
      }
    });
  }

  it("nftables through the node agent's nft helper (one process, any namespace): element changes as a netlink batch, connections follow; the skeleton check sees a deleted rule, the set digests a deleted element; the generation moves with every commit", async () => {
    const batch = new NftBatch();
    assert.ok(batch.available, "build/osm-nft-batch is built (npm run build)");
    try {
      const runner = nftBatchRunner(batch, lab.clientPath, createProcessRunner({ netns: lab.clientPath }));
      const variant = "nftables";
      const netlink = nftBatchNetlink(batch, lab.clientPath);
      assert.ok(netlink);
      await applyInterception(none, { runner, variant });
      const cache = new ElementSyncCache();
      assert.ok(cache.batchBetween(none, excluded), "host sets only: the change goes as a netlink batch");
      const before = await netlink.generation();
      assert.ok(before !== undefined);
      assert.deepEqual(
        await syncInterception(excluded, { runner, variant, netlink }, { applied: none, cache }),
        { how: "elements", added: 2, removed: 0 },
      );
      assert.equal(await netlink.generation(), before + 1, "one transaction");
      assert.deepEqual(await verdicts(), ["direct", "outbound-sidecar", "direct"]);
      assert.deepEqual(await verifyInterception(excluded, { runner, variant }), []);
      assert.deepEqual(await skeletonDrift(excluded, { runner, variant }), []);
      assert.deepEqual(await setDigestDrift(excluded, { runner, variant, netlink }), new Map());
      // A rejected batch (an element that is not there cannot be deleted) changes nothing.
      const rejected = await netlink.send(
        encodeElementSyncBatch(
          new Map([["out_ex4_hosts", { add: [], remove: ["192.0.2.99"], flush: false }]]),
          excluded,
        )!,
      );
      assert.equal(rejected.code, 1);
      assert.match(rejected.stderr, /rejected the batch/);
      assert.deepEqual(await verifyInterception(excluded, { runner, variant }), []);
      // The set's elements are not the skeleton's business (the full check's); a rule is.
      assert.deepEqual(await skeletonDrift(none, { runner, variant }), []);
      const inNs = (...argv: string[]) =>
        execFileSync("ip", ["netns", "exec", lab.client, ...argv], { encoding: "utf8" });
      const handle = /comment "osm\/output-to-outbound" # handle (\d+)/.exec(
        inNs("nft", "-a", "list", "chain", "inet", "osm_proxy", "output"),
      )?.[1];
      assert.ok(handle);
      // A hand-deleted element: only the digest sees it; the cheap check restores the set.
      const beforeDelete = await netlink.generation();
      inNs("nft", "delete", "element", "inet", "osm_proxy", "out_ex4_hosts", "{ 203.0.113.50 }");
      assert.ok((await netlink.generation())! > beforeDelete!);
      assert.deepEqual(await skeletonDrift(excluded, { runner, variant }), []);
      assert.deepEqual(await checkDriftCheaply(excluded, { runner, variant, netlink }), {
        how: "restored",
        diff: ["set out_ex4_hosts: 0 elements (the plan: 1)"],
      });
      assert.deepEqual(await verifyInterception(excluded, { runner, variant }), []);
      assert.deepEqual(await checkDriftCheaply(excluded, { runner, variant, netlink }), { how: "unchanged" });
      inNs("nft", "delete", "rule", "inet", "osm_proxy", "output", "handle", handle);
      assert.equal(
        await checkDriftCheaply(excluded, { runner, variant, netlink }),
        undefined,
        "a rule: read back",
      );
      assert.match((await skeletonDrift(excluded, { runner, variant })).join("\n"), /chain output/);
      assert.equal((await syncInterception(excluded, { runner, variant })).how, "replaced");
      assert.deepEqual(await skeletonDrift(excluded, { runner, variant }), []);
      assert.deepEqual(await verdicts(), ["direct", "outbound-sidecar", "direct"]);
      // Between requests every helper is back in this process's namespace: it keeps no pod's alive.
      const helpers = readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            const stat = readFileSync(`/proc/${d}/stat`, "utf8");
            return (
              stat.includes("(osm-nft-batch)") && Number(stat.split(") ")[1]!.split(" ")[1]) === process.pid
            );
          } catch {
            return false; // ended meanwhile
          }
        });
      assert.ok(helpers.length > 0, "the helpers run");
      for (const pid of helpers)
        assert.equal(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync("/proc/self/ns/net"));
      const gone = await batch.run("/run/netns/osmt-no-such-namespace", "list tables");
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /cannot enter \/run\/netns\/osmt-no-such-namespace/);
      await cleanupInterception({ runner, variant });
    } finally {
      batch.close();
    }
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CommandResult, RecordingRunner } from "../../../src/edge/command-runner.ts";
import { parseNftTable } from "../../../src/interception/backend-nft.ts";
import {
  applyInterception,
  buildPlan,
  detectBackend,
  ElementSyncCache,
  OSM_CHAINS,
  planElementSync,
  renderNftElementUpdate,
  renderNftJson,
  renderNftTable,
  renderSaveRules,
  syncInterception,
} from "../../../src/interception/index.ts";
import { renderElementSync } from "../../../src/interception/live-update.ts";
import { parseCidr } from "../../../src/net/index.ts";
import { buildTestPolicy } from "../../golden/interception/policy-builder.ts";

const ok = (stdout = ""): CommandResult => ({ code: 0, stdout, stderr: "" });
const fail = (stderr: string): CommandResult => ({ code: 1, stdout: "", stderr });
const EMPTY_NAT = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

describe("backend detection", () => {
  it("picks nftables when nft works", async () => {
    const d = await detectBackend(new RecordingRunner(() => ok()));
    assert.equal(d.variant, "nftables");
  });

  it("probes the nat table of both iptables variants when nft does not work, and takes the one with rules", async () => {
    const runner = new RecordingRunner((argv) => {
      if (argv[0] === "nft") return fail("nft: command not found");
      if (argv[0] === "iptables-legacy-save") return ok(`${EMPTY_NAT}-A OUTPUT -j X\n`);
      return ok(EMPTY_NAT);
    });
    assert.deepEqual(await detectBackend(runner), { variant: "iptables-legacy", warnings: [] });
    assert.deepEqual(runner.calls.map((c) => c.argv.join(" ")).sort(), [
      "iptables-legacy-save -t nat",
      "iptables-nft-save -t nat",
      "nft list tables",
    ]);
  });

  it("warns when both variants hold nat rules", async () => {
    const runner = new RecordingRunner((argv) =>
      argv[0] === "nft" ? fail("no") : ok(`${EMPTY_NAT}-A OUTPUT -j X\n`),
    );
    const d = await detectBackend(runner, "iptables");
    assert.equal(d.variant, "iptables-nft");
    assert.match(d.warnings[0] ?? "", /both iptables-legacy .* and iptables-nft/);
  });

  it("falls back to legacy when the nft variant cannot open the nat table", async () => {
    const runner = new RecordingRunner((argv) =>
      argv[0] === "iptables-nft-save" ? fail("can't initialize iptables table `nat'") : ok(EMPTY_NAT),
    );
    assert.equal((await detectBackend(runner, "iptables")).variant, "iptables-legacy");
  });
});

describe("apply through the recording runner (dry run)", () => {
  it("tests, then restores the plan in one transaction, keeps foreign rules, and is a no-op once in sync", async () => {
    const plan = buildPlan(buildTestPolicy({ outboundIPRangeExclusionList: ["203.0.113.10/32"] }));
    const foreign = "-A OUTPUT -d 192.0.2.99/32 -j RETURN";
    // What iptables-save prints once the plan is in the kernel.
    const programmed = [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ...OSM_CHAINS.map((c) => `:${c} - [0:0]`),
      foreign,
      ...[...renderSaveRules(plan.iptables.v4).values()].flat(),
      "COMMIT",
      "",
    ].join("\n");
    let restored = false;
    const runner = new RecordingRunner((argv) => {
      if (argv[0] === "iptables-legacy-restore" && !argv.includes("--test")) restored = true;
      if (argv[0] === "iptables-legacy-save") return ok(restored ? programmed : `${EMPTY_NAT}${foreign}\n`);
      return ok();
    });
    const o = { runner, variant: "iptables-legacy" as const };
    assert.equal((await applyInterception(plan, o)).changed, true);
    const restores = runner.calls.filter((c) => c.argv[0] === "iptables-legacy-restore");
    assert.deepEqual(
      restores.map((c) => c.argv.join(" ")),
      ["iptables-legacy-restore --noflush --test", "iptables-legacy-restore --noflush"],
    );
    const input = restores[1]!.stdin ?? "";
    assert.ok(!input.includes("192.0.2.99"), "the foreign rule is not touched");
    assert.ok(input.includes("-A OSM_PROXY_OUTBOUND -d 203.0.113.10/32 -j RETURN\n"));
    const before = runner.calls.length;
    assert.equal((await applyInterception(plan, o)).changed, false);
    assert.ok(
      runner.calls
        .slice(before)
        .every((c) => c.argv[0] === "iptables-legacy-save" || c.argv[0] === "ip6tables-legacy-save"),
      "a re-apply only reads",
    );
  });

  it("refuses PodIP mode without a pod IP, before running anything", async () => {
    const runner = new RecordingRunner();
    const plan = buildPlan(buildTestPolicy({ localProxyMode: "PodIP" }));
    await assert.rejects(applyInterception(plan, { runner, variant: "nftables" }), /needs the pod IP/);
    assert.equal(runner.calls.length, 0);
  });
});

describe("live nft element updates", () => {
  it("puts hosts in hash sets and prefixes in interval sets, removals first, in one transaction", () => {
    assert.equal(
      renderNftElementUpdate({
        list: "exclusions",
        add: [parseCidr("203.0.113.10/32"), parseCidr("2001:db8::/64")],
        remove: [parseCidr("198.51.100.0/24")],
      }),
      "delete element inet osm_proxy out_ex4_nets { 198.51.100.0/24 }\n" +
        "add element inet osm_proxy out_ex4_hosts { 203.0.113.10 }\n" +
        "add element inet osm_proxy out_ex6_nets { 2001:db8::/64 }\n",
    );
  });
});

describe("live sync of a running pod", () => {
  const before = buildPlan(
    buildTestPolicy({ outboundIPRangeExclusionList: ["10.0.0.0/8", "198.51.100.0/24"] }),
  );
  const after = buildPlan(
    buildTestPolicy({
      outboundIPRangeExclusionList: ["198.51.100.0/24", "203.0.113.10/32", "2001:db8::/64"],
    }),
  );
  const parsed = (plan: typeof before) => parseNftTable(renderNftTable(plan.nft));

  it("an exclusion change is a set-element change; a chain difference is not", () => {
    const sync = planElementSync(parsed(after), parsed(before));
    assert.ok(sync);
    assert.equal(
      renderElementSync(sync),
      "delete element inet osm_proxy out_ex4_nets { 10.0.0.0/8 }\n" +
        "add element inet osm_proxy out_ex4_hosts { 203.0.113.10 }\n" +
        "add element inet osm_proxy out_ex6_nets { 2001:db8::/64 }\n",
    );
    const egressOff = buildPlan(buildTestPolicy({ enableEgress: false }));
    assert.equal(planElementSync(parsed(egressOff), parsed(before)), undefined);
  });

  it("a set losing every element is flushed, not deleted element by element (a full replacement)", () => {
    const replaced = buildPlan(
      buildTestPolicy({ outboundIPRangeExclusionList: ["192.0.2.0/24", "2001:db8::/64"] }),
    );
    const expected =
      "flush set inet osm_proxy out_ex4_nets\n" +
      "add element inet osm_proxy out_ex4_nets { 192.0.2.0/24 }\n" +
      "add element inet osm_proxy out_ex6_nets { 2001:db8::/64 }\n";
    assert.equal(renderElementSync(planElementSync(parsed(replaced), parsed(before))!), expected);
    assert.equal(renderElementSync(new ElementSyncCache().between(before, replaced)!), expected);
  });

  it("nft: one element transaction, then a read-back; the rules are left alone", async () => {
    let kernel = before;
    const runner = new RecordingRunner((argv) => {
      if (argv.join(" ") === "nft list table inet osm_proxy") return ok(renderNftTable(kernel.nft));
      if (argv.join(" ") === "nft -f -") {
        kernel = after;
        return ok();
      }
      return fail(`unexpected ${argv.join(" ")}`);
    });
    const outcome = await syncInterception(after, { runner, variant: "nftables" });
    assert.deepEqual(outcome, { how: "elements", added: 2, removed: 1 });
    const writes = runner.calls.filter((c) => c.argv.join(" ") !== "nft list table inet osm_proxy");
    assert.equal(writes.length, 1);
    assert.match(
      writes[0]?.stdin ?? "",
      /^delete element inet osm_proxy out_ex4_nets \{ 10\.0\.0\.0\/8 \}\n/,
    );
    assert.deepEqual(await syncInterception(after, { runner, variant: "nftables" }), { how: "unchanged" });
  });

  it("nft, knowing the plan last applied: the element transaction alone, no listing; a rejection falls back to the read-back", async () => {
    const runner = new RecordingRunner(() => ok());
    assert.deepEqual(await syncInterception(after, { runner, variant: "nftables" }, { applied: before }), {
      how: "elements",
      added: 2,
      removed: 1,
    });
    assert.deepEqual(
      runner.calls.map((c) => c.argv.join(" ")),
      ["nft -f -"],
    );
    assert.equal(runner.calls[0]?.stdin, renderElementSync(planElementSync(parsed(after), parsed(before))!));
    const drifted = new RecordingRunner((argv) =>
      argv.join(" ") === "nft -f -"
        ? fail("Error: Could not process rule: No such file or directory")
        : ok(renderNftTable(after.nft)),
    );
    assert.deepEqual(
      await syncInterception(after, { runner: drifted, variant: "nftables" }, { applied: before }),
      {
        how: "unchanged",
      },
    );
    assert.deepEqual(
      drifted.calls.map((c) => c.argv.join(" ")),
      ["nft -f -", "nft list table inet osm_proxy"],
    );
  });

  it("nft: a rejected element transaction fails naming nft's message, with nothing else run", async () => {
    const runner = new RecordingRunner((argv) =>
      argv.join(" ") === "nft -f -" ? fail("Error: Could not process rule") : ok(renderNftTable(before.nft)),
    );
    await assert.rejects(
      syncInterception(after, { runner, variant: "nftables" }),
      /nothing was applied: Error: Could not process rule/,
    );
    assert.equal(runner.calls.length, 2);
  });
});

describe("nft JSON rendering (what apply sends)", () => {
  it("replaces our table atomically and carries every rule of the plan with its osm/ comment", () => {
    const plan = buildPlan(
      buildTestPolicy({
        outboundIPRangeExclusionList: ["203.0.113.10/32", "2001:db8::/64"],
        localProxyMode: "PodIP",
      }),
    );
    const doc = JSON.parse(renderNftJson(plan, "192.0.2.9")) as {
      nftables: Record<string, Record<string, unknown>>[];
    };
    const cmds = doc.nftables;
    assert.deepEqual(
      cmds.slice(0, 3).map((c) => Object.keys(c)[0]),
      ["add", "delete", "add"],
    );
    const rules = cmds
      .filter((c) => c["add"]?.["rule"])
      .map((c) => c["add"]!["rule"] as { comment: string; expr: unknown[] });
    assert.equal(
      rules.length,
      plan.nft.chains.reduce((n, c) => n + c.rules.length, 0),
    );
    for (const r of rules) assert.match(r.comment, /^osm\/[a-z0-9_-]+$/);
    assert.ok(JSON.stringify(rules).includes('"addr":"192.0.2.9"'), "PodIP DNAT carries the literal pod IP");
    const hosts = cmds.find(
      (c) => (c["add"]?.["set"] as { name?: string } | undefined)?.name === "out_ex4_hosts",
    );
    assert.deepEqual((hosts!["add"]!["set"] as { elem: unknown[]; size: number }).elem, ["203.0.113.10"]);
  });
});

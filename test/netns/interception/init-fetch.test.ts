/**
 * `osm interception init`, what osm-init runs for a policy too large for the PodSpec, in a real network
 * namespace: it fetches the record by its hash from a controller stand-in (on the namespace's loopback),
 * programs it with the iptables backend (iptables-restore/ip6tables-restore on stdin, 5,000 exclusions, no
 * entry in argv) so that verify agrees, and fails closed (exit 1, no rules) when the text does not match the
 * hash or nobody serves it.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildEffectivePolicy, defaultMeshConfig, recordPolicy } from "../../../src/config/index.ts";
import { exclusionList } from "../../support/exclusions.ts";
import { run } from "../../support/run.ts";

const OSM = fileURLToPath(new URL("../../../bin/osm", import.meta.url));
const NS = `osmt-xi-${process.pid}`;
const PORT = 15128;
const skip =
  process.getuid?.() === 0 ? false : "needs root: creates a network namespace and programs iptables";

const base = defaultMeshConfig();
const record = recordPolicy(
  buildEffectivePolicy({
    ...base,
    spec: {
      ...base.spec,
      traffic: {
        ...base.spec.traffic,
        enableEgress: false,
        outboundIPRangeExclusionList: exclusionList(5000),
      },
    },
  }),
);

/** The controller stand-in: the record under its hash, another text under the hash 0…0. */
const SERVER = `const text = require("node:fs").readFileSync(process.env.TEXT_FILE, "utf8");
require("node:http").createServer((q, s) => {
  if (q.url === "/v1/interception-policies/" + process.env.HASH) s.end(text);
  else if (q.url === "/v1/interception-policies/" + "0".repeat(64)) s.end(text + " ");
  else { s.writeHead(404); s.end('{"error":"no such policy"}'); }
}).listen(${PORT}, "127.0.0.1", () => console.log("ready"));`;

const inNs = (argv: string[], timeoutMs = 60_000) => run("ip", ["netns", "exec", NS, ...argv], { timeoutMs });
const init = (hash: string, timeout = "30") =>
  inNs([
    OSM,
    "interception",
    "init",
    "--controller",
    `http://127.0.0.1:${PORT}`,
    "--policy-hash",
    hash,
    "--backend",
    "iptables",
    "--timeout",
    timeout,
  ]);
const saved = async (tool: string) => (await inNs([tool, "-t", "nat"])).stdout;

describe("osm interception init in a network namespace", { skip }, () => {
  let server: ChildProcess | undefined;
  let dir: string;
  let textFile: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-xi-"));
    textFile = join(dir, "record.json");
    writeFileSync(textFile, record.text);
    await run("ip", ["netns", "add", NS]);
    await run("ip", ["-n", NS, "link", "set", "lo", "up"]);
    server = spawn("ip", ["netns", "exec", NS, process.execPath, "-e", SERVER], {
      env: { ...process.env, TEXT_FILE: textFile, HASH: record.hash },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => server!.stdout!.once("data", () => resolve()));
  });
  after(async () => {
    server?.kill();
    await run("ip", ["netns", "del", NS]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a text whose sha256 is not the pod's hash, and programs nothing", async () => {
    const r = await init("0".repeat(64));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /answered a policy whose sha256 is [0-9a-f]{64}, not 0{64}/);
    assert.doesNotMatch(await saved("iptables-save"), /OSM_PROXY/);
  });

  it("fails when nobody serves the hash, naming it and how to recover", async () => {
    const r = await init("1".repeat(64), "2");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /could not fetch interception policy 1{64} .* within 2s: HTTP 404/);
    assert.match(r.stderr, /recreate the pod/);
  });

  it("programs 5,000 exclusions with iptables-restore and ip6tables-restore, and verify agrees", async () => {
    const r = await init(record.hash);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^applied policy ${record.hash.slice(0, 16)} \\(iptables-\\w+\\) in \\d+ ms\\n$`),
    );
    const v4 = await saved("iptables-save");
    assert.equal(v4.match(/-A OSM_PROXY_OUTBOUND -d 10\.\d+\.\d+\.\d+\/32 -j RETURN/g)?.length, 5000);
    // The namespace has IPv6 (::1 on lo): the ip6tables counterpart is there too, so IPv6 cannot bypass.
    assert.match(await saved("ip6tables-save"), /-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND/);
    // Egress is disabled in the record: the non-TCP filter is programmed as well.
    assert.match((await inNs(["iptables-save", "-t", "filter"])).stdout, /OSM_PROXY_EGRESS/);
  });
});

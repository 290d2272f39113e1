import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

/**
 * `osm demo` end to end, as a user runs it, on its own bridge, subnets, port, state directory and kubeconfig.
 * Asserts every step's observable in the printed output, and that nothing is left behind.
 *
 * The control plane runs as host processes here — the very commands its Deployments run (`osm controller
 * run`, `osm injector run`) — reachable on the bridge's host address, with the injector Service pointed at
 * it. The mesh is up before the demo starts, so the demo takes its "mesh already running" path and
 * restores the MeshConfig afterwards.
 */
const repo = new URL("../../../", import.meta.url).pathname;
const osm = join(repo, "bin/osm");
const isRoot = process.getuid?.() === 0;
const skip = !isRoot && "needs root: pods are network namespaces";
const BRIDGE = "osmt-gd0";
const PREFIX = "osmt-gd-";
const HOST = "198.51.100.225"; // the bridge's host address in 198.51.100.224/27

let dir: string;
let env: NodeJS.ProcessEnv;
let stateDir: string;
let kubeconfig: string;
const controlPlane: ChildProcess[] = [];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs = 120_000, input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
      },
    );
    // A command that exits before reading its stdin must not fail the test with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input ?? "");
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function must(file: string, ...args: string[]): Promise<string> {
  const r = await run(file, args);
  assert.equal(r.code, 0, `${file} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), "osmt-gd-demo-"));
  stateDir = join(dir, "state");
  kubeconfig = join(dir, "kubeconfig");
  env = { ...process.env, HOME: dir, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, "cache") };
  await must(
    osm,
    "mesh",
    "up",
    "--state-dir",
    stateDir,
    "--kubeconfig",
    kubeconfig,
    "--port",
    String(await freePort()),
    "--bridge",
    BRIDGE,
    "--name-prefix",
    PREFIX,
    "--subnet4",
    "198.51.100.224/27",
    "--subnet6",
    "2001:db8:1:7::/64",
    "--last-slot",
    "30",
  );
  await must(osm, "install");
  await must(
    "kubectl",
    "scale",
    "deployment",
    "osm-controller",
    "osm-injector",
    "-n",
    "osm-system",
    "--replicas=0",
  );
  await must(
    "kubectl",
    "patch",
    "service",
    "osm-injector",
    "-n",
    "osm-system",
    "--type=json",
    "-p",
    '[{"op":"remove","path":"/spec/selector"}]',
  );
  const endpoints = `{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"osm-injector","namespace":"osm-system"},"subsets":[{"addresses":[{"ip":"${HOST}"}],"ports":[{"name":"webhook","port":9090,"protocol":"TCP"}]}]}`;
  const applied = await run("kubectl", ["apply", "-f", "-"], 60_000, endpoints);
  assert.equal(applied.code, 0, applied.stderr);
  const start = (args: string[]) => {
    const child = spawn(osm, args, { env, stdio: "ignore" });
    controlPlane.push(child);
  };
  start(["controller", "run", "--kubeconfig", kubeconfig, "--listen", `${HOST}:15128`]);
  start([
    "injector",
    "run",
    "--kubeconfig",
    kubeconfig,
    "--listen",
    `${HOST}:9090`,
    "--sidecar-image",
    "osm-ts/sidecar",
    "--init-container-image",
    "osm-ts/init",
    "--controller-url",
    `http://${HOST}:15128`,
    "--osm-command",
    osm,
  ]);
  // Ready when the injector has published its CA into the webhook configuration.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ca = await run("kubectl", [
      "get",
      "mutatingwebhookconfiguration",
      "osm-webhook-osm",
      "-o",
      "jsonpath={.webhooks[0].clientConfig.caBundle}",
    ]);
    if (ca.stdout.length > 0) break;
    assert.ok(Date.now() < deadline, "the injector did not publish its caBundle");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
});

after(async () => {
  for (const child of controlPlane)
    if (child.pid !== undefined && child.exitCode === null) child.kill("SIGTERM");
  if (stateDir)
    await run(osm, ["mesh", "down", "--state-dir", stateDir, "--kubeconfig", kubeconfig, "--purge"]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function demo(ipv6: boolean): Promise<Ran> {
  return run(
    osm,
    ["demo", ...(ipv6 ? ["--ipv6"] : []), "--state-dir", stateDir, "--kubeconfig", kubeconfig],
    600_000,
  );
}

/** The block of output a step printed: from its progress line to the next one. */
function stepBlock(stdout: string, title: RegExp): string {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => /^\[\s*\d+\/\d+\] /.test(l) && title.test(l));
  assert.ok(start >= 0, `no step matching ${title} in:\n${stdout}`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^\[\s*\d+\/\d+\] /.test(l) || l === "Cleaning up");
  return rest.slice(0, end < 0 ? undefined : end).join("\n");
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function assertGuideObservables(stdout: string, excluded: string, other: string, cidr: string): void {
  assert.match(stepBlock(stdout, /Disable egress/), /osm-mesh-config patched/);
  assert.match(
    stepBlock(stdout, /Add it to the mesh/),
    /Namespace \[curl\] successfully added to mesh \[osm\]/,
  );
  assert.match(stepBlock(stdout, /curl pod to run with its sidecar/), /curl-\S+\s+2\/2\s+Running/);
  assert.match(stepBlock(stdout, new RegExp(`curl ${esc(excluded)} from the pod: refused`)), /curl: \(7\)/);
  assert.match(
    stepBlock(stdout, /Read the exclusion list back/),
    new RegExp(`^${esc(JSON.stringify([cidr]))}$`, "m"),
  );
  assert.match(
    stepBlock(stdout, /invalid exclusion is refused/),
    /outboundIPRangeExclusionList\[0\]: Invalid value/,
  );
  assert.match(
    stepBlock(stdout, /MeshConfig is unchanged/),
    new RegExp(`^${esc(JSON.stringify([cidr]))}$`, "m"),
  );
  const stale = stepBlock(stdout, /running pod is stale/);
  assert.match(stale, /STALE +\+/);
  assert.match(stale, new RegExp(`\\+${esc(cidr)}`));
  assert.match(stepBlock(stdout, /\] Restart it$/), /deployment\.apps\/curl restarted/);
  const current = stepBlock(stdout, /new pod runs the current/);
  assert.match(current, / current /);
  assert.doesNotMatch(current, /^curl\s+\S+\s+STALE/m);
  assert.match(
    stepBlock(stdout, new RegExp(`curl ${esc(excluded)} from the pod: it answers`)),
    /^HTTP\/1\.1 200 OK/m,
  );
  assert.match(
    stepBlock(stdout, new RegExp(`curl ${esc(other)} from the pod: still refused`)),
    /curl: \(7\)/,
  );
  assert.match(stepBlock(stdout, /Explain: .* goes direct/), /verdict: direct[\s\S]*as recorded/);
  assert.match(stepBlock(stdout, /Explain: .* refuses it/), /refused: egress is disabled/);
  assert.match(stepBlock(stdout, /curl httpbin through both sidecars/), /^HTTP\/1\.1 200 OK/m);
  assert.match(stepBlock(stdout, /again: outside the mesh, still refused/), /curl: \((7|52|56)\)/);
  assert.doesNotMatch(stdout, /warning: clean-up step/);
  assert.match(stdout, /\nDemo passed: (\d+)\/\1 steps in \d+\.\ds\n$/);
}

/** What the demo created is gone; the mesh it found is as it was (egress back on, no exclusions). */
async function assertDemoCleanedUp(): Promise<void> {
  const traffic = await must(
    "kubectl",
    "get",
    "meshconfig",
    "osm-mesh-config",
    "-n",
    "osm-system",
    "-o",
    "jsonpath={.spec.traffic}",
  );
  const parsed = JSON.parse(traffic) as { enableEgress: boolean; outboundIPRangeExclusionList?: string[] };
  assert.equal(parsed.enableEgress, true);
  assert.deepEqual(parsed.outboundIPRangeExclusionList ?? [], []);
  const hosts = await must(osm, "mesh", "status", "--state-dir", stateDir, "-o", "json");
  assert.deepEqual((JSON.parse(hosts) as { health: { externalHosts: string[] } }).health.externalHosts, []);
  // Namespace deletion is asynchronous: wait until the next run may create them again.
  const deadline = Date.now() + 60_000;
  while (
    (await run("kubectl", ["get", "namespace", "curl", "httpbin", "--ignore-not-found", "-o", "name"]))
      .stdout !== ""
  ) {
    assert.ok(Date.now() < deadline, "the demo's namespaces were not deleted");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

test("osm demo runs the guide end to end over IPv4 and puts the mesh back as it found it", {
  skip,
}, async () => {
  const out = await demo(false);
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
  assertGuideObservables(out.stdout, "203.0.113.10", "203.0.113.11", "203.0.113.10/32");
  await assertDemoCleanedUp();
});

test("osm demo --ipv6 runs the same guide with 2001:db8::10 and 2001:db8::11", { skip }, async () => {
  const out = await demo(true);
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
  assertGuideObservables(out.stdout, "2001:db8::10", "2001:db8::11", "2001:db8::10/128");
  await assertDemoCleanedUp();
});

test("after osm mesh down nothing of the demo's mesh is left on the host", { skip }, async () => {
  for (const child of controlPlane) child.kill("SIGTERM");
  await must(osm, "mesh", "down", "--state-dir", stateDir, "--kubeconfig", kubeconfig, "--purge");
  const links = await must("ip", "-o", "link", "show");
  assert.doesNotMatch(links, new RegExp(`${BRIDGE}|${PREFIX}`));
  const netns = await must("ip", "netns", "list");
  assert.doesNotMatch(netns, new RegExp(PREFIX));
  assert.equal(existsSync(stateDir), false);
  assert.doesNotMatch(readFileSync(kubeconfig, "utf8"), /osm-local/);
});

/**
 * Issue 18: OSM's "outbound IP range exclusions" guide, watched through `osm dashboard` in real headless
 * Chromium (Debian's `chromium`, driven by playwright-core). The guide's commands are run with kubectl as a
 * user would; the page must show, with no reload: the curl pod current, then STALE with +203.0.113.10/32
 * after the exclusion patch, then only the new pod, current, after the restart; explain answering `direct` for
 * 203.0.113.10:80 and `refused: egress is disabled` for 203.0.113.11:80; the sidecar's refusal of a
 * connection in the live stream within 1 s of it; and a bad MeshConfig edit showing field, value and hint
 * while nothing is stored. `OSM_DASHBOARD_SCREENSHOTS=DIR` saves a PNG of each view there
 * (docs/dashboard/ holds the committed ones).
 *
 * On either engine (`OSM_TEST_ENGINE`): the dashboard talks to the API server only.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { localMesh, meshDownPurgeArgs, patchMeshConfig } from "../../support/mesh.ts";
import { until } from "../../support/poll.ts";
import { type Ran, run } from "../../support/run.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const OSM = join(REPO, "bin", "osm");
const CHROMIUM = "/usr/bin/chromium";
const EXCLUDED = "203.0.113.10";
const OTHER = "203.0.113.11";
/** A locator's text (its DOM textContent). */
const textOf = async (locator: Locator) => (await locator.textContent()) ?? "";
const SHOTS = process.env["OSM_DASHBOARD_SCREENSHOTS"];
const skip =
  process.getuid?.() !== 0
    ? "needs root: the daemon creates network namespaces and a bridge"
    : !existsSync(CHROMIUM)
      ? `needs Debian's chromium (${CHROMIUM}); bash scripts/setup installs it`
      : false;

/** HTTP on port 80 of the external host's addresses (the guide's httpbin.org). */
const SERVER = `require("node:http").createServer((q, s) => s.end("ok")).listen(80, "0.0.0.0", () => console.log("ready"))`;

describe("osm dashboard: the guide in a browser", { skip, concurrency: false }, () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let stateDir = "";
  let kubeconfig = "";
  let external: ChildProcess | undefined;
  let dashboard: ChildProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let url = "";
  let pod = "";
  const kubectl = (...args: string[]) => run("kubectl", args, { env, timeoutMs: 120_000 });
  const osm = (...args: string[]) => run(OSM, args, { env, timeoutMs: 180_000 });
  const must = async (ran: Promise<Ran>) => {
    const r = await ran;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return r.stdout;
  };
  const shot = async (name: string) => {
    if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const view = async (name: string) => {
    await page.click(`nav a[href="#${name}"]`);
    await page.waitForSelector("main .view");
  };
  /** The only curl pod that is running and not being deleted. */
  const curlPods = async () =>
    (
      await must(
        kubectl(
          "get",
          "pods",
          "-n",
          "curl",
          "-l",
          "app=curl",
          "-o",
          "jsonpath={range .items[?(@.status.phase=='Running')]}{.metadata.name} {.metadata.deletionTimestamp}{'\\n'}{end}",
        ),
      )
    )
      .split("\n")
      .filter((l) => l.trim() !== "" && l.trim().split(" ").length === 1)
      .map((l) => l.trim());
  /** One connection from the curl pod to the non-excluded address. */
  const curlOther = () =>
    kubectl("exec", "-n", "curl", pod, "-c", "curl", "--", "curl", "-sS", "-m", "5", `http://${OTHER}:80/`);
  /** Until the app's pods exist and are Ready (`kubectl wait` fails at once while none exists yet). */
  const waitReady = (namespace: string, app: string) =>
    until(
      `pods app=${app} Ready in ${namespace}`,
      async () => {
        const args = [
          "wait",
          "--for=condition=Ready",
          "pod",
          "-l",
          `app=${app}`,
          "-n",
          namespace,
          "--timeout=20s",
        ];
        return (await kubectl(...args)).code === 0 ? true : undefined;
      },
      180_000,
      1_000,
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "osmt-db-"));
    let upArgs: string[];
    ({ stateDir, kubeconfig, env, upArgs } = await localMesh(dir, {
      bridge: "osmt-db0",
      namePrefix: "osmt-db-",
      subnet4: "203.0.113.192/28",
      subnet6: "2001:db8:1:d::/64",
      lastSlot: 14,
    }));
    await must(osm(...upArgs));
    // OSM's defaults (sidecar log level error): the access log, the live stream's source, is written anyway.
    await must(osm("install"));
    const host = await must(
      osm(
        "mesh",
        "external-host",
        "add",
        "osmt-db-ext",
        "--state-dir",
        stateDir,
        "--address",
        EXCLUDED,
        OTHER,
      ),
    );
    const netns = /netns (\S+?),/.exec(host)?.[1];
    assert.ok(netns, host);
    external = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", SERVER], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let said = "";
    external.stdout?.on("data", (chunk: Buffer) => {
      said += chunk.toString();
    });
    await until("the external server listens", () => (said.includes("ready") ? true : undefined), 15_000);

    dashboard = spawn(OSM, ["dashboard", "--port", "0", "--no-browser"], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let printed = "";
    dashboard.stdout?.on("data", (chunk: Buffer) => {
      printed += chunk.toString();
    });
    url = await until(
      "osm dashboard prints its URL",
      () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(printed)?.[1],
      30_000,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    if (dashboard?.pid !== undefined && dashboard.exitCode === null) process.kill(dashboard.pid, "SIGTERM");
    if (external?.pid !== undefined && external.exitCode === null) process.kill(external.pid);
    if (stateDir) await osm(...meshDownPurgeArgs(stateDir, kubeconfig));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("it serves 127.0.0.1 only and refuses another Host (DNS rebinding)", async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const port = new URL(url).port;
    // fetch() may not set Host; node:http may.
    const status = await new Promise<number | undefined>((resolve, reject) =>
      get(`${url}api/state`, { headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on("error", reject),
    );
    assert.equal(status, 403);
  });

  test("the guide: curl pod current, STALE after the exclusion patch, current after the restart", async () => {
    await must(patchMeshConfig(env, { spec: { traffic: { enableEgress: false } } }));
    await must(kubectl("create", "namespace", "curl"));
    await must(osm("namespace", "add", "curl"));
    await must(kubectl("apply", "-f", join(REPO, "examples/guide/curl.yaml"), "-n", "curl"));
    await waitReady("curl", "curl");
    pod = (await curlPods())[0] ?? "";
    assert.notEqual(pod, "");

    await page.goto(`${url}#pods`);
    const row = (name: string) => page.locator(`tr[data-pod="curl/${name}"]`);
    await row(pod).locator("text=current").waitFor({ timeout: 30_000 });
    await page.waitForSelector('[data-testid="connection"]:has-text("live")');

    await must(
      patchMeshConfig(env, { spec: { traffic: { outboundIPRangeExclusionList: [`${EXCLUDED}/32`] } } }),
    );
    // No reload: the watch brings the change.
    await row(pod).locator("text=STALE").waitFor({ timeout: 15_000 });
    assert.match(await textOf(row(pod)), /\+203\.0\.113\.10\/32/);
    assert.equal(
      (await textOf(page.locator('[data-testid="restart"]'))).trim(),
      "kubectl rollout restart deployment curl -n curl",
    );
    await shot("pods");

    await view("overview");
    assert.equal(await textOf(page.locator('[data-testid="egress"]')), "disabled");
    assert.equal(await textOf(page.locator('[data-testid="stale-count"]')), "1");
    const entries = await page.locator('[data-testid="entry"]').allInnerTexts();
    assert.ok(
      entries.some(
        (e) =>
          e.includes(`${EXCLUDED}/32`) && e.includes("MeshConfig spec.traffic.outboundIPRangeExclusionList"),
      ),
      entries.join("\n"),
    );
    const warnings = await page.locator('[data-testid="warning"]').allInnerTexts();
    assert.ok(
      warnings.some((w) => w.startsWith("egress-disabled-bypassed:")),
      warnings.join("\n"),
    );
    await shot("overview");

    await must(kubectl("rollout", "restart", "deployment", "curl", "-n", "curl"));
    await must(kubectl("rollout", "status", "deployment", "curl", "-n", "curl", "--timeout=150s"));
    pod = await until(
      "only the new curl pod runs",
      async () => {
        const pods = await curlPods();
        const [only] = pods;
        return pods.length === 1 && only !== pod ? only : undefined;
      },
      120_000,
      500,
    );
    await view("pods");
    await row(pod).locator("text=current").waitFor({ timeout: 30_000 });
    await page.waitForFunction('document.querySelectorAll("tr[data-pod]").length === 1', undefined, {
      timeout: 60_000,
    });
  });

  test("explain: direct for the excluded address, refused: egress is disabled for the other", async () => {
    await view("explain");
    await page.selectOption('select[name="pod"]', `curl/${pod}`);
    const ask = async (destination: string) => {
      await page.fill('input[name="destination"]', destination);
      await page.click('button[type="submit"]');
      await page.waitForSelector(`[data-testid="explain-text"]:has-text("${destination}")`, {
        timeout: 30_000,
      });
      return {
        verdict: await textOf(page.locator('[data-testid="explain-verdict"]')),
        summary: await textOf(page.locator('[data-testid="explain-summary"]')),
        text: await textOf(page.locator('[data-testid="explain-text"]')),
      };
    };
    const direct = await ask(`${EXCLUDED}:80`);
    assert.equal(direct.verdict, "direct", direct.text);
    assert.match(direct.text, /from: MeshConfig spec\.traffic\.outboundIPRangeExclusionList/);
    const refused = await ask(`${OTHER}:80`);
    assert.equal(refused.verdict, "refused", refused.text);
    assert.match(refused.summary, /refused: egress is disabled/);
    await shot("explain");
  });

  test("live decisions: the sidecar's refusal shows within 1 s of the connection", async (t) => {
    // With egress off and no mesh destination the sidecar does not listen at all (OSM's shape: the kernel
    // refuses, no sidecar sees it); a meshed httpbin gives the curl pod's sidecar a destination, so it
    // accepts and refuses non-mesh connections itself (docs/osm-behaviour.md §5.1).
    await must(kubectl("create", "namespace", "httpbin"));
    await must(osm("namespace", "add", "httpbin"));
    await must(kubectl("apply", "-f", join(REPO, "examples/guide/httpbin.yaml"), "-n", "httpbin"));
    await waitReady("httpbin", "httpbin");
    await view("live");
    const refusedRow = `[data-testid="decision"][data-verdict="refused"][data-destination="${OTHER}:80"]`;
    // The sidecar learns of httpbin from the controller: until then curl gets (7) from the kernel.
    const observed = await until(
      "a refusal by the sidecar in the live stream",
      async () => {
        await curlOther();
        const found = await page.waitForSelector(refusedRow, { timeout: 3_000 }).catch(() => undefined);
        return found ? true : undefined;
      },
      90_000,
      500,
    );
    assert.equal(observed, true);
    // Now timed: one more connection; its row must arrive within 1 s of the sidecar's decision.
    const before = await page.locator(refusedRow).count();
    const exec = await curlOther();
    assert.notEqual(exec.code, 0, "the connection is refused");
    // Polled every animation frame: the delay from the sidecar's decision (its log time) to the row in the page.
    const delay = await page.waitForFunction(
      `(() => {
        const rows = document.querySelectorAll(${JSON.stringify(refusedRow)});
        // Newest first.
        return rows.length > ${before} ? Date.now() - Date.parse(rows[0].dataset.time) : undefined;
      })()`,
      undefined,
      { timeout: 10_000 },
    );
    const ms = (await delay.jsonValue()) as number;
    t.diagnostic(`decision to page: ${ms} ms`);
    assert.ok(ms < 1000, `the decision arrived ${ms} ms after the sidecar made it`);
    const why = await textOf(page.locator(refusedRow).first());
    assert.match(why, /MeshConfig spec\.traffic\.enableEgress: false/);
    await page.selectOption('select[name="verdict"]', "refused");
    assert.equal(await page.locator('[data-testid="decision"][data-verdict="passthrough"]').count(), 0);
    await shot("live");
  });

  test("MeshConfig editor: a bad exclusion shows field, value and hint from the server's dry run; nothing is saved", async () => {
    await view("meshconfig");
    const stored = async () =>
      must(
        kubectl(
          "get",
          "meshconfig",
          "osm-mesh-config",
          "-n",
          "osm-system",
          "-o",
          "jsonpath={.spec.traffic.outboundIPRangeExclusionList}",
        ),
      );
    const was = await stored();
    const text = await page.inputValue('textarea[name="traffic"]');
    const edited = JSON.parse(text) as Record<string, unknown>;
    edited["outboundIPRangeExclusionList"] = [`${EXCLUDED}/33`];
    await page.fill('textarea[name="traffic"]', JSON.stringify(edited, null, 2));
    await page.click('button:has-text("Check")');
    const answer = page.locator('[data-testid="meshconfig-answer"]');
    await answer.waitFor({ timeout: 30_000 });
    assert.equal(await answer.getAttribute("data-ok"), "false");
    assert.equal(
      await textOf(page.locator('[data-testid="problem-field"]').first()),
      "spec.traffic.outboundIPRangeExclusionList[0]",
    );
    assert.equal(await textOf(page.locator('[data-testid="problem-value"]').first()), `"${EXCLUDED}/33"`);
    assert.match(
      await textOf(page.locator('[data-testid="problem-hint"]').first()),
      /prefix lengths go from 0 to 32/,
    );
    assert.equal(await page.locator('button:has-text("Save")').isDisabled(), true);
    await shot("meshconfig");
    assert.equal(await stored(), was);

    // A good edit: the dry run's warnings first, then a real save through admission.
    edited["outboundIPRangeExclusionList"] = [`${EXCLUDED}/32`, "192.0.2.0/24"];
    await page.fill('textarea[name="traffic"]', JSON.stringify(edited, null, 2));
    await page.click('button:has-text("Check")');
    await page.waitForSelector('[data-testid="meshconfig-answer"][data-ok="true"]', { timeout: 30_000 });
    const warnings = await page.locator('[data-testid="answer-warning"]').allInnerTexts();
    assert.ok(
      warnings.some((w) => w.includes("running pods keep what they were created with")),
      warnings.join("\n"),
    );
    assert.equal(await stored(), was, "a dry run stores nothing");
    await page.click('button:has-text("Save")');
    await page.waitForSelector('[data-testid="meshconfig-answer"]:has-text("Saved")', { timeout: 30_000 });
    assert.equal(await stored(), `["${EXCLUDED}/32","192.0.2.0/24"]`);
  });
});

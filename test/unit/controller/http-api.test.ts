import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import pino from "pino";
import { parseSidecarConfig, SIDECAR_CONFIG_PATH } from "../../../src/config/sidecar-api.ts";
import { ConfigHub } from "../../../src/controller/config-hub.ts";
import {
  INTERCEPTION_POLICY_PATH,
  type RunningHttpApi,
  STALE_PODS_PATH,
  startHttpApi,
} from "../../../src/controller/http-api.ts";
import { createControllerMetrics } from "../../../src/controller/metrics.ts";
import type { TokenReviewer } from "../../../src/controller/sidecar-auth.ts";

const TOKEN_A = "token-a";
const pods: Record<string, V1Pod> = {
  "curl/a": { metadata: { name: "a", namespace: "curl", uid: "uid-a" } },
  "curl/b": { metadata: { name: "b", namespace: "curl", uid: "uid-b" } },
};
/** The API server's TokenReview, as it answers for the two pods' projected tokens. */
const review: TokenReviewer = async (token) => {
  const name = { [TOKEN_A]: "a", "token-b": "b" }[token];
  if (!name) return { authenticated: false };
  return {
    authenticated: true,
    username: "system:serviceaccount:curl:default",
    extra: {
      "authentication.kubernetes.io/pod-name": [name],
      "authentication.kubernetes.io/pod-uid": [`uid-${name}`],
    },
    audiences: ["osm-controller"],
  };
};
const POLICY_TEXT = '{"format":"osm-ts/interception-policy/v1"}';
const POLICY_HASH = createHash("sha256").update(POLICY_TEXT).digest("hex");
const hub = new ConfigHub();
let ready = false;
let api: RunningHttpApi;

before(async () => {
  api = await startHttpApi({
    host: "127.0.0.1",
    port: 0,
    logger: pino({ level: "silent" }),
    metrics: createControllerMetrics(),
    review,
    state: {
      hub,
      lookupPod: (ns, name) => pods[`${ns}/${name}`],
      isReady: () => ready,
      stalePods: () => [
        { namespace: "curl", name: "a", recordedHash: "h1", currentHash: "h2", diff: ["+203.0.113.10/32"] },
      ],
      interceptionPolicy: (hash) => (hash === POLICY_HASH ? POLICY_TEXT : undefined),
    },
  });
});
after(async () => {
  hub.close();
  await api.close();
});

const configUrl = (query: string) => `${api.url}${SIDECAR_CONFIG_PATH}?${query}`;
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

test("a sidecar without a token, with another pod's token, or naming an unknown pod gets 401", async () => {
  for (const [query, init] of [
    ["pod=curl/a", {}],
    ["pod=curl/a", bearer("token-b")],
    ["pod=curl/zzz", bearer(TOKEN_A)],
  ] as const) {
    const res = await fetch(configUrl(query), init);
    assert.equal(res.status, 401, query);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
    await res.text();
  }
});

test("a malformed query gets 400 naming the expected parameters", async () => {
  for (const query of ["pod=nopod", "pod=curl/a&sinceVersion=-1", "pod=curl/a&timeoutSeconds=x"]) {
    const res = await fetch(configUrl(query), bearer(TOKEN_A));
    assert.equal(res.status, 400, query);
    assert.match(((await res.json()) as { error: string }).error, /pod=<namespace>\/<name>/);
  }
});

test("before the caches are synced an authenticated sidecar gets 503 and /readyz says not ready", async () => {
  ready = false;
  const res = await fetch(configUrl("pod=curl/a"), bearer(TOKEN_A));
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  await res.text();
  const readyz = await fetch(`${api.url}/readyz`);
  assert.equal(readyz.status, 503);
  await readyz.text();
});

test("a ready controller answers with the pod's config at once, valid under the shared schema", async () => {
  ready = true;
  hub.set("curl/a", { enableEgress: true, maxDataPlaneConnections: 0, meshEndpoints: [] });
  const res = await fetch(configUrl("pod=curl/a"), bearer(TOKEN_A));
  assert.equal(res.status, 200);
  const parsed = parseSidecarConfig(await res.json());
  assert.ok(parsed.ok);
  assert.equal(parsed.config.enableEgress, true);
});

test("a long-poll with nothing newer ends with 204 after timeoutSeconds", async () => {
  ready = true;
  hub.set("curl/a", { enableEgress: true, maxDataPlaneConnections: 0, meshEndpoints: [] });
  const version = hub.get("curl/a")?.version ?? 0;
  const started = Date.now();
  const res = await fetch(configUrl(`pod=curl/a&sinceVersion=${version}&timeoutSeconds=1`), bearer(TOKEN_A));
  assert.equal(res.status, 204);
  assert.ok(Date.now() - started >= 900);
});

test("a held long-poll is answered within a second of a change", async () => {
  ready = true;
  hub.set("curl/a", { enableEgress: true, maxDataPlaneConnections: 0, meshEndpoints: [] });
  const version = hub.get("curl/a")?.version ?? 0;
  const pending = fetch(configUrl(`pod=curl/a&sinceVersion=${version}&timeoutSeconds=30`), bearer(TOKEN_A));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const changedAt = Date.now();
  hub.set("curl/a", { enableEgress: false, maxDataPlaneConnections: 0, meshEndpoints: [] });
  const res = await pending;
  assert.equal(res.status, 200);
  const body = (await res.json()) as { enableEgress: boolean; version: number };
  assert.equal(body.enableEgress, false);
  assert.ok(body.version > version);
  assert.ok(Date.now() - changedAt < 1000);
});

test("the stale report, metrics and health endpoints answer", async () => {
  ready = true;
  const stale = (await (await fetch(`${api.url}${STALE_PODS_PATH}`)).json()) as {
    kind: string;
    items: { name: string; diff: string[] }[];
  };
  assert.equal(stale.kind, "StalePodList");
  assert.deepEqual(stale.items[0]?.diff, ["+203.0.113.10/32"]);
  const metrics = await (await fetch(`${api.url}/metrics`)).text();
  assert.match(metrics, /osm_ts_controller_sidecar_auth_failures_total\{reason="wrong-pod"\} \d/);
  assert.match(metrics, /osm_ts_controller_sidecar_config_responses_total\{status="200"\}/);
  assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${api.url}/readyz`)).status, 200);
  assert.equal((await fetch(`${api.url}/health/alive`)).status, 200);
  assert.equal((await fetch(`${api.url}/health/ready`)).status, 200);
  assert.equal((await fetch(`${api.url}/nope`)).status, 404);
  assert.equal((await fetch(`${api.url}/healthz`, { method: "POST" })).status, 405);
});

test("a pod policy is served by its hash once ready; unknown hashes are 404 with retry-after, bad ones 400", async () => {
  ready = true;
  const ok = await fetch(`${api.url}${INTERCEPTION_POLICY_PATH}${POLICY_HASH}`);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), POLICY_TEXT);
  const unknown = await fetch(`${api.url}${INTERCEPTION_POLICY_PATH}${"0".repeat(64)}`);
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers.get("retry-after"), "1");
  assert.match(
    ((await unknown.json()) as { error: string }).error,
    /is known here \(is the pod new\? retry\)/,
  );
  const bad = await fetch(`${api.url}${INTERCEPTION_POLICY_PATH}xyz`);
  assert.equal(bad.status, 400);
  await bad.text();
  ready = false;
  const starting = await fetch(`${api.url}${INTERCEPTION_POLICY_PATH}${POLICY_HASH}`);
  assert.equal(starting.status, 404);
  assert.match(((await starting.json()) as { error: string }).error, /controller is starting/);
});

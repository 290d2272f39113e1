import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  buildEffectivePolicy,
  canonicalPolicyText,
  type MeshConfig,
  policyHash,
} from "../../../src/config/index.ts";
import {
  ANNOTATION_INTERCEPTION_LIVE_FAILED,
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
  ANNOTATION_INTERCEPTION_UPDATED_LIVE,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST,
} from "../../../src/constants.ts";
import { evaluatePods, formatProxyStatus } from "../../../src/guide/proxy-status.ts";
import { restartCommand } from "../../../src/guide/restart-command.ts";
import { meshConfig } from "../injector/builders.ts";

/** A pod as the injector admitted it under `admittedWith`. */
function admittedPod(name: string, admittedWith: MeshConfig, extra: Record<string, string> = {}): V1Pod {
  const policy = buildEffectivePolicy(admittedWith, { podAnnotations: extra });
  return {
    metadata: {
      name,
      namespace: "curl",
      labels: { app: "curl", "pod-template-hash": "54ccc6954c" },
      annotations: {
        ...extra,
        [ANNOTATION_INTERCEPTION_POLICY_HASH]: policyHash(policy),
        [ANNOTATION_INTERCEPTION_POLICY]: canonicalPolicyText(policy),
      },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "curl-54ccc6954c", uid: "u1", controller: true },
      ],
    },
    status: { phase: "Running" },
  };
}

test("a pod admitted before an exclusion was added is stale, shows +CIDR and the rollout restart", () => {
  const before = meshConfig({ traffic: { enableEgress: false } });
  const after = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const statuses = evaluatePods([admittedPod("curl-54ccc6954c-9rlvp", before)], new Map(), after);
  assert.deepEqual(statuses, [
    {
      namespace: "curl",
      pod: "curl-54ccc6954c-9rlvp",
      state: "stale",
      details: ["+203.0.113.10/32"],
      restart: "kubectl rollout restart deployment curl -n curl",
    },
  ]);
  const text = formatProxyStatus(statuses, "in namespace curl");
  assert.match(text, /^NAMESPACE {3}POD {21}INTERCEPTION {3}DIFFERENCE/);
  assert.match(text, /curl-54ccc6954c-9rlvp {3}STALE {10}\+203\.0\.113\.10\/32/);
  assert.match(text, /\n {2}kubectl rollout restart deployment curl -n curl\n/);
});

test("a pod admitted under the current MeshConfig is current; disabling egress makes it stale (non-TCP filter)", () => {
  const admitted = meshConfig({
    traffic: { enableEgress: true, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const now = meshConfig({
    traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] },
  });
  const current = evaluatePods([admittedPod("curl-1", admitted)], new Map(), admitted);
  assert.deepEqual(current, [{ namespace: "curl", pod: "curl-1", state: "current", details: [] }]);
  assert.match(formatProxyStatus(current, "in namespace curl"), /All 1 meshed pod\(s\) run the current/);
  // TCP egress follows the MeshConfig live (the sidecar), but the non-TCP filter is programmed at pod start.
  const stale = evaluatePods([admittedPod("curl-1", admitted)], new Map(), now);
  assert.deepEqual(stale[0]?.details, ["non-TCP egress dropped (was allowed)"]);
  const back = evaluatePods([admittedPod("curl-1", now)], new Map(), admitted);
  assert.deepEqual(back[0]?.details, ["non-TCP egress allowed (was dropped)"]);
});

test("pods without a recorded policy, and terminating pods, are left out", () => {
  const config = meshConfig({ traffic: {} });
  const terminating = admittedPod(
    "curl-old",
    meshConfig({ traffic: { outboundIPRangeExclusionList: ["192.0.2.0/24"] } }),
  );
  terminating.metadata!.deletionTimestamp = new Date();
  const plain: V1Pod = { metadata: { name: "plain", namespace: "curl" }, status: { phase: "Running" } };
  assert.deepEqual(evaluatePods([terminating, plain], new Map(), config), []);
  assert.equal(formatProxyStatus([], "in namespace curl"), "No meshed pods found in namespace curl\n");
});

test("a removed exclusion shows as -CIDR and a pod annotation's entries are kept", () => {
  const admitted = meshConfig({ traffic: { outboundIPRangeExclusionList: ["203.0.113.0/24"] } });
  const pod = admittedPod("curl-2", admitted, {
    [ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST]: "192.0.2.7/32",
  });
  const [status] = evaluatePods([pod], new Map(), meshConfig({ traffic: {} }));
  assert.deepEqual(status?.details, ["-203.0.113.0/24"]);
});

test("the restart command follows the pod's owner", () => {
  assert.equal(
    restartCommand("ns", "web-7d9f-abcde", { kind: "ReplicaSet", name: "web-7d9f" }, "7d9f"),
    "kubectl rollout restart deployment web -n ns",
  );
  assert.equal(
    restartCommand("ns", "db-0", { kind: "StatefulSet", name: "db" }, undefined),
    "kubectl rollout restart statefulset db -n ns",
  );
  assert.match(restartCommand("ns", "lonely", undefined, undefined), /^kubectl delete pod lonely -n ns/);
});

test("the one-line summary for osm mesh status counts stale pods", async () => {
  const { summarizeStaleness } = await import("../../../src/guide/proxy-status.ts");
  assert.equal(summarizeStaleness([]), "0 meshed pod(s), all current");
  assert.equal(
    summarizeStaleness([
      { namespace: "a", pod: "x", state: "current", details: [] },
      { namespace: "a", pod: "y", state: "stale", details: ["+203.0.113.10/32"] },
    ]),
    "2 meshed pod(s), 1 with an out-of-date interception policy (see osm proxy status -A)",
  );
});

test("with egress disabled, proxy status names pods whose containers can switch to the proxy uid", () => {
  const config = meshConfig({ traffic: { enableEgress: false } });
  const root = admittedPod("curl-root", config);
  root.spec = { containers: [{ name: "curl", image: "curl", securityContext: { runAsUser: 0 } }] };
  const dropped = admittedPod("curl-strict", config);
  dropped.spec = {
    containers: [
      { name: "curl", image: "curl", securityContext: { capabilities: { drop: ["SETUID", "SETGID"] } } },
    ],
  };
  const statuses = evaluatePods([root, dropped], new Map(), config);
  assert.deepEqual(statuses[0]?.proxyUidPaths, [
    'container "curl" runs as root with CAP_SETUID: it can switch to uid 1500 (e.g. setpriv --reuid 1500)',
  ]);
  assert.equal(statuses[1]?.proxyUidPaths, undefined);
  const text = formatProxyStatus(statuses, "in namespace curl");
  assert.match(
    text,
    /\ncurl\/curl-root: WARNING: egress is disabled, but a process that switches to uid 1500/,
  );
  assert.doesNotMatch(text, /curl\/curl-strict:/);
  const enabled = evaluatePods([root], new Map(), meshConfig({ traffic: { enableEgress: true } }));
  assert.equal(enabled[0]?.proxyUidPaths, undefined);
});

test("live updates: a pod updated in place shows `updated live at <time>`; a failed update `failed (<reason>)`", () => {
  const now = meshConfig({ traffic: { outboundIPRangeExclusionList: ["203.0.113.10/32"] } });
  const live = admittedPod("live", now, {
    [ANNOTATION_INTERCEPTION_UPDATED_LIVE]: "2026-12-03T13:20:00.000Z",
  });
  const failed = admittedPod("failed", meshConfig({}), {
    [ANNOTATION_INTERCEPTION_LIVE_FAILED]: "nft rejected the element update (exit 1)",
  });
  const statuses = evaluatePods([live, failed], new Map(), now);
  assert.equal(statuses[0]?.updatedLiveAt, "2026-12-03T13:20:00.000Z");
  assert.equal(statuses[1]?.liveFailure, "nft rejected the element update (exit 1)");
  const text = formatProxyStatus(statuses, "in namespace curl");
  assert.match(text, /live {5}updated live at 2026-12-03T13:20:00\.000Z {12}- /);
  assert.match(
    text,
    /failed {3}failed \(nft rejected the element update \(exit 1\)\) {3}\+203\.0\.113\.10\/32/,
  );
});

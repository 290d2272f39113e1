import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideInjection, injectPod } from "../../../src/injector/index.ts";
import { meshConfig, namespace, OPTIONS, pod, SEEDS } from "./builders.ts";

const KEY = "openservicemesh.io/sidecar-injection";
const monitored = { "openservicemesh.io/monitored-by": "osm" };

function decide(p: ReturnType<typeof pod>, ns: ReturnType<typeof namespace>) {
  return decideInjection(p, ns, OPTIONS);
}

describe("the injection decision follows OSM's mustInject (docs/osm-behaviour.md §4)", () => {
  test("a hostNetwork pod is never injected, even when annotated enabled", () => {
    const p = pod({ hostNetwork: true, annotations: { [KEY]: "enabled" } });
    assert.deepEqual(decide(p, namespace()), { inject: false, reason: "host-network" });
  });

  for (const ns of ["kube-system", "kube-public"]) {
    test(`a pod in ${ns} is never injected, even when the namespace is labelled and annotated`, () => {
      const p = pod({ namespace: ns, annotations: { [KEY]: "enabled" } });
      assert.deepEqual(decide(p, namespace(ns)), { inject: false, reason: "system-namespace" });
    });
  }

  test("a pod in the OSM namespace is never injected", () => {
    const p = pod({ namespace: "osm-system", annotations: { [KEY]: "enabled" } });
    assert.deepEqual(decide(p, namespace("osm-system")), { inject: false, reason: "osm-namespace" });
  });

  test("a pod in a namespace without the monitored-by label is not injected", () => {
    const p = pod({ annotations: { [KEY]: "enabled" } });
    assert.deepEqual(decide(p, namespace("curl", { labels: {} })), {
      inject: false,
      reason: "namespace-not-monitored",
    });
  });

  test("a pod in a namespace monitored by another mesh is not injected", () => {
    const ns = namespace("curl", { labels: { "openservicemesh.io/monitored-by": "other" } });
    assert.deepEqual(decide(pod(), ns), { inject: false, reason: "namespace-not-monitored" });
  });

  test("a pod in an ignored namespace is not injected", () => {
    const ns = namespace("curl", { labels: { ...monitored, "openservicemesh.io/ignore": "true" } });
    assert.deepEqual(decide(pod(), ns), { inject: false, reason: "namespace-ignored" });
  });

  for (const value of ["enabled", "yes", "true", "Enabled", "YES", "True"]) {
    test(`a pod annotated ${value} is injected in a monitored namespace without the annotation`, () => {
      const ns = namespace("curl", { annotations: {} });
      assert.deepEqual(decide(pod({ annotations: { [KEY]: value } }), ns), { inject: true });
    });
  }

  test("a pod annotated enabled is injected even when its namespace says disabled", () => {
    const ns = namespace("curl", { annotations: { [KEY]: "disabled" } });
    assert.deepEqual(decide(pod({ annotations: { [KEY]: "enabled" } }), ns), { inject: true });
  });

  test("an unannotated pod is injected when its namespace is annotated enabled", () => {
    assert.deepEqual(decide(pod(), namespace()), { inject: true });
  });

  for (const value of ["disabled", "no", "false", "NO"]) {
    test(`a pod annotated ${value} is not injected even when its namespace is enabled`, () => {
      assert.deepEqual(decide(pod({ annotations: { [KEY]: value } }), namespace()), {
        inject: false,
        reason: "pod-disabled",
      });
    });
  }

  test("an unannotated pod in a monitored but unannotated namespace is not injected", () => {
    assert.deepEqual(decide(pod(), namespace("curl", { annotations: {} })), {
      inject: false,
      reason: "not-enabled",
    });
  });

  test("an unannotated pod in a namespace annotated disabled is not injected", () => {
    const ns = namespace("curl", { annotations: { [KEY]: "disabled" } });
    assert.deepEqual(decide(pod(), ns), { inject: false, reason: "not-enabled" });
  });
});

describe("invalid sidecar-injection values deny the pod with OSM's message", () => {
  test("an invalid pod annotation is denied with OSM's exact text and our hint", () => {
    const result = injectPod({
      pod: pod({ annotations: { [KEY]: "maybe" } }),
      namespace: namespace(),
      meshConfig: meshConfig(),
      options: OPTIONS,
      seeds: SEEDS,
    });
    assert.equal(result.kind, "deny");
    assert.ok(result.kind === "deny");
    assert.equal(
      result.message,
      'Invalid annotation value for key "openservicemesh.io/sidecar-injection": maybe',
    );
    assert.match(result.hint ?? "", /enabled or disabled/);
  });

  test("an invalid namespace annotation is denied with OSM's exact text", () => {
    const result = injectPod({
      pod: pod(),
      namespace: namespace("curl", { annotations: { [KEY]: "on" } }),
      meshConfig: meshConfig(),
      options: OPTIONS,
      seeds: SEEDS,
    });
    assert.ok(result.kind === "deny");
    assert.equal(
      result.message,
      'Invalid annotation value for key "openservicemesh.io/sidecar-injection": on',
    );
  });

  test("an invalid value is not an error when the namespace is not monitored (OSM never looks)", () => {
    const result = injectPod({
      pod: pod({ annotations: { [KEY]: "maybe" } }),
      namespace: namespace("curl", { labels: {} }),
      meshConfig: meshConfig(),
      options: OPTIONS,
      seeds: SEEDS,
    });
    assert.deepEqual(result, { kind: "skip", reason: "namespace-not-monitored" });
  });
});

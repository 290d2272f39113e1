import assert from "node:assert/strict";
import { test } from "node:test";
import { deploymentReadiness, parseGoDuration } from "../../../src/kube/install-wait.ts";

test("--timeout takes Go durations as OSM's flag does", () => {
  assert.equal(parseGoDuration("5m0s"), 300_000);
  assert.equal(parseGoDuration("90s"), 90_000);
  assert.equal(parseGoDuration("1m30s"), 90_000);
  assert.equal(parseGoDuration("1h"), 3_600_000);
  assert.equal(parseGoDuration("250ms"), 250);
  for (const bad of ["", "5", "5 m", "m5", "-1s", "5x"]) assert.equal(parseGoDuration(bad), undefined, bad);
});

test("a Deployment is ready when its current generation's replicas are updated and ready", () => {
  const d = (generation: number, status: Record<string, number>, replicas = 1) => ({
    metadata: { generation },
    spec: { replicas, selector: {}, template: {} },
    status,
  });
  assert.equal(deploymentReadiness(undefined), "not found");
  assert.equal(
    deploymentReadiness(d(2, { observedGeneration: 1, updatedReplicas: 1, readyReplicas: 1 })),
    "update not yet observed",
  );
  assert.equal(deploymentReadiness(d(1, { observedGeneration: 1, updatedReplicas: 1 })), "0/1 ready");
  assert.equal(
    deploymentReadiness(d(1, { observedGeneration: 1, updatedReplicas: 1, readyReplicas: 1 })),
    undefined,
  );
  assert.equal(
    deploymentReadiness(d(1, { observedGeneration: 1, updatedReplicas: 1, readyReplicas: 1 }, 2)),
    "1/2 updated",
  );
});

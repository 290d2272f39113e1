import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  ANNOTATION_INTERCEPTION_POLICY,
  ANNOTATION_INTERCEPTION_POLICY_HASH,
} from "../../../src/constants.ts";
import {
  evaluatePodStaleness,
  type PolicyRecompute,
  staleAnnotationValue,
} from "../../../src/controller/staleness.ts";

const recomputeTo =
  (text: string, hash: string): PolicyRecompute =>
  () => ({ text, hash });
const pod = (annotations: Record<string, string>): V1Pod => ({
  metadata: { name: "p", namespace: "n", annotations },
});

test("a pod without a recorded policy gets no verdict", () => {
  assert.equal(evaluatePodStaleness(pod({}), undefined, recomputeTo("x", "h")), undefined);
});

test("a pod whose recorded hash equals the recomputed one is current and needs no annotation", () => {
  const verdict = evaluatePodStaleness(
    pod({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1", [ANNOTATION_INTERCEPTION_POLICY]: "10.0.0.0/8" }),
    undefined,
    recomputeTo("10.0.0.0/8", "h1"),
  );
  assert.deepEqual(verdict, { state: "current", hash: "h1" });
  assert.equal(staleAnnotationValue(verdict), undefined);
});

test("a pod whose hash differs is stale with the entries recreating it would add and remove", () => {
  const verdict = evaluatePodStaleness(
    pod({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1", [ANNOTATION_INTERCEPTION_POLICY]: "10.0.0.0/8\n" }),
    undefined,
    recomputeTo("203.0.113.10/32\n", "h2"),
  );
  assert.deepEqual(verdict, {
    state: "stale",
    recordedHash: "h1",
    currentHash: "h2",
    diff: ["-10.0.0.0/8", "+203.0.113.10/32"],
  });
  assert.equal(staleAnnotationValue(verdict), "-10.0.0.0/8 +203.0.113.10/32");
});

test("a stale pod whose policy text annotation was lost is still reported, saying so", () => {
  const verdict = evaluatePodStaleness(
    pod({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1" }),
    undefined,
    recomputeTo("x", "h2"),
  );
  assert.equal(verdict?.state, "stale");
  assert.match(staleAnnotationValue(verdict) ?? "", /is missing/);
});

test("the recomputation sees the pod's and the namespace's annotations, and its failure is an error verdict", () => {
  let seen: unknown;
  const recompute: PolicyRecompute = (input) => {
    seen = input;
    throw new Error("bad annotation");
  };
  const verdict = evaluatePodStaleness(
    pod({ [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1", a: "1" }),
    { metadata: { name: "n", annotations: { b: "2" } } },
    recompute,
  );
  assert.deepEqual(verdict, { state: "error", reason: "bad annotation" });
  assert.deepEqual(seen, {
    podAnnotations: { [ANNOTATION_INTERCEPTION_POLICY_HASH]: "h1", a: "1" },
    namespaceAnnotations: { b: "2" },
  });
});

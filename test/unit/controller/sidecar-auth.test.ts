import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION_SIDECAR_TOKEN_HASH } from "../../../src/constants.ts";
import { authenticateSidecar, bearerToken, hashSidecarToken } from "../../../src/controller/sidecar-auth.ts";

const TOKEN = "s3cr3t-token-of-pod-a";
const pod = (
  annotations: Record<string, string> = { [ANNOTATION_SIDECAR_TOKEN_HASH]: hashSidecarToken(TOKEN) },
): V1Pod => ({
  metadata: { name: "a", namespace: "curl", annotations },
  status: { podIP: "198.51.100.7" },
});

test("the sha256 of a token is lower-case hex of 64 digits", () => {
  assert.match(hashSidecarToken("x"), /^[0-9a-f]{64}$/);
  assert.equal(hashSidecarToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("a bearer header yields its token and anything else yields none", () => {
  assert.equal(bearerToken("Bearer abc"), "abc");
  assert.equal(bearerToken("bearer  abc "), "abc");
  assert.equal(bearerToken("Basic abc"), undefined);
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken("Bearer a b"), undefined);
});

test("the pod's own token is accepted", () => {
  const result = authenticateSidecar({ pod: pod(), authorization: `Bearer ${TOKEN}` });
  assert.equal(result.ok, true);
});

test("each kind of bad request is refused with its reason", () => {
  const cases: [string, Parameters<typeof authenticateSidecar>[0], string][] = [
    ["no header", { pod: pod(), authorization: undefined }, "no-token"],
    ["unknown pod", { pod: undefined, authorization: `Bearer ${TOKEN}` }, "unknown-pod"],
    ["pod without a token hash", { pod: pod({}), authorization: `Bearer ${TOKEN}` }, "pod-has-no-token"],
    [
      "malformed hash",
      { pod: pod({ [ANNOTATION_SIDECAR_TOKEN_HASH]: "abc" }), authorization: `Bearer ${TOKEN}` },
      "pod-has-no-token",
    ],
    ["another pod's token", { pod: pod(), authorization: "Bearer other-token" }, "token-mismatch"],
    [
      "wrong source address",
      { pod: pod(), authorization: `Bearer ${TOKEN}`, remoteAddress: "127.0.0.1", requireSourceIp: true },
      "source-ip",
    ],
  ];
  for (const [name, input, reason] of cases) {
    const result = authenticateSidecar(input);
    assert.deepEqual(result.ok ? "ok" : result.reason, reason, name);
  }
});

test("a terminating pod is refused", () => {
  const terminating = pod();
  terminating.metadata!.deletionTimestamp = new Date();
  const result = authenticateSidecar({ pod: terminating, authorization: `Bearer ${TOKEN}` });
  assert.equal(result.ok ? "ok" : result.reason, "unknown-pod");
});

test("the source address check accepts the pod's IP, also as an IPv4-mapped IPv6 peer", () => {
  for (const remoteAddress of ["198.51.100.7", "::ffff:198.51.100.7"]) {
    const result = authenticateSidecar({
      pod: pod(),
      authorization: `Bearer ${TOKEN}`,
      remoteAddress,
      requireSourceIp: true,
    });
    assert.equal(result.ok, true, remoteAddress);
  }
});

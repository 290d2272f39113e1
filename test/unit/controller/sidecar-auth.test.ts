import assert from "node:assert/strict";
import { test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import {
  type AuthenticateInput,
  authenticateSidecar,
  bearerToken,
  cachedReviewer,
  type TokenReviewer,
  type TokenReviewStatus,
} from "../../../src/controller/sidecar-auth.ts";

const TOKEN = "projected-token-of-pod-a";
const pod = (): V1Pod => ({
  metadata: { name: "a", namespace: "curl", uid: "uid-a" },
  spec: { containers: [], serviceAccountName: "curl" },
  status: { podIP: "198.51.100.7" },
});
/** What the API server's TokenReview says of pod a's projected token. */
const OF_POD_A: TokenReviewStatus = {
  authenticated: true,
  username: "system:serviceaccount:curl:curl",
  extra: {
    "authentication.kubernetes.io/pod-name": ["a"],
    "authentication.kubernetes.io/pod-uid": ["uid-a"],
  },
  audiences: ["osm-controller"],
};
const reviewing =
  (answers: Record<string, TokenReviewStatus>): TokenReviewer =>
  async (token) =>
    answers[token] ?? { authenticated: false };
const review = reviewing({ [TOKEN]: OF_POD_A });
const input = (more: Partial<AuthenticateInput> = {}): AuthenticateInput => ({
  pod: pod(),
  authorization: `Bearer ${TOKEN}`,
  review,
  ...more,
});

test("a bearer header yields its token and anything else yields none", () => {
  assert.equal(bearerToken("Bearer abc"), "abc");
  assert.equal(bearerToken("bearer  abc "), "abc");
  assert.equal(bearerToken("Basic abc"), undefined);
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken("Bearer a b"), undefined);
});

test("the pod's own projected token, reviewed by the API server, is accepted", async () => {
  assert.equal((await authenticateSidecar(input())).ok, true);
});

test("each kind of bad request is refused with its reason", async () => {
  const withAnswer = (status: Partial<TokenReviewStatus>) =>
    input({ review: reviewing({ [TOKEN]: { ...OF_POD_A, ...status } }) });
  const cases: [string, AuthenticateInput, string][] = [
    ["no header", input({ authorization: undefined }), "no-token"],
    ["unknown pod", input({ pod: undefined }), "unknown-pod"],
    ["a token the API server refuses", input({ authorization: "Bearer forged" }), "token-rejected"],
    [
      "a token for another audience",
      withAnswer({ audiences: ["https://kubernetes.default.svc"] }),
      "wrong-audience",
    ],
    [
      "another pod's token",
      withAnswer({ extra: { ...OF_POD_A.extra, "authentication.kubernetes.io/pod-name": ["b"] } }),
      "wrong-pod",
    ],
    [
      "a recreated pod of the same name",
      withAnswer({ extra: { ...OF_POD_A.extra, "authentication.kubernetes.io/pod-uid": ["old"] } }),
      "wrong-pod",
    ],
    ["another service account", withAnswer({ username: "system:serviceaccount:curl:default" }), "wrong-pod"],
    ["an unbound token", withAnswer({ extra: {} }), "wrong-pod"],
    [
      "the API server cannot be asked",
      input({
        review: async () => {
          throw new Error("connection refused");
        },
      }),
      "review-failed",
    ],
    ["wrong source address", input({ remoteAddress: "127.0.0.1", requireSourceIp: true }), "source-ip"],
  ];
  for (const [name, given, reason] of cases) {
    const result = await authenticateSidecar(given);
    assert.deepEqual(result.ok ? "ok" : result.reason, reason, name);
  }
});

test("a terminating pod is refused", async () => {
  const terminating = pod();
  terminating.metadata!.deletionTimestamp = new Date();
  const result = await authenticateSidecar(input({ pod: terminating }));
  assert.equal(result.ok ? "ok" : result.reason, "unknown-pod");
});

test("the source address check accepts the pod's IP, also as an IPv4-mapped IPv6 peer", async () => {
  for (const remoteAddress of ["198.51.100.7", "::ffff:198.51.100.7"]) {
    const result = await authenticateSidecar(input({ remoteAddress, requireSourceIp: true }));
    assert.equal(result.ok, true, remoteAddress);
  }
});

test("a positive review is reused for 30 s, a refusal never", async () => {
  let now = 0;
  let asked = 0;
  const cached = cachedReviewer(
    async (token) => {
      asked++;
      return token === TOKEN ? OF_POD_A : { authenticated: false };
    },
    () => now,
  );
  await cached(TOKEN);
  await cached(TOKEN);
  assert.equal(asked, 1);
  now = 30_001;
  await cached(TOKEN);
  assert.equal(asked, 2);
  await cached("forged");
  await cached("forged");
  assert.equal(asked, 4);
});

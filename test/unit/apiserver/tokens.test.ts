import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { API_AUDIENCE, type ServiceAccountClaims, TokenSigner } from "../../../src/local/apiserver/tokens.ts";

const pem = () =>
  generateKeyPairSync("ec", { namedCurve: "P-256" })
    .privateKey.export({ format: "pem", type: "pkcs8" })
    .toString();
const now = Date.now();
const claims = (more: Partial<ServiceAccountClaims> = {}): ServiceAccountClaims => ({
  namespace: "curl",
  serviceAccount: { name: "curl", uid: "sa-uid" },
  pod: { name: "curl-1", uid: "pod-uid" },
  audiences: ["osm-controller"],
  expiresAt: Math.floor(now / 1000) + 3600,
  ...more,
});

describe("service-account token verification (what TokenReview relies on)", () => {
  const signer = new TokenSigner(pem());

  it("accepts its own token for one of the asked audiences, with its claims", async () => {
    const verified = await signer.verify(await signer.issue(claims()), ["other", "osm-controller"]);
    assert.deepEqual(verified?.pod, { name: "curl-1", uid: "pod-uid" });
    assert.deepEqual(verified?.audiences, ["osm-controller"]);
  });

  it("refuses a token for another audience (by default only the API server's is accepted)", async () => {
    const token = await signer.issue(claims());
    assert.equal(await signer.verify(token), undefined);
    assert.equal(await signer.verify(token, ["vault"]), undefined);
    assert.ok(await signer.verify(await signer.issue(claims({ audiences: [API_AUDIENCE] }))));
  });

  it("refuses an expired token", async () => {
    const past = now - 2 * 3600_000;
    const expired = await signer.issue(claims({ expiresAt: Math.floor(past / 1000) + 600 }), past);
    assert.equal(await signer.verify(expired, ["osm-controller"]), undefined);
  });

  it("refuses a forged token: signed by another key, or its payload changed", async () => {
    const forged = await new TokenSigner(pem()).issue(claims());
    assert.equal(await signer.verify(forged, ["osm-controller"]), undefined);
    const [header, , signature] = (await signer.issue(claims())).split(".");
    const payload = Buffer.from(JSON.stringify({ sub: "system:serviceaccount:curl:admin" })).toString(
      "base64url",
    );
    assert.equal(await signer.verify(`${header}.${payload}.${signature}`, ["osm-controller"]), undefined);
  });
});

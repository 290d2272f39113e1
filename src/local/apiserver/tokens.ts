/**
 * Service-account tokens as kube-apiserver issues them: ES256 JWTs with the issuer and audience
 * `https://kubernetes.default.svc.cluster.local`, `sub: system:serviceaccount:<ns>:<name>` and the
 * `kubernetes.io` claim naming the namespace, the service account (name, uid) and, when bound, the pod (name,
 * uid). Signing and verification only; whether the objects still exist is `authn.ts`'s check.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomUUID } from "node:crypto";
import { jwtVerify, SignJWT } from "jose";

export const ISSUER = "https://kubernetes.default.svc.cluster.local";
/** What the API server accepts as an audience (kube-apiserver's `--api-audiences` default: the issuer). */
export const API_AUDIENCE = ISSUER;

export interface BoundObject {
  readonly kind: "Pod";
  readonly name: string;
  readonly uid: string;
}

export interface ServiceAccountClaims {
  readonly namespace: string;
  readonly serviceAccount: { readonly name: string; readonly uid: string };
  readonly pod?: { readonly name: string; readonly uid: string };
  readonly audiences: readonly string[];
  readonly expiresAt: number;
}

export class TokenSigner {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;

  constructor(privateKeyPem: string) {
    this.privateKey = createPrivateKey(privateKeyPem);
    this.publicKey = createPublicKey(this.privateKey);
  }

  /** Signs a token; `expiresAt` in seconds since the epoch. */
  async issue(claims: ServiceAccountClaims, now = Date.now()): Promise<string> {
    const { namespace, serviceAccount, pod } = claims;
    return new SignJWT({
      "kubernetes.io": {
        namespace,
        serviceaccount: { name: serviceAccount.name, uid: serviceAccount.uid },
        ...(pod ? { pod: { name: pod.name, uid: pod.uid } } : {}),
      },
    })
      .setProtectedHeader({ alg: "ES256", typ: "JWT" })
      .setIssuer(ISSUER)
      .setSubject(`system:serviceaccount:${namespace}:${serviceAccount.name}`)
      .setAudience([...claims.audiences])
      .setIssuedAt(Math.floor(now / 1000))
      .setNotBefore(Math.floor(now / 1000))
      .setExpirationTime(claims.expiresAt)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  /**
   * The claims of a token this signer issued, unexpired, for one of `audiences` (default: the API server's), or
   * undefined.
   */
  async verify(
    token: string,
    audiences: readonly string[] = [API_AUDIENCE],
  ): Promise<ServiceAccountClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        issuer: ISSUER,
        audience: [...audiences],
        algorithms: ["ES256"],
      });
      const k = payload["kubernetes.io"] as
        | {
            namespace?: unknown;
            serviceaccount?: { name?: unknown; uid?: unknown };
            pod?: { name?: unknown; uid?: unknown };
          }
        | undefined;
      const str = (v: unknown) => (typeof v === "string" ? v : "");
      const namespace = str(k?.namespace);
      const name = str(k?.serviceaccount?.name);
      if (!namespace || !name || payload.sub !== `system:serviceaccount:${namespace}:${name}`)
        return undefined;
      return {
        namespace,
        serviceAccount: { name, uid: str(k?.serviceaccount?.uid) },
        pod: k?.pod ? { name: str(k.pod.name), uid: str(k.pod.uid) } : undefined,
        audiences: [payload.aud ?? []].flat(),
        expiresAt: payload.exp ?? 0,
      };
    } catch {
      return undefined;
    }
  }
}

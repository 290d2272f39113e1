/**
 * Who a request is, as kube-apiserver's authenticators decide it: a client certificate signed by the CA
 * (CN = user, O = groups; the admin's is `kubernetes-admin`/`system:masters`), or a bearer token: the admin
 * token, the node agent's token (`system:node:<node>`, group `system:nodes`), a service-account JWT this server
 * signed (valid only while its ServiceAccount, and the Pod it is bound to, still exist with the same uid), or
 * the pods' shared token. The shared token is what the node agent gives every pod until it requests each pod
 * its own through TokenRequest: it identifies nobody by itself, so it counts only from a running pod's own
 * address, and then as that pod's service account. Every authenticated user is in `system:authenticated`.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Api } from "./api.ts";
import type { Obj } from "./json.ts";
import type { UserInfo } from "./rbac.ts";
import { ADMIN_USER, MASTERS_GROUP } from "./tls.ts";
import { API_AUDIENCE, type ServiceAccountClaims, type TokenSigner } from "./tokens.ts";

export const AUTHENTICATED = "system:authenticated";

export interface Credentials {
  readonly adminToken: string;
  readonly nodeToken: string;
  readonly podToken: string;
  readonly nodeName: string;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The user of a service account, with the groups kube-apiserver gives it. */
export function serviceAccountUser(namespace: string, name: string, uid?: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, AUTHENTICATED],
    ...(uid ? { uid } : {}),
  };
}

/** `system:serviceaccount:<ns>:<name>` → [ns, name], else undefined. */
export function parseServiceAccountUser(user: string): [string, string] | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  return m ? [m[1] ?? "", m[2] ?? ""] : undefined;
}

function remoteAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
}

export class Authenticator {
  private readonly api: Api;
  private readonly credentials: Credentials;
  private readonly signer: TokenSigner;

  constructor(api: Api, credentials: Credentials, signer: TokenSigner) {
    this.api = api;
    this.credentials = credentials;
    this.signer = signer;
  }

  /** The user, or undefined (401). */
  async authenticate(req: IncomingMessage): Promise<UserInfo | undefined> {
    const socket = req.socket as TLSSocket;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "");
    const token = m?.[1];
    if (!token) {
      if (!socket.authorized || typeof socket.getPeerCertificate !== "function") return undefined;
      const subject = socket.getPeerCertificate().subject;
      const name = [subject?.CN ?? []].flat()[0];
      if (!name) return undefined;
      return { name, groups: [...[subject.O ?? []].flat(), AUTHENTICATED] };
    }
    const { adminToken, nodeToken, podToken, nodeName } = this.credentials;
    if (sameSecret(token, adminToken)) return { name: ADMIN_USER, groups: [MASTERS_GROUP, AUTHENTICATED] };
    if (sameSecret(token, nodeToken))
      return { name: `system:node:${nodeName}`, groups: ["system:nodes", AUTHENTICATED] };
    if (sameSecret(token, podToken)) return this.podAt(remoteAddress(req));
    return (await this.serviceAccountToken(token))?.user;
  }

  private podAt(address: string): UserInfo | undefined {
    if (!address) return undefined;
    const pod = this.api.store.list("/pods").find((p) => {
      const status = (p as Obj).status;
      if (status?.phase === "Succeeded" || status?.phase === "Failed") return false;
      return status?.podIP === address || (status?.podIPs ?? []).some((i: Obj) => i?.ip === address);
    }) as Obj | undefined;
    if (!pod) return undefined;
    return serviceAccountUser(pod.metadata.namespace, pod.spec?.serviceAccountName || "default");
  }

  /**
   * A service-account JWT: its user and the audiences of `audiences` it was issued for (TokenReview's
   * `status.audiences`), or undefined when it is not valid for any of them.
   */
  async serviceAccountToken(
    token: string,
    audiences: readonly string[] = [API_AUDIENCE],
  ): Promise<{ user: UserInfo; audiences: string[] } | undefined> {
    const claims = await this.signer.verify(token, audiences);
    if (!claims) return undefined;
    const user = this.claimsUser(claims);
    return user && { user, audiences: audiences.filter((a) => claims.audiences.includes(a)) };
  }

  /** The user of verified claims while its ServiceAccount (and bound Pod) exist with the uids it names. */
  private claimsUser(claims: ServiceAccountClaims): UserInfo | undefined {
    const sa = this.api.store.get("/serviceaccounts", claims.namespace, claims.serviceAccount.name) as
      | Obj
      | undefined;
    if (!sa || sa.metadata.uid !== claims.serviceAccount.uid) return undefined;
    if (claims.pod) {
      const pod = this.api.store.get("/pods", claims.namespace, claims.pod.name) as Obj | undefined;
      if (!pod || pod.metadata.uid !== claims.pod.uid) return undefined;
    }
    const user = serviceAccountUser(claims.namespace, claims.serviceAccount.name, claims.serviceAccount.uid);
    if (!claims.pod) return user;
    return {
      ...user,
      extra: {
        "authentication.kubernetes.io/pod-name": [claims.pod.name],
        "authentication.kubernetes.io/pod-uid": [claims.pod.uid],
      },
    };
  }
}

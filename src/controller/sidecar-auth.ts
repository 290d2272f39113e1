/**
 * Authenticates a sidecar as its pod: the request names the pod (`pod=<ns>/<name>`) and carries
 * `Authorization: Bearer <token>`, the pod's projected service-account token for the audience `osm-controller`
 * (`src/config/sidecar-token.ts`). The API server that issued it says whether it is valid, through TokenReview
 * (authentication.k8s.io/v1, with that audience): signature, expiry, audience, and that the service account and
 * the pod it is bound to still exist. The controller then checks the token names this very pod (name and uid,
 * from the review's `authentication.kubernetes.io/pod-*` extras) and its service account. Same on a cluster
 * and on the embedded API server; the controller keeps no secret.
 */
import { createHash } from "node:crypto";
import { AuthenticationV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { SIDECAR_TOKEN_AUDIENCE } from "../config/sidecar-token.ts";

export type AuthResult =
  | { readonly ok: true; readonly pod: V1Pod }
  | { readonly ok: false; readonly reason: AuthFailure };

/** Why a request was refused (a metric label; the client only ever sees 401). */
export type AuthFailure =
  | "no-token"
  | "unknown-pod"
  | "token-rejected"
  | "wrong-audience"
  | "wrong-pod"
  | "review-failed"
  | "source-ip";

/** What a TokenReview says of a token (its `status`). */
export interface TokenReviewStatus {
  readonly authenticated: boolean;
  readonly username?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  readonly audiences?: readonly string[];
}

/** Asks the API server about a token, for the sidecar audience. Throws when it cannot be asked. */
export type TokenReviewer = (token: string) => Promise<TokenReviewStatus>;

const POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
const POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid";

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

function stripMappedV4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

export interface AuthenticateInput {
  readonly pod: V1Pod | undefined;
  readonly authorization: string | undefined;
  readonly review: TokenReviewer;
  /** The TCP peer; checked against the pod's IPs only when `requireSourceIp` is set. */
  readonly remoteAddress?: string | undefined;
  readonly requireSourceIp?: boolean;
}

/** Decides whether the request may read this pod's config. */
export async function authenticateSidecar(input: AuthenticateInput): Promise<AuthResult> {
  const token = bearerToken(input.authorization);
  if (!token) return { ok: false, reason: "no-token" };
  const pod = input.pod;
  if (!pod || pod.metadata?.deletionTimestamp !== undefined) return { ok: false, reason: "unknown-pod" };
  let status: TokenReviewStatus;
  try {
    status = await input.review(token);
  } catch {
    return { ok: false, reason: "review-failed" };
  }
  if (!status.authenticated) return { ok: false, reason: "token-rejected" };
  if (!(status.audiences ?? []).includes(SIDECAR_TOKEN_AUDIENCE))
    return { ok: false, reason: "wrong-audience" };
  const namespace = pod.metadata?.namespace ?? "";
  const serviceAccount = pod.spec?.serviceAccountName || "default";
  if (
    status.username !== `system:serviceaccount:${namespace}:${serviceAccount}` ||
    status.extra?.[POD_NAME_EXTRA]?.[0] !== pod.metadata?.name ||
    status.extra?.[POD_UID_EXTRA]?.[0] !== pod.metadata?.uid
  )
    return { ok: false, reason: "wrong-pod" };
  if (input.requireSourceIp) {
    const ips = pod.status?.podIPs?.map((p) => p.ip) ?? [pod.status?.podIP];
    const remote = stripMappedV4(input.remoteAddress ?? "");
    if (!ips.includes(remote)) return { ok: false, reason: "source-ip" };
  }
  return { ok: true, pod };
}

/** How long a positive review is reused (kube-apiserver's webhook authenticator caches for 2 minutes). */
const REVIEW_CACHE_MS = 30_000;
const REVIEW_CACHE_ENTRIES = 10_000;

/**
 * A reviewer that caches authenticated answers briefly (keyed by the token's sha256), so a sidecar's
 * long-polls cost one TokenReview per half minute, not one each. Refusals are never cached.
 */
export function cachedReviewer(review: TokenReviewer, now: () => number = Date.now): TokenReviewer {
  const cache = new Map<string, { status: TokenReviewStatus; until: number }>();
  return async (token) => {
    const key = createHash("sha256").update(token).digest("base64");
    const hit = cache.get(key);
    if (hit && hit.until > now()) return hit.status;
    cache.delete(key);
    const status = await review(token);
    if (status.authenticated) {
      if (cache.size >= REVIEW_CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
      cache.set(key, { status, until: now() + REVIEW_CACHE_MS });
    }
    return status;
  };
}

/** TokenReview through the API server (the controller's ClusterRole allows `create tokenreviews`). */
export function kubeTokenReviewer(kubeConfig: KubeConfig): TokenReviewer {
  const api = kubeConfig.makeApiClient(AuthenticationV1Api);
  return async (token) => {
    const review = await api.createTokenReview({
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [SIDECAR_TOKEN_AUDIENCE] },
      },
    });
    const s = review.status;
    return {
      authenticated: s?.authenticated === true,
      ...(s?.user?.username ? { username: s.user.username } : {}),
      ...(s?.user?.extra ? { extra: s.user.extra } : {}),
      ...(s?.audiences ? { audiences: s.audiences } : {}),
    };
  };
}

/**
 * Authenticates a sidecar as its pod: the request names the pod (`pod=<ns>/<name>`) and carries
 * `Authorization: Bearer <token>`; the pod (from the informer cache) must carry the annotation
 * `osm-ts.io/sidecar-token-sha256` equal to sha256(token). The injector mints the token at admission.
 * Works the same on a real cluster and on the embedded API server (no TokenReview needed).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import { ANNOTATION_SIDECAR_TOKEN_HASH } from "../constants.ts";

export type AuthResult =
  | { readonly ok: true; readonly pod: V1Pod }
  | { readonly ok: false; readonly reason: AuthFailure };

/** Why a request was refused (a metric label; the client only ever sees 401). */
export type AuthFailure = "no-token" | "unknown-pod" | "pod-has-no-token" | "token-mismatch" | "source-ip";

/** Lower-case hex sha256 of a token, as the injector records it. */
export function hashSidecarToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

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
  /** The TCP peer; checked against the pod's IPs only when `requireSourceIp` is set. */
  readonly remoteAddress?: string | undefined;
  readonly requireSourceIp?: boolean;
}

/** Decides whether the request may read this pod's config. Constant-time comparison of the hashes. */
export function authenticateSidecar(input: AuthenticateInput): AuthResult {
  const token = bearerToken(input.authorization);
  if (!token) return { ok: false, reason: "no-token" };
  const pod = input.pod;
  if (!pod || pod.metadata?.deletionTimestamp !== undefined) return { ok: false, reason: "unknown-pod" };
  const recorded = pod.metadata?.annotations?.[ANNOTATION_SIDECAR_TOKEN_HASH]?.trim().toLowerCase();
  if (!recorded || !/^[0-9a-f]{64}$/.test(recorded)) return { ok: false, reason: "pod-has-no-token" };
  const presented = Buffer.from(hashSidecarToken(token), "utf8");
  if (!timingSafeEqual(presented, Buffer.from(recorded, "utf8"))) {
    return { ok: false, reason: "token-mismatch" };
  }
  if (input.requireSourceIp) {
    const ips = pod.status?.podIPs?.map((p) => p.ip) ?? [pod.status?.podIP];
    const remote = stripMappedV4(input.remoteAddress ?? "");
    if (!ips.includes(remote)) return { ok: false, reason: "source-ip" };
  }
  return { ok: true, pod };
}

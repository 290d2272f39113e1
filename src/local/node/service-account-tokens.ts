/**
 * Per-pod service-account tokens, as the kubelet projects them: for a pod that automounts its token, a
 * TokenRequest (`serviceaccounts/<sa>/token`) bound to the pod (its name and uid, so the token dies with the
 * pod), with the audiences and lifetime of the pod's projected `serviceAccountToken` source (default: the API
 * server's audiences, 3607 s); `ca.crt` from the namespace's `kube-root-ca.crt` ConfigMap. The token file is
 * rewritten (atomically) at 80 % of the token's lifetime while the pod's folder exists. An API server that does
 * not serve TokenRequest gets null: the caller falls back to the shared credentials.
 */
import { chownSync, existsSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { CoreV1Api, V1Pod, V1ServiceAccountTokenProjection } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiErrorCode } from "../../edge/kube-client.ts";
import { SERVICE_ACCOUNT_DIR } from "./pod-files.ts";

/** The kubelet's default lifetime of a projected token (an hour and 7 s: the extra makes stale use visible). */
export const DEFAULT_EXPIRATION_SECONDS = 3607;

export interface TokenRequestPlan {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly body: {
    readonly apiVersion: "authentication.k8s.io/v1";
    readonly kind: "TokenRequest";
    readonly spec: {
      /** Absent: the API server's audiences (as the kubelet sends it: an empty list is omitted on the wire). */
      readonly audiences?: string[];
      readonly expirationSeconds: number;
      readonly boundObjectRef: {
        readonly apiVersion: "v1";
        readonly kind: "Pod";
        readonly name: string;
        readonly uid: string;
      };
    };
  };
}

/** A `serviceAccountToken` source of a projected volume. */
export type TokenSource = NonNullable<V1ServiceAccountTokenProjection>;

/**
 * A projected volume of service-account tokens only (the injector's `osm-sidecar-token`, a pod's own
 * audience-scoped tokens), with where the pod's containers mount it. Not the service account directory.
 */
export interface ProjectedTokenVolume {
  readonly name: string;
  readonly mountPaths: readonly string[];
  readonly sources: readonly TokenSource[];
}

/** The pod's projected token volumes (pure): those mounted by a container somewhere but the SA directory. */
export function projectedTokenVolumes(pod: V1Pod): ProjectedTokenVolume[] {
  const mounts = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].flatMap(
    (c) => c.volumeMounts ?? [],
  );
  return (pod.spec?.volumes ?? []).flatMap((v) => {
    const sources = v.projected?.sources ?? [];
    if (sources.length === 0 || sources.some((s) => !s.serviceAccountToken)) return [];
    const mountPaths = [
      ...new Set(
        mounts
          .filter((m) => m.name === v.name && m.mountPath !== SERVICE_ACCOUNT_DIR)
          .map((m) => m.mountPath),
      ),
    ];
    if (mountPaths.length === 0) return [];
    return [{ name: v.name, mountPaths, sources: sources.map((s) => s.serviceAccountToken as TokenSource) }];
  });
}

/** The token source of the service account directory: `token` of a projected volume not mounted elsewhere. */
function serviceAccountDirSource(pod: V1Pod): TokenSource | undefined {
  const elsewhere = new Set(projectedTokenVolumes(pod).map((v) => v.name));
  return (pod.spec?.volumes ?? [])
    .filter((v) => !elsewhere.has(v.name))
    .flatMap((v) => v.projected?.sources ?? [])
    .map((s) => s.serviceAccountToken)
    .find((t) => t?.path === "token");
}

/**
 * The TokenRequest for a pod (pure): its service account, bound to it, as `source` asks (default: the service
 * account directory's source, else the kubelet's defaults).
 */
export function tokenRequestFor(pod: V1Pod, source = serviceAccountDirSource(pod)): TokenRequestPlan {
  return {
    namespace: pod.metadata?.namespace ?? "default",
    serviceAccount: pod.spec?.serviceAccountName || "default",
    body: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        ...(source?.audience ? { audiences: [source.audience] } : {}),
        expirationSeconds: source?.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS,
        boundObjectRef: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.metadata?.name ?? "",
          uid: pod.metadata?.uid ?? "",
        },
      },
    },
  };
}

/** When to fetch a fresh token: at 80 % of its lifetime, as the kubelet's token manager. */
export function refreshDelayMs(issuedAt: number, expiresAt: number): number {
  // Within setTimeout's range (a longer delay would fire at once).
  return Math.min(2 ** 31 - 1, Math.max(1000, Math.floor((expiresAt - issuedAt) * 0.8)));
}

/**
 * True when an error means the API server does not serve TokenRequest at all (404 for the path, 405), not that
 * the service account is missing (a 404 whose Status names `serviceaccounts`).
 */
export function tokenRequestUnserved(error: unknown): boolean {
  const code = apiErrorCode(error);
  if (code === 405) return true;
  if (code !== 404) return false;
  const body = (error as { body?: unknown }).body;
  const text = typeof body === "string" ? body : JSON.stringify(body ?? {});
  return !/"kind":\s*"serviceaccounts"/.test(text);
}

export class ServiceAccountTokens {
  readonly #core: CoreV1Api;
  readonly #logger: Logger;
  readonly #fallbackCaPem: string;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(core: CoreV1Api, fallbackCaPem: string, logger: Logger) {
    this.#core = core;
    this.#fallbackCaPem = fallbackCaPem;
    this.#logger = logger;
  }

  /** The pod's token and CA; null when TokenRequest is not served. Throws when the request is refused. */
  async credentials(pod: V1Pod, tokenFile: string): Promise<{ token: string; caPem: string } | null> {
    const plan = tokenRequestFor(pod);
    let issued: { token: string; expiresAt: number; issuedAt: number };
    try {
      issued = await this.#issue(plan);
    } catch (error) {
      if (tokenRequestUnserved(error)) return null;
      throw new Error(
        `failed to fetch token for service account ${plan.namespace}/${plan.serviceAccount}: ${errorText(error)}`,
      );
    }
    this.#schedule(plan, tokenFile, refreshDelayMs(issued.issuedAt, issued.expiresAt));
    return { token: issued.token, caPem: await this.#rootCa(plan.namespace) };
  }

  /**
   * Writes a token of a projected volume's source into `tokenFile` (bound to the pod, for the source's
   * audience and lifetime) and keeps it fresh there. Throws when the API server does not issue it: the pod
   * cannot start without it.
   */
  async project(pod: V1Pod, source: TokenSource, tokenFile: string, owner?: TokenFileOwner): Promise<void> {
    const plan = tokenRequestFor(pod, source);
    let issued: { token: string; expiresAt: number; issuedAt: number };
    try {
      issued = await this.#issue(plan);
    } catch (error) {
      throw new Error(
        `failed to fetch token for service account ${plan.namespace}/${plan.serviceAccount} (projected path ${source.path}): ${errorText(error)}`,
      );
    }
    writeTokenFile(tokenFile, issued.token, owner);
    this.#schedule(plan, tokenFile, refreshDelayMs(issued.issuedAt, issued.expiresAt), owner);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async #issue(plan: TokenRequestPlan) {
    const issuedAt = Date.now();
    const res = await this.#core.createNamespacedServiceAccountToken({
      name: plan.serviceAccount,
      namespace: plan.namespace,
      body: plan.body,
    });
    const token = res.status?.token ?? "";
    if (!token) throw new Error("the TokenRequest answer has no status.token");
    // kube-apiserver may extend a 3607 s token to a year (warning after 3607 s): refresh as asked, like the kubelet.
    const asked = issuedAt + plan.body.spec.expirationSeconds * 1000;
    const expires = res.status?.expirationTimestamp;
    const expiresAt = expires ? Math.min(new Date(expires).getTime(), asked) : asked;
    return { token, issuedAt, expiresAt };
  }

  /** The namespace's `kube-root-ca.crt` (what the projected volume mounts), else the API server's CA. */
  async #rootCa(namespace: string): Promise<string> {
    try {
      const cm = await this.#core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace });
      return cm.data?.["ca.crt"] ?? this.#fallbackCaPem;
    } catch {
      return this.#fallbackCaPem;
    }
  }

  /** Rewrites the token file before the token expires, while the pod's folder exists. */
  #schedule(plan: TokenRequestPlan, tokenFile: string, delayMs: number, owner?: TokenFileOwner): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped || !existsSync(dirname(tokenFile))) return;
      this.#issue(plan)
        .then((issued) => {
          writeTokenFile(tokenFile, issued.token, owner);
          this.#logger.debug(
            { pod: `${plan.namespace}/${plan.body.spec.boundObjectRef.name}` },
            "token refreshed",
          );
          this.#schedule(plan, tokenFile, refreshDelayMs(issued.issuedAt, issued.expiresAt), owner);
        })
        .catch((error: unknown) => {
          if (!existsSync(dirname(tokenFile))) return;
          this.#logger.warn(
            { err: error, pod: plan.body.spec.boundObjectRef.name },
            "token refresh failed; retrying",
          );
          this.#schedule(plan, tokenFile, 10_000, owner);
        });
    }, delayMs);
    timer.unref();
    this.#timers.add(timer);
  }
}

/** Who alone may read a projected token file (0600): the uid every container that mounts it runs as. */
export interface TokenFileOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The owner of a projected volume's files (pure): the non-root `runAsUser` (and `runAsGroup`, else 0) shared by
 * every container that mounts it, as the kubelet makes a token file 0600 for a pod's one runAsUser. Undefined
 * (files 0644, the projected default) when they differ or run as root. Here the pod's containers share one
 * mount namespace, so this is what keeps the token from the pod's other non-root containers.
 */
export function tokenFileOwner(pod: V1Pod, volume: string): TokenFileOwner | undefined {
  const podContext = pod.spec?.securityContext;
  const owners = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
    .filter((c) => (c.volumeMounts ?? []).some((m) => m.name === volume))
    .map((c) => ({
      uid: c.securityContext?.runAsUser ?? podContext?.runAsUser,
      gid: c.securityContext?.runAsGroup ?? podContext?.runAsGroup ?? 0,
    }));
  const first = owners[0];
  if (!first?.uid || owners.some((o) => o.uid !== first.uid || o.gid !== first.gid)) return undefined;
  return { uid: first.uid, gid: first.gid };
}

/**
 * Writes a token file atomically (a reader sees the old token or the new one, never half of one): 0600 and
 * chowned to `owner` when there is one, else 0644.
 */
export function writeTokenFile(tokenFile: string, token: string, owner?: TokenFileOwner): void {
  const tmp = `${tokenFile}.tmp`;
  writeFileSync(tmp, token, { mode: owner ? 0o600 : 0o644 });
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, tokenFile);
}

function errorText(error: unknown): string {
  const body = (error as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return (error as Error).message;
}

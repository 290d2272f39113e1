/**
 * TokenRequest (`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`) as kube-apiserver serves it:
 * `spec.audiences` (default: the API server's), `spec.expirationSeconds` (default 3600, at least 600, at most
 * 2^32), `spec.boundObjectRef` to a Pod of the same namespace (its uid filled in, or checked when given). The
 * token is valid while the ServiceAccount and the bound Pod exist with the same uids (`authn.ts`).
 */
import type { Api } from "./api.ts";
import type { Obj } from "./json.ts";
import { ApiError, conflict, invalid, notFound } from "./status.ts";
import { API_AUDIENCE, type TokenSigner } from "./tokens.ts";

const DEFAULT_EXPIRATION = 3600;

export async function requestToken(
  api: Api,
  signer: TokenSigner,
  namespace: string,
  name: string,
  body: unknown,
  now = Date.now(),
): Promise<Obj> {
  const spec: Obj = (body as Obj)?.spec ?? {};
  const causes: { field: string; message: string }[] = [];
  const expiration = spec.expirationSeconds ?? DEFAULT_EXPIRATION;
  if (!Number.isInteger(expiration) || expiration < 600)
    causes.push({
      field: "spec.expirationSeconds",
      message: `Invalid value: ${JSON.stringify(expiration)}: may not specify a duration less than 10 minutes`,
    });
  else if (expiration > 2 ** 32)
    causes.push({
      field: "spec.expirationSeconds",
      message: `Invalid value: ${expiration}: may not specify a duration larger than 2^32 seconds`,
    });
  const audiences: unknown = spec.audiences ?? [API_AUDIENCE];
  if (!Array.isArray(audiences) || audiences.some((a) => typeof a !== "string" || a === ""))
    causes.push({
      field: "spec.audiences",
      message: `Invalid value: ${JSON.stringify(audiences)}: must be a list of non-empty strings`,
    });
  const ref: Obj | undefined = spec.boundObjectRef ?? undefined;
  if (ref && (ref.kind !== "Pod" || (ref.apiVersion ?? "v1") !== "v1"))
    causes.push({
      field: "spec.boundObjectRef.kind",
      message: `Unsupported value: ${JSON.stringify(ref.kind)}: supported values: "Pod"`,
    });
  if (causes.length > 0) throw invalid("authentication.k8s.io", "TokenRequest", name, causes);
  const sa = api.store.get("/serviceaccounts", namespace, name) as Obj | undefined;
  if (!sa) throw notFound("", "serviceaccounts", name);
  let pod: { name: string; uid: string } | undefined;
  if (ref) {
    const stored = api.store.get("/pods", namespace, String(ref.name ?? "")) as Obj | undefined;
    if (!stored) throw notFound("", "pods", String(ref.name ?? ""));
    if (ref.uid && ref.uid !== stored.metadata.uid)
      throw conflict(
        "",
        "pods",
        stored.metadata.name,
        `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
      );
    pod = { name: stored.metadata.name, uid: stored.metadata.uid };
  }
  const expiresAt = Math.floor(now / 1000) + expiration;
  const token = await signer.issue(
    {
      namespace,
      serviceAccount: { name, uid: sa.metadata.uid },
      pod,
      audiences: audiences as string[],
      expiresAt,
    },
    now,
  );
  if (!token) throw new ApiError(500, "InternalError", "Internal error occurred: failed to sign the token");
  return {
    kind: "TokenRequest",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { name, namespace, creationTimestamp: new Date(now).toISOString().replace(/\.\d+Z$/, "Z") },
    spec: {
      audiences,
      expirationSeconds: expiration,
      boundObjectRef: pod ? { kind: "Pod", apiVersion: "v1", name: pod.name, uid: pod.uid } : null,
    },
    status: { token, expirationTimestamp: new Date(expiresAt * 1000).toISOString().replace(/\.\d+Z$/, "Z") },
  };
}

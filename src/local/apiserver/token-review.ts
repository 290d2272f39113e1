/**
 * TokenReview (`POST /apis/authentication.k8s.io/v1/tokenreviews`), as kube-apiserver serves it to delegated
 * authenticators (the OSM controller verifies its sidecars' projected tokens with it): `spec.audiences`
 * (default: the API server's) must meet the token's, and `status.audiences` is that intersection. A
 * service-account token this server signed, unexpired, whose ServiceAccount and bound Pod still exist, is
 * authenticated as its service account with the pod in `user.extra`; anything else is not, with a reason in
 * `status.error`. Answered from the request, never stored.
 */
import type { Authenticator } from "./authn.ts";
import type { Obj } from "./json.ts";
import { badRequest, invalid } from "./status.ts";
import { API_AUDIENCE } from "./tokens.ts";

export async function tokenReview(authenticator: Authenticator, body: unknown): Promise<Obj> {
  const spec: Obj = (body as Obj)?.spec ?? {};
  if (typeof spec.token !== "string" || spec.token === "")
    throw badRequest("token is required for TokenReview in authentication");
  const audiences: unknown = spec.audiences ?? [];
  if (!Array.isArray(audiences) || audiences.some((a) => typeof a !== "string"))
    throw invalid("authentication.k8s.io", "TokenReview", "", [
      {
        field: "spec.audiences",
        message: `Invalid value: ${JSON.stringify(audiences)}: must be a list of strings`,
      },
    ]);
  const wanted = audiences.length > 0 ? (audiences as string[]) : [API_AUDIENCE];
  const reviewed = await authenticator.serviceAccountToken(spec.token, wanted);
  const status: Obj = reviewed
    ? {
        authenticated: true,
        user: {
          username: reviewed.user.name,
          ...(reviewed.user.uid ? { uid: reviewed.user.uid } : {}),
          groups: reviewed.user.groups,
          ...(reviewed.user.extra ? { extra: reviewed.user.extra } : {}),
        },
        audiences: reviewed.audiences,
      }
    : { user: {}, error: "[invalid bearer token, token lookup failed]" };
  return {
    kind: "TokenReview",
    apiVersion: "authentication.k8s.io/v1",
    metadata: { creationTimestamp: null },
    spec: { token: spec.token, ...(audiences.length > 0 ? { audiences } : {}) },
    status,
  };
}

/**
 * The sidecar's credential, as a cluster delivers one: a projected service-account token (the pod's service
 * account, bound to the pod, for the audience `osm-controller`), which the kubelet (or the osm-ts node agent)
 * writes into a read-only volume and renews before it expires. The injector adds the volume, the sidecar reads
 * the file on every request (so a renewed token is used at once), the controller verifies it with TokenReview.
 * Nothing secret is in the PodSpec.
 */
import type { V1Pod, V1Volume, V1VolumeMount } from "@kubernetes/client-node";

/** The audience the sidecar's token is issued for; the controller accepts no other. */
export const SIDECAR_TOKEN_AUDIENCE = "osm-controller";
/** The volume the injector adds (one projected serviceAccountToken source). */
export const SIDECAR_TOKEN_VOLUME = "osm-sidecar-token";
/** Where the sidecar container mounts it, read-only. */
export const SIDECAR_TOKEN_DIR = "/var/run/secrets/osm-ts.io/sidecar";
/** The token's file in the volume. */
export const SIDECAR_TOKEN_FILE_NAME = "token";
export const SIDECAR_TOKEN_FILE = `${SIDECAR_TOKEN_DIR}/${SIDECAR_TOKEN_FILE_NAME}`;
/** An hour, as the kubelet's default; it renews the file at 80 % of that. */
export const SIDECAR_TOKEN_EXPIRATION_SECONDS = 3600;

export function sidecarTokenVolume(): V1Volume {
  return {
    name: SIDECAR_TOKEN_VOLUME,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience: SIDECAR_TOKEN_AUDIENCE,
            expirationSeconds: SIDECAR_TOKEN_EXPIRATION_SECONDS,
            path: SIDECAR_TOKEN_FILE_NAME,
          },
        },
      ],
    },
  };
}

export function sidecarTokenMount(): V1VolumeMount {
  return { name: SIDECAR_TOKEN_VOLUME, mountPath: SIDECAR_TOKEN_DIR, readOnly: true };
}

/** True for a pod the injector gave a sidecar token (it gets a config document from the controller). */
export function hasSidecarToken(pod: V1Pod): boolean {
  return (pod.spec?.volumes ?? []).some((v) => v.name === SIDECAR_TOKEN_VOLUME && v.projected !== undefined);
}

/**
 * Pod injection, pure: pod + namespace + MeshConfig (+ options, seeds) → allow unchanged, a JSON patch with
 * warnings, or a denial with OSM's message. Mirrors OSM's `mutate` → `mustInject` → `createPatch`
 * (pkg/injector/webhook.go, patch.go), in the same order, so the same pod fails for the same reason.
 */
import type { V1Container, V1Namespace, V1Pod } from "@kubernetes/client-node";
import {
  buildEffectivePolicy,
  describeSource,
  fitsOnPod,
  recordingAnnotations,
  recordPolicy,
} from "../config/index.ts";
import { SIDECAR_TOKEN_VOLUME, sidecarTokenVolume } from "../config/sidecar-token.ts";
import {
  ANNOTATION_EGRESS_STRICT,
  ANNOTATION_METRICS,
  ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT,
  ENVOY_UID,
  ENVOY_UNIQUE_ID_LABEL_NAME,
  INIT_CONTAINER_NAME,
  SIDECAR_CONTAINER_NAME,
} from "../constants.ts";
import { isMeshError } from "../errors.ts";
import { renderInitScript } from "../interception/index.ts";
import { buildInitContainer, buildSidecarContainer, fetchPolicyRun, initScriptRun } from "./containers.ts";
import { decideInjection } from "./decision.ts";
import { appendContainers, appendVolumes, setMetadataEntries } from "./patch.ts";
import { rewriteProbes } from "./probes.ts";
import {
  egressStrict,
  proxyUidDenial,
  proxyUidPaths,
  strictCapabilityPatch,
  strictDenial,
} from "./proxy-uid.ts";
import type { InjectionInput, InjectionResult, JsonPatchOperation } from "./types.ts";

/** OSM's prerequisite messages (pkg/injector/patch.go: verifyPrerequisites), verbatim. */
export const PREREQUISITE_MESSAGES = {
  envoyImage: "MeshConfig sidecar.envoyImage not set",
  envoyWindowsImage: "MeshConfig sidecar.envoyWindowsImage not set",
  initContainerImage: "MeshConfig sidecar.initContainerImage not set",
} as const;

/** Prometheus scrape annotations OSM adds when the namespace enables metrics (pkg/injector/patch.go). */
export const PROMETHEUS_ANNOTATIONS: Readonly<Record<string, string>> = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(ENVOY_PROMETHEUS_INBOUND_LISTENER_PORT),
  "prometheus.io/path": "/stats/prometheus",
};

const ENABLED_VALUES = new Set(["enabled", "yes", "true"]);
const DISABLED_VALUES = new Set(["disabled", "no", "false"]);

/** `nodeSelector["kubernetes.io/os"]` equal to `windows`, case-insensitively (OSM: strings.EqualFold). */
export function isWindowsPod(pod: V1Pod): boolean {
  return pod.spec?.nodeSelector?.["kubernetes.io/os"]?.toLowerCase() === "windows";
}

function deny(message: string, hint: string | undefined): InjectionResult {
  return { kind: "deny", message, hint };
}

function metricsEnabled(namespace: V1Namespace): { enabled: boolean; warning?: string } {
  const value = namespace.metadata?.annotations?.[ANNOTATION_METRICS];
  if (value === undefined) return { enabled: false };
  const lower = value.toLowerCase();
  if (ENABLED_VALUES.has(lower)) return { enabled: true };
  if (DISABLED_VALUES.has(lower)) return { enabled: false };
  return {
    enabled: false,
    warning: `namespace ${namespace.metadata?.name}: annotation ${ANNOTATION_METRICS}=${JSON.stringify(value)} is not enabled|yes|true|disabled|no|false; metrics annotations not added`,
  };
}

/** Containers and the volume whose names the injector adds; a pod that already has one would be rejected by the API. */
function reservedNameClash(pod: V1Pod): { what: string; name: string } | undefined {
  const names = new Set(
    [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name),
  );
  const container = [SIDECAR_CONTAINER_NAME, INIT_CONTAINER_NAME].find((n) => names.has(n));
  if (container) return { what: "container", name: container };
  if ((pod.spec?.volumes ?? []).some((v) => v.name === SIDECAR_TOKEN_VOLUME))
    return { what: "volume", name: SIDECAR_TOKEN_VOLUME };
  return undefined;
}

/** Decides and, when injecting, builds the patch. Never throws for bad input: it returns a denial. */
export function injectPod(input: InjectionInput): InjectionResult {
  const { pod, namespace, meshConfig, options, seeds } = input;
  try {
    const decision = decideInjection(pod, namespace, options);
    if (!decision.inject) return { kind: "skip", reason: decision.reason };
  } catch (error) {
    if (isMeshError(error)) {
      return deny(error.message, error.hint ?? "use enabled or disabled (also accepted: yes/no, true/false)");
    }
    throw error;
  }

  const windows = isWindowsPod(pod);
  const sidecarSpec = meshConfig.spec.sidecar;
  // verifyPrerequisites: each image falls back to the injector's OSM_DEFAULT_* value first.
  const sidecarImage = windows
    ? sidecarSpec.envoyWindowsImage || options.defaultSidecarWindowsImage
    : sidecarSpec.envoyImage || options.defaultSidecarImage;
  if (!sidecarImage) {
    return deny(
      windows ? PREREQUISITE_MESSAGES.envoyWindowsImage : PREREQUISITE_MESSAGES.envoyImage,
      `set spec.sidecar.${windows ? "envoyWindowsImage" : "envoyImage"} in the MeshConfig, or install with --set osm.sidecarImage=IMAGE`,
    );
  }
  const initImage = sidecarSpec.initContainerImage || options.defaultInitContainerImage;
  if (!windows && !initImage) {
    return deny(
      PREREQUISITE_MESSAGES.initContainerImage,
      "set spec.sidecar.initContainerImage in the MeshConfig, or install with --set osm.initContainerImage=IMAGE",
    );
  }
  const clash = reservedNameClash(pod);
  if (clash) {
    return deny(
      `pod already has a ${clash.what} named ${JSON.stringify(clash.name)}, which the sidecar injector adds`,
      `rename the ${clash.what}, or annotate the pod with openservicemesh.io/sidecar-injection: disabled`,
    );
  }

  const uidDenial = proxyUidDenial(pod);
  if (uidDenial) return deny(uidDenial.message, uidDenial.hint);
  let strict: boolean;
  try {
    strict = !windows && egressStrict(pod, namespace, options.egressStrict ?? false);
  } catch (error) {
    if (isMeshError(error)) return deny(error.message, error.hint);
    throw error;
  }
  const strictDenied = strict ? strictDenial(pod) : undefined;
  if (strictDenied) return deny(strictDenied.message, strictDenied.hint);

  const warnings: string[] = [];
  const annotations: Record<string, string> = {};
  const initContainers: V1Container[] = [];
  let hash: string | undefined;
  // Windows pods get no osm-init: HNS redirection is expected from a CNI (OSM: same).
  if (!windows) {
    let policy: ReturnType<typeof buildEffectivePolicy>;
    try {
      policy = buildEffectivePolicy(meshConfig, {
        podAnnotations: pod.metadata?.annotations ?? {},
        namespaceAnnotations: namespace.metadata?.annotations ?? {},
      });
    } catch (error) {
      if (isMeshError(error)) return deny(error.message, error.hint);
      throw error;
    }
    for (const w of policy.warnings) warnings.push(`${w.code}: ${w.message}`);
    if (!policy.enableEgress && !strict) {
      for (const path of proxyUidPaths(pod)) {
        warnings.push(
          `proxy-uid-reachable: ${path}; egress is disabled, but what it sends as uid ${ENVOY_UID} is not (set ${ANNOTATION_EGRESS_STRICT}: enabled on the pod or namespace to drop CAP_SETUID/CAP_SETGID)`,
        );
      }
    }
    const recording = recordPolicy(policy);
    hash = recording.hash;
    Object.assign(annotations, recordingAnnotations(recording, describeSource(meshConfig)));
    // A policy that fits on the pod is OSM's init container with the whole script; a larger one would not fit
    // in argv (E2BIG) nor on the pod object, so osm-init (the sidecar's image: it runs osm) fetches it.
    initContainers.push(
      fitsOnPod(recording)
        ? buildInitContainer({
            image: initImage as string,
            run: initScriptRun(renderInitScript(policy, { backend: options.initBackend })),
            meshConfig,
            options,
          })
        : buildInitContainer({
            image: sidecarImage,
            run: fetchPolicyRun(options, hash),
            meshConfig,
            options,
          }),
    );
  }
  const metrics = metricsEnabled(namespace);
  if (metrics.warning) warnings.push(metrics.warning);
  if (metrics.enabled) Object.assign(annotations, PROMETHEUS_ANNOTATIONS);

  const probes = rewriteProbes(pod);
  warnings.push(...probes.warnings);
  const sidecar = buildSidecarContainer({
    image: sidecarImage,
    windows,
    meshConfig,
    options,
    probes: probes.forwarded,
  });
  const patch: JsonPatchOperation[] = [
    ...(strict ? strictCapabilityPatch(pod) : []),
    ...probes.patch,
    ...appendContainers(pod, "initContainers", initContainers),
    ...appendContainers(pod, "containers", [sidecar]),
    ...appendVolumes(pod, [sidecarTokenVolume()]),
    ...setMetadataEntries(pod, "labels", { [ENVOY_UNIQUE_ID_LABEL_NAME]: seeds.proxyUuid }),
    ...setMetadataEntries(pod, "annotations", annotations),
  ];
  return { kind: "inject", patch, warnings, policyHash: hash };
}

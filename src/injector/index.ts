/** The sidecar injector: OSM's injection decision and PodSpec mutation, pure (no I/O). */
export {
  buildInitContainer,
  buildSidecarCommand,
  buildSidecarContainer,
  ENVOY_WINDOWS_USER,
  sidecarLogLevel,
} from "./containers.ts";
export { decideInjection, type InjectionDecision, SYSTEM_NAMESPACES } from "./decision.ts";
export { injectPod, isWindowsPod, PREREQUISITE_MESSAGES, PROMETHEUS_ANNOTATIONS } from "./inject.ts";
export { appendContainers, escapeJsonPointer, setMetadataEntries } from "./patch.ts";
export {
  egressStrict,
  proxyUidDenial,
  proxyUidPaths,
  STRICT_DROPPED_CAPABILITIES,
  strictCapabilityPatch,
  strictDenial,
} from "./proxy-uid.ts";
export type {
  InitBackend,
  InjectionInput,
  InjectionResult,
  InjectionSeeds,
  InjectorOptions,
  JsonPatchOperation,
  SkipReason,
} from "./types.ts";

/**
 * The MeshConfig API (`config.openservicemesh.io/v1alpha2`), OSM's annotations and the effective traffic
 * policy. Pure: no I/O.
 */
export {
  type AnnotationCidr,
  type ParsedAnnotations,
  parseAnnotationFlags,
  parseCidrListAnnotation,
  parseEnabledAnnotation,
  parsePodAnnotations,
  parsePortListAnnotation,
  parseSidecarInjection,
} from "./annotations.ts";
export { meshConfigCrd, meshConfigCrdYaml } from "./crd.ts";
export { buildEffectivePolicy, describeProvenance, type PolicyInputs } from "./policy.ts";
export {
  canonicalPolicyText,
  describeSource,
  diffPolicyRecords,
  evaluateStaleness,
  fitsOnPod,
  MAX_RECORD_ON_POD,
  type PolicyRecord,
  type PolicyRecording,
  type PolicyStaleness,
  parsePolicyRecord,
  policyFromRecord,
  policyHash,
  RECORDED_FIELDS,
  RECORDED_LIST_FIELDS,
  type RecordOnPod,
  rebuildRecordedPolicy,
  recordedOn,
  recordingAnnotations,
  recordingOf,
  recordPolicy,
  unrecordedReason,
} from "./policy-record.ts";
export type {
  CidrEntry,
  EffectiveTrafficPolicy,
  GivenCidr,
  LocalProxyMode,
  PolicyWarning,
  PortEntry,
  Provenance,
} from "./policy-types.ts";
export {
  API_VERSION_V1ALPHA1,
  API_VERSION_V1ALPHA2,
  type MeshConfig,
  type MeshConfigInput,
  type MeshConfigSpec,
  meshConfigSchema,
  V1_2_DEFAULTS,
} from "./schema.ts";
export { defaultMeshConfig, formatPath, parseMeshConfigDocuments, validateMeshConfig } from "./validate.ts";

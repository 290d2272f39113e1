/** Interception engine: plan (IR), renderers, explain, apply/verify/cleanup. */

export {
  type CommandResult,
  type CommandRunner,
  createProcessRunner,
  RecordingRunner,
} from "../edge/command-runner.ts";
export {
  applyInterception,
  chooseProbeTarget,
  cleanupInterception,
  type EngineOptions,
  probeInterception,
  verifyInterception,
} from "./apply.ts";
export type { ApplyOutcome } from "./backend-iptables.ts";
export { type BackendChoice, type Detection, detectBackend } from "./detect.ts";
export {
  describeDecidingRule,
  type ExplainProtocol,
  type ExplainQuery,
  type Explanation,
  explain,
  type Verdict,
} from "./explain.ts";
export { type InitScriptOptions, renderInitScript } from "./init-script.ts";
export {
  checkDriftCheaply,
  type ElementChanges,
  type ElementSync,
  ElementSyncCache,
  type LiveSyncOutcome,
  planElementSync,
  renderElementSync,
  renderNftElementUpdate,
  restoreSets,
  setDigestDrift,
  skeletonDrift,
  syncInterception,
  updateNftElements,
} from "./live-update.ts";
export { encodeElementSyncBatch, expectedSetDigests, parseSetDigests } from "./nft-netlink.ts";
export { buildPlan, parseResolvConf } from "./plan.ts";
export { chunkPorts, effectiveOrder, OSM_CHAINS } from "./plan-iptables.ts";
export { NFT_TABLE } from "./plan-nft.ts";
export { CHAIN_EGRESS, POD_IP_PLACEHOLDER } from "./plan-rules.ts";
export { renderIptables, renderRestorePayload, renderSaveRules } from "./render-iptables.ts";
export { renderNft, renderNftTable } from "./render-nft.ts";
export { renderNftJson } from "./render-nft-json.ts";
export type * from "./types.ts";

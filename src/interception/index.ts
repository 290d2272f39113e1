/** Interception engine: plan (IR), renderers, explain, apply/verify/cleanup. */

export { type InitScriptOptions, renderInitScript } from "./init-script.ts";
export { buildPlan, chunkPorts, effectiveOrder, NFT_TABLE, OSM_CHAINS, POD_IP_PLACEHOLDER } from "./plan.ts";
export { renderIptables, renderRestorePayload, renderSaveRules } from "./render-iptables.ts";
export { renderNft, renderNftTable } from "./render-nft.ts";
export type * from "./types.ts";

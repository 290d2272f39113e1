/** A RoutingTable from a config document that must be valid (the decision tests' fixture). */
import assert from "node:assert/strict";
import { parseSidecarConfig, type SidecarConfigInput } from "../../../src/config/sidecar-api.ts";
import { buildRoutingTable, type RoutingTable } from "../../../src/sidecar/decide.ts";

export function table(input: Partial<SidecarConfigInput>): RoutingTable {
  const parsed = parseSidecarConfig({
    apiVersion: "osm.sidecar/v1",
    version: 1,
    enableEgress: false,
    ...input,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return buildRoutingTable(parsed.config);
}

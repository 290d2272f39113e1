import assert from "node:assert/strict";
import { test } from "node:test";
import type { AdmissionRequest } from "../../../src/kube/admission.ts";
import {
  createMeshConfigValidationHandler,
  silentChangeWarnings,
} from "../../../src/kube/meshconfig-webhook.ts";

const kind = { group: "config.openservicemesh.io", version: "v1alpha2", kind: "MeshConfig" };
function mc(name: string, traffic: Record<string, unknown>) {
  return {
    apiVersion: "config.openservicemesh.io/v1alpha2",
    kind: "MeshConfig",
    metadata: { name, namespace: "osm-system" },
    spec: { traffic },
  };
}
function update(
  oldTraffic: Record<string, unknown>,
  traffic: Record<string, unknown>,
  name = "osm-mesh-config",
) {
  return {
    uid: "u",
    kind,
    operation: "UPDATE",
    object: mc(name, traffic),
    oldObject: mc(name, oldTraffic),
  } as AdmissionRequest;
}

test("nulling or removing enableEgress warns that egress is now enabled; setting it explicitly does not", () => {
  const warning =
    /^egress-enabled-by-default: spec\.traffic\.enableEgress was removed, so egress is now enabled/;
  assert.match(silentChangeWarnings(update({ enableEgress: false }, {})).join("\n"), warning);
  assert.match(
    silentChangeWarnings(update({ enableEgress: false }, { enableEgress: null })).join("\n"),
    warning,
  );
  assert.deepEqual(silentChangeWarnings(update({ enableEgress: false }, { enableEgress: true })), []);
  assert.deepEqual(silentChangeWarnings(update({ enableEgress: true }, {})), []);
});

test("a MeshConfig not named osm-mesh-config is admitted with the reason it is ignored", async () => {
  const request = { uid: "u", kind, operation: "CREATE", object: mc("second", {}) } as AdmissionRequest;
  const decision = await createMeshConfigValidationHandler()(request, new AbortController().signal);
  assert.equal(decision.allowed, true);
  assert.ok(
    decision.allowed &&
      decision.warnings?.some((w) =>
        w.startsWith(
          'meshconfig-not-read: MeshConfig "second" is ignored: the controller and the injector read only osm-mesh-config',
        ),
      ),
  );
});

test("exact duplicates in a list warn, naming the field, the entry and the count", () => {
  const w = silentChangeWarnings(
    update(
      {},
      {
        outboundIPRangeExclusionList: ["203.0.113.10/32", "203.0.113.10/32", "203.0.113.11/32"],
        outboundPortExclusionList: [80, 80, 80],
      },
    ),
  );
  assert.deepEqual(w, [
    'duplicate-entry: spec.traffic.outboundIPRangeExclusionList lists "203.0.113.10/32" 2 times (it counts once)',
    "duplicate-entry: spec.traffic.outboundPortExclusionList lists 80 3 times (it counts once)",
  ]);
});

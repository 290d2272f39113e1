import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  defaultMeshConfig,
  parseMeshConfigDocuments,
  V1_2_DEFAULTS,
  validateMeshConfig,
} from "../../../src/config/index.ts";
import { ConfigError } from "../../../src/errors.ts";
import { meshConfig, traffic, V1, V2 } from "./bad-input-cases.ts";

describe("defaults: the OSM v1.2 chart preset (docs/osm-behaviour.md §3.2)", () => {
  test("defaultMeshConfig is osm-mesh-config in osm-system with the v1.2 preset", () => {
    const config = defaultMeshConfig();
    assert.equal(config.apiVersion, V2);
    assert.deepEqual(config.metadata, { name: "osm-mesh-config", namespace: "osm-system" });
    const { spec } = config;
    assert.equal(spec.traffic.enableEgress, true); // v1.2 changed false → true (#4837)
    assert.equal(spec.traffic.enablePermissiveTrafficPolicyMode, true);
    for (const list of [
      spec.traffic.outboundIPRangeExclusionList,
      spec.traffic.outboundIPRangeInclusionList,
      spec.traffic.outboundPortExclusionList,
      spec.traffic.inboundPortExclusionList,
      spec.traffic.networkInterfaceExclusionList,
    ]) {
      assert.deepEqual(list, []);
    }
    assert.equal(spec.traffic.inboundExternalAuthorization, undefined); // not in the preset
    assert.deepEqual(spec.sidecar, {
      enablePrivilegedInitContainer: false,
      logLevel: "error",
      maxDataPlaneConnections: 0,
      configResyncInterval: "0s",
      tlsMinProtocolVersion: "TLSv1_2", // CRD default
      tlsMaxProtocolVersion: "TLSv1_3", // CRD default
      localProxyMode: "Localhost",
    });
    assert.deepEqual(spec.observability, {
      osmLogLevel: "info",
      enableDebugServer: false,
      tracing: { enable: false },
    });
    assert.deepEqual(spec.certificate, { serviceCertValidityDuration: "24h", certKeyBitSize: 2048 });
    assert.deepEqual(spec.featureFlags, {
      enableWASMStats: true,
      enableEgressPolicy: true,
      enableMulticlusterMode: false,
      enableSnapshotCacheMode: false,
      enableAsyncProxyServiceMapping: false,
      enableIngressBackendPolicy: true,
      enableEnvoyActiveHealthChecks: false,
      enableRetryPolicy: false,
    });
  });

  test("a MeshConfig without enableEgress gets the v1.2 default (true); given fields are kept", () => {
    const config = validateMeshConfig(traffic({ outboundPortExclusionList: [6379] }));
    assert.equal(config.spec.traffic.enableEgress, true);
    assert.deepEqual(config.spec.traffic.outboundPortExclusionList, [6379]);
    assert.equal(config.spec.sidecar.localProxyMode, "Localhost");
  });

  test("null values are treated as absent (the API server prunes them before defaulting)", () => {
    const config = validateMeshConfig(traffic({ enableEgress: null, outboundIPRangeExclusionList: null }));
    assert.equal(config.spec.traffic.enableEgress, true);
    assert.deepEqual(config.spec.traffic.outboundIPRangeExclusionList, []);
  });

  test("external authorization gets the CRD defaults for statPrefix and timeout", () => {
    const config = validateMeshConfig(
      traffic({ inboundExternalAuthorization: { enable: true, address: "authz.example", port: 9001 } }),
    );
    assert.deepEqual(config.spec.traffic.inboundExternalAuthorization, {
      enable: true,
      address: "authz.example",
      port: 9001,
      statPrefix: "inboundExtAuthz",
      timeout: "1s",
      failureModeAllow: false,
    });
  });

  test("validation never mutates its input and returns a fresh object", () => {
    const input = traffic({ outboundIPRangeExclusionList: ["10.0.0.1/8"] });
    const before = structuredClone(input);
    const config = validateMeshConfig(input);
    assert.deepEqual(input, before);
    config.spec.traffic.outboundIPRangeExclusionList.push("192.0.2.0/24");
    assert.deepEqual(input, before);
    assert.deepEqual(V1_2_DEFAULTS.traffic.outboundIPRangeExclusionList, []);
    assert.deepEqual(validateMeshConfig(traffic({})).spec.traffic.outboundIPRangeExclusionList, []);
  });
});

describe("the CIDR rules of OSM's CRD (docs/osm-behaviour.md §3.3) and ours", () => {
  // [value, OSM CRD verdict, ours]
  const cases: [string, "accepts" | "rejects", "accepts" | "rejects"][] = [
    ["54.91.118.50/32", "accepts", "accepts"],
    ["10.0.0.1/8", "accepts", "accepts"], // host bits: accepted and masked (with a warning in the policy)
    ["fd00::/8", "rejects", "accepts"], // IPv6: OSM's regex is IPv4-only; we support it
    ["2001:db8::/32", "rejects", "accepts"],
    ["1.1.1.1", "rejects", "rejects"],
    ["1.2.3.4/5x", "rejects", "rejects"],
    ["1.1.1.1/32 ", "rejects", "rejects"],
    ["999.999.999.999/99", "accepts", "rejects"], // crashes osm-init with `invalid mask`
    ["10.0.0.0/33", "accepts", "rejects"],
    ["foo1.1.1.1/32", "accepts", "rejects"],
    ["10.0.0.0/8,1.1.1.1/32", "accepts", "rejects"],
    ["::ffff:1.2.3.4/24", "accepts", "rejects"],
  ];
  const crdPattern = /((?:\d{1,3}\.){3}\d{1,3})\/(\d{1,2})$/; // OSM's CRD pattern: unanchored at the start
  for (const [value, osm, ours] of cases) {
    test(`${JSON.stringify(value)}: OSM's CRD ${osm} it, osm-ts ${ours} it`, () => {
      assert.equal(crdPattern.test(value), osm === "accepts");
      const input = traffic({ outboundIPRangeExclusionList: [value] });
      if (ours === "accepts") {
        assert.deepEqual(validateMeshConfig(input).spec.traffic.outboundIPRangeExclusionList, [value]);
      } else {
        assert.throws(() => validateMeshConfig(input), ConfigError);
      }
    });
  }
  test("ports: the CRD's bounds 1..65535 are ours too", () => {
    assert.deepEqual(
      validateMeshConfig(traffic({ outboundPortExclusionList: [1, 65535] })).spec.traffic
        .outboundPortExclusionList,
      [1, 65535],
    );
    for (const port of [0, -1, 65536])
      assert.throws(() => validateMeshConfig(traffic({ inboundPortExclusionList: [port] })), ConfigError);
  });
});

describe("v1alpha1 is accepted and converted (docs/osm-behaviour.md §3.1)", () => {
  test("a v1alpha1 MeshConfig becomes v1alpha2 with the v1alpha2-only fields defaulted", () => {
    const config = validateMeshConfig({
      apiVersion: V1,
      kind: "MeshConfig",
      metadata: { name: "osm-mesh-config" },
      spec: { traffic: { enableEgress: false, outboundIPRangeExclusionList: ["203.0.113.10/32"] } },
    });
    assert.equal(config.apiVersion, V2);
    assert.equal(config.spec.traffic.enableEgress, false);
    assert.deepEqual(config.spec.traffic.outboundIPRangeExclusionList, ["203.0.113.10/32"]);
    assert.deepEqual(config.spec.traffic.outboundIPRangeInclusionList, []);
    assert.deepEqual(config.spec.traffic.networkInterfaceExclusionList, []);
    assert.equal(config.spec.sidecar.localProxyMode, "Localhost");
    assert.equal(config.spec.sidecar.tlsMinProtocolVersion, "TLSv1_2");
  });
});

describe("parseMeshConfigDocuments", () => {
  test("reads YAML, JSON and several documents, skipping empty ones", () => {
    const yaml = `apiVersion: ${V2}\nkind: MeshConfig\n---\n---\n${JSON.stringify(meshConfig({ traffic: { enableEgress: false } }))}\n`;
    const docs = parseMeshConfigDocuments(yaml);
    assert.equal(docs.length, 2);
    assert.equal(validateMeshConfig(docs[1]).spec.traffic.enableEgress, false);
  });
  test("YAML is read as kubectl reads it (1.1): unquoted yes/off are booleans, quoted ones strings", () => {
    const [doc] = parseMeshConfigDocuments(
      `apiVersion: ${V2}\nkind: MeshConfig\nspec:\n  traffic: {enableEgress: no}\n`,
    );
    assert.equal(validateMeshConfig(doc).spec.traffic.enableEgress, false);
    const [quoted] = parseMeshConfigDocuments(
      `apiVersion: ${V2}\nkind: MeshConfig\nspec:\n  sidecar: {logLevel: "off"}\n`,
    );
    assert.equal(validateMeshConfig(quoted).spec.sidecar.logLevel, "off");
    const [unquoted] = parseMeshConfigDocuments(
      `apiVersion: ${V2}\nkind: MeshConfig\nspec:\n  sidecar: {logLevel: off}\n`,
    );
    assert.throws(() => validateMeshConfig(unquoted), {
      message:
        'spec.sidecar.logLevel: false is not one of "trace", "debug", "info", "warning", "warn", "error", "critical", "off" (hint: YAML (as kubectl reads it) turns unquoted on/off/yes/no into booleans; quote the value, e.g. "off")',
    });
  });
  test("the guide's MeshConfig: egress disabled, 203.0.113.10/32 excluded, the rest defaulted", () => {
    const text = readFileSync(new URL("../../../examples/guide/meshconfig.yaml", import.meta.url), "utf8");
    const [doc] = parseMeshConfigDocuments(text);
    const config = validateMeshConfig(doc);
    assert.equal(config.spec.traffic.enableEgress, false);
    assert.deepEqual(config.spec.traffic.outboundIPRangeExclusionList, ["203.0.113.10/32"]);
    assert.equal(config.spec.traffic.enablePermissiveTrafficPolicyMode, true);
  });
  test("a malformed document names the source, line and column", () => {
    assert.throws(
      () => parseMeshConfigDocuments("a: [1\n", "cfg.yaml"),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /^cfg\.yaml:2:1: /);
        return true;
      },
    );
  });
});

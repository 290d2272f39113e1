import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  parseAnnotationFlags,
  parsePodAnnotations,
  parseSidecarInjection,
} from "../../../src/config/index.ts";
import {
  ANNOTATION_METRICS,
  ANNOTATION_SIDECAR_INJECTION,
  ANNOTATION_INBOUND_PORT_EXCLUSION_LIST as IN_PORTS,
  ANNOTATION_OUTBOUND_IP_RANGE_EXCLUSION_LIST as IP_EXCL,
  ANNOTATION_OUTBOUND_IP_RANGE_INCLUSION_LIST as IP_INCL,
  ANNOTATION_OUTBOUND_PORT_EXCLUSION_LIST as OUT_PORTS,
} from "../../../src/constants.ts";
import { ErrorCode } from "../../../src/errors.ts";

describe("port annotations follow Go's strconv.Atoi (docs/osm-behaviour.md §1.6, §7)", () => {
  const cases: [value: string, ports: number[]][] = [
    ["6060, 7070", [6060, 7070]], // OSM's exclusions_test: split on ",", items trimmed
    ["80", [80]],
    ["+443", [443]], // Atoi accepts a sign
    ["080", [80]], // and leading zeros
    [" 8080 ,9090 ", [8080, 9090]],
    ["65535", [65535]],
    ["1", [1]],
    ["80,80", [80, 80]], // duplicates are dropped only when merging (global first)
  ];
  for (const [value, ports] of cases) {
    test(`${JSON.stringify(value)} → [${ports.join(", ")}]`, () => {
      assert.deepEqual(parsePodAnnotations({ [OUT_PORTS]: value }).outboundPortExclusionList, ports);
      assert.deepEqual(parsePodAnnotations({ [IN_PORTS]: value }).inboundPortExclusionList, ports);
    });
  }
  test("a missing annotation gives no list (not an empty one)", () => {
    assert.equal(parsePodAnnotations({}).outboundPortExclusionList, undefined);
  });
});

describe("IP range annotations follow Go's net.ParseCIDR, keeping the trimmed text (docs/osm-behaviour.md §1.6)", () => {
  test("items are split on ',', trimmed, and kept as given; host bits and IPv6 are accepted", () => {
    const parsed = parsePodAnnotations({ [IP_EXCL]: " 10.0.0.1/8, 1.1.1.1/32 ,fd00::/8" });
    assert.deepEqual(
      parsed.outboundIPRangeExclusionList?.map((c) => [c.given, c.cidr.toString(), c.hostBitsSet]),
      [
        ["10.0.0.1/8", "10.0.0.0/8", true],
        ["1.1.1.1/32", "1.1.1.1/32", false],
        ["fd00::/8", "fd00::/8", false],
      ],
    );
  });
  test("the inclusion annotation is read the same way", () => {
    const parsed = parsePodAnnotations({ [IP_INCL]: "10.0.0.0/16" });
    assert.deepEqual(
      parsed.outboundIPRangeInclusionList?.map((c) => c.given),
      ["10.0.0.0/16"],
    );
  });
  test("errors come in OSM's order: ports (outbound, inbound) before IP ranges", () => {
    assert.throws(() => parsePodAnnotations({ [IP_EXCL]: "bad", [IN_PORTS]: "x", [OUT_PORTS]: "y" }), {
      message: `Invalid port value 'y' specified for annotation '${OUT_PORTS}'`,
    });
    assert.throws(() => parsePodAnnotations({ [IP_EXCL]: "bad", [IN_PORTS]: "x" }), {
      message: `Invalid port value 'x' specified for annotation '${IN_PORTS}'`,
    });
  });
  test("unrelated annotations are ignored", () => {
    assert.deepEqual(parsePodAnnotations({ "example.com/x": "1,2,3" }), {});
  });
});

describe("sidecar-injection and metrics values (docs/osm-behaviour.md §4)", () => {
  const cases: [string, "enabled" | "disabled"][] = [
    ["enabled", "enabled"],
    ["yes", "enabled"],
    ["true", "enabled"],
    ["Enabled", "enabled"],
    ["TRUE", "enabled"],
    ["disabled", "disabled"],
    ["no", "disabled"],
    ["false", "disabled"],
    ["No", "disabled"],
  ];
  for (const [value, result] of cases) {
    test(`${JSON.stringify(value)} → ${result}`, () => {
      assert.equal(parseSidecarInjection(value), result);
      assert.equal(parsePodAnnotations({ [ANNOTATION_SIDECAR_INJECTION]: value }).sidecarInjection, result);
    });
  }
  for (const value of ["", "on", "1", "enable", " enabled"]) {
    test(`${JSON.stringify(value)} is rejected with OSM's text`, () => {
      assert.throws(() => parseSidecarInjection(value), {
        code: ErrorCode.InvalidAnnotation,
        message: `Invalid annotation value for key "openservicemesh.io/sidecar-injection": ${value}`,
      });
    });
  }
  test("metrics: enabled|yes|true (any case) turn it on, anything else off", () => {
    assert.equal(parsePodAnnotations({ [ANNOTATION_METRICS]: "Yes" }).metrics, true);
    assert.equal(parsePodAnnotations({ [ANNOTATION_METRICS]: "off" }).metrics, false);
  });
});

describe("parseAnnotationFlags", () => {
  test("splits at the first '=', keeps '=' in values, allows empty values, and the last flag wins", () => {
    assert.deepEqual(parseAnnotationFlags(["a/b=1,2", "c=x=y", "d=", "a/b=3"]), {
      "a/b": "3",
      c: "x=y",
      d: "",
    });
  });
});
